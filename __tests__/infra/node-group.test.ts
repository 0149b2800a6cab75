/**
 * Node groups: launch templates from the golden AMI with IMDSv2 and an encrypted gp3
 * root, user-data that carries only the contract's pointer keys, Auto Scaling groups
 * that roll on every template change, and the role layout per executor.
 */
import { AutoscalingGroup } from "@cdktf/provider-aws/lib/autoscaling-group";
import { DataAwsAmi } from "@cdktf/provider-aws/lib/data-aws-ami";
import { LaunchTemplate } from "@cdktf/provider-aws/lib/launch-template";
import { Testing } from "cdktf";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import {
  GoldenImage,
  GoldenImageProps,
  NodeGroup,
  NodeGroupProps,
  renderUserData,
  tokenSafeParts,
} from "../../modules/node-group";
import { CONTRACT } from "../../modules/contract";
import { resourcesOf, synthCompute } from "./compute-fixtures";

/**
 * The shell script inside `${base64encode(join("", [...]))}`: literal parts are decoded,
 * reference parts (e.g. the revision expression) are kept as `<expression>`.
 */
function userDataScript(userData: unknown): string {
  const m = /^\$\{base64encode\(join\("", \[(.*)\]\)\)\}$/s.exec(String(userData));
  if (!m) throw new Error(`unexpected user_data shape: ${String(userData).slice(0, 80)}`);
  const list = m[1];
  const parts: string[] = [];
  let i = 0;
  const stringEnd = (from: number): number => {
    let j = from + 1;
    while (list[j] !== '"') j += list[j] === "\\" ? 2 : 1;
    return j + 1;
  };
  while (i < list.length) {
    if (list[i] === '"') {
      const end = stringEnd(i);
      parts.push(JSON.parse(list.slice(i, end)) as string);
      i = end;
    } else {
      // An expression: runs to the next top-level comma (strings and brackets skipped).
      let depth = 0;
      let j = i;
      while (j < list.length && !(depth === 0 && list[j] === ",")) {
        if (list[j] === '"') {
          j = stringEnd(j);
          continue;
        }
        if ("([{".includes(list[j])) depth++;
        if (")]}".includes(list[j])) depth--;
        j++;
      }
      parts.push(`<${list.slice(i, j).trim()}>`);
      i = j;
    }
    while (list[i] === "," || list[i] === " ") i++;
  }
  return parts.join("");
}

describe("launch templates (CeleryExecutor)", () => {
  // GIVEN the default dev cluster WHEN synthesized
  const { json, parsed } = synthCompute();
  const templates = resourcesOf(parsed, "aws_launch_template");

  it.each([["api-server"], ["scheduler"], ["worker"]])(
    "GIVEN the %s role WHEN synthesized THEN its launch template requires IMDSv2 with one hop and serves instance tags (the group name without ec2:DescribeTags)",
    (role) => {
      expect(json).toHaveResourceWithProperties(LaunchTemplate, {
        name: `airflow-dev-${role}`,
        metadata_options: {
          http_endpoint: "enabled",
          http_tokens: "required",
          http_put_response_hop_limit: 1,
          // the drain and the launch hook read the group name from IMDS, not ec2:DescribeTags
          instance_metadata_tags: "enabled",
        },
      });
    },
  );

  it("GIVEN the default dev cluster WHEN synthesized THEN every template boots from the golden AMI with an encrypted gp3 root volume and its role's profile", () => {
    // THEN each template: the looked-up AMI, its root device as encrypted gp3, its role's instance profile
    for (const lt of Object.values(templates)) {
      const role = String(lt.name).replace(/^airflow-dev-/, "");
      expect(lt.image_id).toMatch(/^\$\{data\.aws_ami\.[\w-]+\.id\}$/);
      expect(lt.block_device_mappings).toEqual([
        {
          device_name: expect.stringMatching(/^\$\{data\.aws_ami\.[\w-]+\.root_device_name\}$/),
          ebs: { volume_size: 20, volume_type: "gp3", encrypted: "true", delete_on_termination: "true" },
        },
      ]);
      expect(lt.iam_instance_profile).toEqual({
        arn: expect.stringMatching(
          new RegExp(`aws_iam_instance_profile\\.compute_iam_${role}-profile_\\w+\\.arn`),
        ),
      });
    }
  });

  it("GIVEN no AMI id WHEN synthesized THEN the AMI is looked up by name (newest available)", () => {
    // THEN one lookup: our own images, by name pattern, available, of the nodes' architecture
    expect(json).toHaveDataSourceWithProperties(DataAwsAmi, {
      most_recent: true,
      owners: ["self"],
      filter: [
        { name: "name", values: ["airflow-golden-*"] },
        { name: "state", values: ["available"] },
        { name: "architecture", values: ["x86_64"] },
      ],
    });
  });

  it.each(Object.keys(CONTRACT.roles).filter((r) => r !== "standalone"))(
    "GIVEN the %s role WHEN synthesized THEN its user-data writes exactly the contract's keys to node.env, then runs the bootstrap",
    (role) => {
      // THEN node.env holds exactly the contract's keys with this role's values
      const lt = Object.values(templates).find((t) => t.name === `airflow-dev-${role}`);
      const script = userDataScript(lt?.user_data);
      const body = /<<'NODE_ENV'\n([\s\S]*?)\nNODE_ENV\n/.exec(script)?.[1] ?? "";
      const env = Object.fromEntries(body.split("\n").map((l) => l.split(/=(.*)/s, 2)));
      expect(Object.keys(env)).toEqual([...CONTRACT.userData.keys]);
      expect(env).toMatchObject({
        AIRFLOW_ROLE: role,
        AIRFLOW_PARAMETER_PREFIX: "/airflow/dev",
        AIRFLOW_SECRET_PREFIX: "airflow/dev",
        AWS_REGION: "us-east-1",
      });
      expect(env.AIRFLOW_SETTINGS_REVISION).toMatch(/^<sha256\(jsonencode\(/);
      // and the script is bash that ends by handing over to the bootstrap
      expect(script).toMatch(/^#!\/bin\/bash\n/);
      expect(script.trimEnd().split("\n").pop()).toBe("exec /opt/airflow/bin/airflow-bootstrap");
    },
  );

  it("GIVEN the default dev cluster WHEN synthesized THEN no user-data holds a secret: no password/token words, no random values, no secret strings", () => {
    for (const lt of Object.values(templates)) {
      const script = userDataScript(lt.user_data).replace(/<sha256\(jsonencode\(.*\)\)>/s, "<revision>");
      expect(script).not.toMatch(/password|token|secret_string|random_|fernet|jwt/i);
    }
  });
});

describe("auto scaling groups", () => {
  // GIVEN 3 schedulers and 2..7 workers WHEN synthesized
  const { json, parsed } = synthCompute({ schedulerCount: 3, workers: { min: 2, max: 7 } });
  const groups = resourcesOf(parsed, "aws_autoscaling_group");
  const group = (role: string) => Object.values(groups).find((g) => g.name === `airflow-dev-${role}`);

  it("GIVEN every group WHEN synthesized THEN it rolls with a rolling instance refresh (launch before terminate) whenever the template changes", () => {
    // THEN each group: refresh launches before terminating, follows the latest template version, private subnets, 300 s warm-up
    for (const g of Object.values(groups)) {
      expect(g.instance_refresh).toEqual({
        strategy: "Rolling",
        preferences: expect.objectContaining({ min_healthy_percentage: 100, max_healthy_percentage: 200 }),
      });
      expect(g.launch_template).toEqual({
        id: expect.stringMatching(/^\$\{aws_launch_template\.[\w-]+\.id\}$/),
        version: expect.stringMatching(/^\$\{aws_launch_template\.[\w-]+\.latest_version\}$/),
      });
      expect(g.vpc_zone_identifier).toEqual(["${aws_subnet.priv-a.id}", "${aws_subnet.priv-b.id}"]);
      expect(g.default_instance_warmup).toBe(300);
    }
  });

  it.each([
    ["api-server", 1, 2, 1],
    ["scheduler", 3, 4, 3],
  ])(
    "GIVEN the %s group WHEN synthesized THEN it runs min %d / max %d / desired %d",
    (role, min, max, desired) => {
      expect(group(role)).toMatchObject({ min_size: min, max_size: max, desired_capacity: desired });
    },
  );

  it("GIVEN workers 2..7 WHEN synthesized THEN the worker group tracks the queue-depth signal per in-service worker at target 1 (desired = WorkersNeeded)", () => {
    // THEN the bounds are set, desired is left to the policies
    const w = group("worker");
    expect(w).toMatchObject({ min_size: 2, max_size: 7, health_check_type: "EC2" });
    expect(w?.desired_capacity).toBeUndefined();
    // AND the one policy is target tracking on WorkersNeeded / GroupInServiceInstances of the default queue
    const policies = Object.values(resourcesOf(parsed, "aws_autoscaling_policy"));
    expect(policies).toEqual([
      expect.objectContaining({
        name: "airflow-dev-worker-queue-depth",
        policy_type: "TargetTrackingScaling",
        autoscaling_group_name: expect.stringMatching(/worker_group_\w+\.name/),
      }),
    ]);
    const tt = policies[0].target_tracking_configuration as {
      target_value: number;
      customized_metric_specification: { metrics: Record<string, unknown>[] };
    };
    expect(tt.target_value).toBe(1);
    const byId = Object.fromEntries(tt.customized_metric_specification.metrics.map((m) => [m.id, m]));
    expect(byId.needed).toMatchObject({
      return_data: false,
      metric_stat: {
        stat: "Maximum",
        metric: {
          namespace: "Airflow/airflow-dev",
          metric_name: CONTRACT.workerScaling.metricName,
          dimensions: [{ name: "Queue", value: "default" }],
        },
      },
    });
    expect(byId.inservice).toMatchObject({
      metric_stat: {
        metric: {
          namespace: "AWS/AutoScaling",
          metric_name: "GroupInServiceInstances",
          dimensions: [
            { name: "AutoScalingGroupName", value: expect.stringMatching(/worker_group_\w+\.name/) },
          ],
        },
      },
    });
    expect(byId.perworker).toMatchObject({ expression: "needed / inservice", return_data: true });
    // AND with min 2 there is no scale-from-zero alarm
    expect(resourcesOf(parsed, "aws_cloudwatch_metric_alarm")).toEqual({});
  });

  it("GIVEN the worker group WHEN synthesized THEN workers drain through a termination hook whose timeout is the AMI's WorkerStopTimeout tag + 300 s, at most 7200 s", () => {
    // THEN only the worker group carries the drain hook, its heartbeat a Terraform expression on the AMI's tag
    const drain = (role: string) =>
      (group(role)?.initial_lifecycle_hook as { lifecycle_transition: string }[]).filter(
        (h) => h.lifecycle_transition === "autoscaling:EC2_INSTANCE_TERMINATING",
      );
    expect(drain("worker")).toEqual([
      {
        name: "drain",
        lifecycle_transition: "autoscaling:EC2_INSTANCE_TERMINATING",
        heartbeat_timeout: expect.any(String),
        default_result: "CONTINUE",
      },
    ]);
    const hook = drain("worker")[0] as unknown as { heartbeat_timeout: string };
    expect(hook.heartbeat_timeout).toMatch(
      /^\$\{min\(sum\(\[tonumber\(lookup\(data\.aws_ami\.[\w-]+\.tags, "WorkerStopTimeout", "3600"\)\), 300\]\), 7200\)\}$/,
    );
    expect(drain("api-server")).toEqual([]);
    // AND the same hook as its own resource, so a new bake's timeout reaches a running group
    const drainResources = Object.values(resourcesOf(parsed, "aws_autoscaling_lifecycle_hook")).filter(
      (h) => h.lifecycle_transition === "autoscaling:EC2_INSTANCE_TERMINATING",
    );
    expect(drainResources).toEqual([
      {
        ...drain("worker")[0],
        autoscaling_group_name: expect.stringMatching(
          /^\$\{aws_autoscaling_group\.[\w-]+_worker_group_\w+\.name\}$/,
        ),
      },
    ]);
    // AND Terraform waits for capacity longer than the launch hook can hold a new node
    const wait = /^(\d+)m$/.exec(String(group("worker")?.wait_for_capacity_timeout));
    expect(Number(wait?.[1]) * 60).toBeGreaterThan(
      CONTRACT.launchHook.bootSeconds +
        CONTRACT.launchHook.migrationWaitSeconds +
        CONTRACT.launchHook.healthWaitSeconds,
    );
    // AND a refresh replaces scale-in-protected (busy) workers too, through that hook
    expect(group("worker")?.instance_refresh).toMatchObject({
      preferences: expect.objectContaining({ scale_in_protected_instances: "Refresh" }),
    });
  });

  it.each(["api-server", "scheduler", "worker"])(
    "GIVEN the %s group WHEN synthesized THEN a launch hook keeps new nodes out of service until the bootstrap sees them healthy, ABANDON otherwise",
    (role) => {
      const launch = (group(role)?.initial_lifecycle_hook as { lifecycle_transition: string }[]).filter(
        (h) => h.lifecycle_transition === "autoscaling:EC2_INSTANCE_LAUNCHING",
      );
      const c = CONTRACT.launchHook;
      expect(launch).toEqual([
        {
          name: c.lifecycleHookName,
          lifecycle_transition: "autoscaling:EC2_INSTANCE_LAUNCHING",
          // outlasts every wait of the bootstrap: boot, the migration wait, the health wait
          heartbeat_timeout: c.bootSeconds + c.migrationWaitSeconds + c.healthWaitSeconds,
          default_result: "ABANDON",
        },
      ]);
      // AND the same hook as its own resource, which reaches a group created before it existed
      const hooks = Object.values(resourcesOf(parsed, "aws_autoscaling_lifecycle_hook")).filter(
        (h) =>
          String(h.autoscaling_group_name).includes(`_${role}_group_`) &&
          h.lifecycle_transition === "autoscaling:EC2_INSTANCE_LAUNCHING",
      );
      expect(hooks).toEqual([
        {
          ...launch[0],
          autoscaling_group_name: expect.stringMatching(/^\$\{aws_autoscaling_group\.[\w-]+\.name\}$/),
        },
      ]);
    },
  );

  it.each([
    ["api-server", ["airflow-dev-api-server-in-service", "airflow-dev-alb-internal-execution-api-unhealthy"]],
    ["scheduler", ["airflow-dev-scheduler-in-service"]],
    ["worker", ["airflow-dev-worker-in-service"]],
  ])(
    "GIVEN the %s group WHEN synthesized THEN an instance refresh pauses at half, launches before it terminates and rolls back on %j",
    (role, alarms) => {
      const prefs = (group(role)?.instance_refresh as { preferences: Record<string, unknown> }).preferences;
      expect(prefs).toMatchObject({
        min_healthy_percentage: 100,
        max_healthy_percentage: 200,
        checkpoint_percentages: [50, 100],
        auto_rollback: true,
      });
      expect((prefs.alarm_specification as { alarms: string[] }).alarms).toEqual(
        expect.arrayContaining(alarms),
      );
    },
  );

  it("GIVEN the api-server group WHEN synthesized THEN it is load-balanced and health-checked through the ALB", () => {
    expect(json).toHaveResourceWithProperties(AutoscalingGroup, {
      name: "airflow-dev-api-server",
      health_check_type: "ELB",
      health_check_grace_period: 600,
    });
  });

  it("GIVEN the scheduler group WHEN synthesized THEN its airflow:role tag propagates to the instances", () => {
    expect(group("scheduler")?.tag).toEqual(
      expect.arrayContaining([{ key: "airflow:role", value: "scheduler", propagate_at_launch: true }]),
    );
  });
});

describe("worker scaling from zero and Spot", () => {
  it.each([
    // max size, the capacities the steps set (one per WorkersNeeded value, the last unbounded)
    [1, [1]],
    [5, [1, 2, 3, 4, 5]],
    [30, Array.from({ length: 20 }, (_, i) => i + 1)],
  ])(
    "GIVEN workers.min 0 and max %i WHEN synthesized THEN the from-zero steps set the capacity to WorkersNeeded, up to min(max, 20)",
    (max, capacities) => {
      // GIVEN min 0 WHEN synthesized
      const { parsed } = synthCompute({ workers: { min: 0, max } });
      const policies = Object.values(resourcesOf(parsed, "aws_autoscaling_policy"));
      const step = policies.find((p) => p.policy_type === "StepScaling");
      // THEN WorkersNeeded n (alarm threshold 1, so the interval [n-1, n)) sets capacity n,
      // up to the group's max or the 20 steps a policy may hold
      expect(step).toMatchObject({ name: "airflow-dev-worker-from-zero", adjustment_type: "ExactCapacity" });
      expect(step?.step_adjustment).toEqual(
        capacities.map((n, i) => ({
          metric_interval_lower_bound: String(n - 1),
          ...(i + 1 < capacities.length ? { metric_interval_upper_bound: String(n) } : {}),
          scaling_adjustment: n,
        })),
      );
    },
  );

  it("GIVEN workers.min 0 WHEN synthesized THEN a step policy next to target tracking starts the fleet (target tracking cannot leave 0)", () => {
    // GIVEN min 0 WHEN synthesized
    const { parsed } = synthCompute({ workers: { min: 0, max: 5 } });
    const w = Object.values(resourcesOf(parsed, "aws_autoscaling_group")).find(
      (g) => g.name === "airflow-dev-worker",
    );
    expect(w).toMatchObject({ min_size: 0, max_size: 5 });
    // THEN a step policy next to the target tracking one
    const policies = Object.values(resourcesOf(parsed, "aws_autoscaling_policy"));
    expect(policies.map((p) => p.policy_type).sort()).toEqual(["StepScaling", "TargetTrackingScaling"]);
    // AND its alarm carries WorkersNeeded only while the group's desired capacity is 0
    const alarms = Object.values(resourcesOf(parsed, "aws_cloudwatch_metric_alarm"));
    expect(alarms).toHaveLength(1);
    expect(alarms[0]).toMatchObject({
      alarm_name: "airflow-dev-worker-from-zero",
      comparison_operator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      treat_missing_data: "notBreaching",
      alarm_actions: [expect.stringMatching(/aws_autoscaling_policy\.[\w-]+from-zero[\w-]*\.arn/)],
    });
    const queries = Object.fromEntries(
      (alarms[0].metric_query as { id: string }[]).map((q) => [q.id, q as Record<string, unknown>]),
    );
    expect(queries.start).toMatchObject({
      expression: "IF(desired == 0, needed, 0)",
      return_data: true,
    });
    expect(queries.needed).toMatchObject({
      metric: {
        namespace: "Airflow/airflow-dev",
        metric_name: CONTRACT.workerScaling.metricName,
        dimensions: { Queue: "default" },
      },
    });
    expect(queries.desired).toMatchObject({ metric: { metric_name: "GroupDesiredCapacity" } });
  });

  it("GIVEN workers.spot WHEN synthesized THEN the worker group runs Spot only through a mixed instances policy with capacity rebalancing; other groups stay on-demand", () => {
    // GIVEN spot WHEN synthesized
    const { parsed } = synthCompute({ workers: { min: 1, max: 4, spot: true } });
    const groups = Object.values(resourcesOf(parsed, "aws_autoscaling_group"));
    const w = groups.find((g) => g.name === "airflow-dev-worker");
    // THEN the template moves into the mixed instances policy
    expect(w?.launch_template).toBeUndefined();
    expect(w).toMatchObject({
      capacity_rebalance: true,
      mixed_instances_policy: {
        instances_distribution: {
          on_demand_base_capacity: 0,
          on_demand_percentage_above_base_capacity: 0,
          spot_allocation_strategy: "price-capacity-optimized",
        },
        launch_template: {
          launch_template_specification: {
            launch_template_id: expect.stringMatching(/aws_launch_template\.[\w-]+worker[\w-]*\.id/),
            version: expect.stringMatching(/latest_version/),
          },
        },
      },
    });
    for (const g of groups.filter((x) => x !== w)) {
      expect(g.mixed_instances_policy).toBeUndefined();
      expect(g.launch_template).toBeDefined();
    }
  });

  it("GIVEN the default config WHEN synthesized THEN workers are on-demand", () => {
    const { parsed } = synthCompute();
    for (const g of Object.values(resourcesOf(parsed, "aws_autoscaling_group"))) {
      expect(g.mixed_instances_policy).toBeUndefined();
      expect(g.capacity_rebalance).toBeUndefined();
    }
  });

  it("GIVEN a tag key with '/' WHEN synthesized THEN the node group refuses it in one line (instance metadata tags cannot serve it)", () => {
    expect(() => synthCompute({ tags: { "team/owner": "data" } })).toThrow(
      /api-server: tags\.team\/owner: got "team\/owner"; allowed: instance tag keys of letters, digits/,
    );
  });
});

describe("LocalExecutor", () => {
  it("GIVEN LocalExecutor WHEN synthesized THEN the cluster collapses to one standalone node behind the public ALB", () => {
    // GIVEN LocalExecutor WHEN synthesized
    const { parsed } = synthCompute({ executor: "LocalExecutor" });
    const groups = Object.values(resourcesOf(parsed, "aws_autoscaling_group"));
    // THEN one group, one node, registered with the UI target group only
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({
      name: "airflow-dev-standalone",
      min_size: 1,
      max_size: 1,
      desired_capacity: 1,
      health_check_type: "ELB",
    });
    expect(groups[0].target_group_arns).toEqual([expect.stringMatching(/ui-tg/)]);
    const lt = Object.values(resourcesOf(parsed, "aws_launch_template"))[0];
    expect(userDataScript(lt.user_data)).toContain("AIRFLOW_ROLE=standalone");
    expect(lt.vpc_security_group_ids).toEqual([
      "${aws_security_group.api-server.id}",
      "${aws_security_group.scheduler.id}",
    ]);
  });
});

describe("golden image selection", () => {
  // Through the whole compute plane, so the config -> props wiring is what is tested.
  const amiFilters = (input: Parameters<typeof synthCompute>[0]) =>
    Object.values(synthCompute(input).parsed.data?.aws_ami ?? {})[0].filter;

  it.each([
    [
      "an explicit ami.id",
      { ami: { id: "ami-0123456789abcdef0", owners: ["123456789012"] } },
      [
        { name: "image-id", values: ["ami-0123456789abcdef0"] },
        { name: "architecture", values: ["x86_64"] },
      ],
    ],
    [
      "ami.gitRevision (the bake's GitRevision tag)",
      { ami: { gitRevision: "c8e1283" } },
      [
        { name: "name", values: ["airflow-golden-*"] },
        { name: "state", values: ["available"] },
        { name: "architecture", values: ["x86_64"] },
        { name: "tag:GitRevision", values: ["c8e1283"] },
      ],
    ],
    [
      "Graviton instance types (an own arm64 image: the golden AMI is x86_64 only)",
      {
        instanceTypes: { apiServer: "t4g.large", scheduler: "m7g.large", worker: "c6gn.xlarge" },
        ami: { name: "team-arm64-*" },
      },
      [
        { name: "name", values: ["team-arm64-*"] },
        { name: "state", values: ["available"] },
        { name: "architecture", values: ["arm64"] },
      ],
    ],
    [
      "a Graviton standalone node (LocalExecutor)",
      {
        executor: "LocalExecutor",
        instanceTypes: { standalone: "m7g.xlarge" },
        ami: { name: "team-arm64-*" },
      },
      [
        { name: "name", values: ["team-arm64-*"] },
        { name: "state", values: ["available"] },
        { name: "architecture", values: ["arm64"] },
      ],
    ],
  ] as const)("GIVEN %s WHEN synthesized THEN the AMI lookup filters on it", (_name, overrides, filters) => {
    expect(amiFilters(overrides as Parameters<typeof synthCompute>[0])).toEqual(filters);
  });

  it("GIVEN the prod config WHEN synthesized THEN its AMI is pinned, so a deploy rolls nodes only when the pin changes", () => {
    const prod = JSON.parse(readFileSync(path.join(__dirname, "../../config/prod.json"), "utf8")) as {
      ami?: { id?: string; gitRevision?: string };
    };
    expect(prod.ami?.id ?? prod.ami?.gitRevision).toBeDefined();
  });
});

describe("renderUserData", () => {
  const good = {
    AIRFLOW_ROLE: "worker",
    AIRFLOW_PARAMETER_PREFIX: "/airflow/dev",
    AIRFLOW_SECRET_PREFIX: "airflow/dev",
    AWS_REGION: "us-east-1",
    AIRFLOW_SETTINGS_REVISION: "abc123",
  };

  it.each([
    ["a missing key", { ...good, AWS_REGION: undefined }, /missing AWS_REGION/],
    ["an extra key (a secret would be one)", { ...good, DB_PASSWORD: "x" }, /unknown DB_PASSWORD/],
    [
      "a value that could break the env file",
      { ...good, AIRFLOW_ROLE: "worker\nEVIL=1" },
      /AIRFLOW_ROLE: got/,
    ],
  ])("GIVEN %s WHEN renderUserData runs THEN it is refused, naming the key", (_name, env, message) => {
    expect(() => renderUserData(env as Record<string, string>)).toThrow(message);
  });

  it("GIVEN a script with a token WHEN tokenSafeParts splits it THEN literal parts and whole tokens come apart", () => {
    expect(tokenSafeParts("a=${TfToken[TOKEN.1]}\nb")).toEqual(["a=", "${TfToken[TOKEN.1]}", "\nb"]);
    expect(tokenSafeParts("plain")).toEqual(["plain"]);
  });
});

describe("invalid golden image props", () => {
  it.each<[string, GoldenImageProps, RegExp]>([
    [
      "both pins",
      { architecture: "x86_64", id: "ami-0123456789abcdef0", gitRevision: "c8e1283" },
      /gitRevision: got "c8e1283"; allowed: omitted when id is set/,
    ],
    ["no owner", { architecture: "arm64", owners: [] }, /owners: got \[\]; allowed: one or more owners/],
    ["an unknown architecture", { architecture: "i386" as "x86_64" }, /architecture: got "i386"/],
  ])("GIVEN %s WHEN synthesized THEN one line names the prop", (_name, props, message) => {
    expect(() =>
      Testing.synthScope((scope) => {
        new GoldenImage(scope, "image", props);
      }),
    ).toThrow(message);
  });
});

describe("invalid node group props", () => {
  const base = (): Omit<NodeGroupProps, "image"> => ({
    resourcePrefix: "airflow-dev",
    parameterPrefix: "/airflow/dev",
    secretPrefix: "airflow/dev",
    region: "us-east-1",
    role: "worker",
    instanceType: "m6i.large",
    minSize: 1,
    maxSize: 2,
    subnets: [{ id: "subnet-1" }],
    securityGroups: [{ id: "sg-1" }],
    instanceProfile: { arn: "arn:aws:iam::123456789012:instance-profile/x" },
    settingsRevision: "abc",
  });
  it.each([
    ["minSize above maxSize", { minSize: 3, maxSize: 2 }, /minSize: got 3; allowed: at most maxSize \(2\)/],
    ["a fractional maxSize", { maxSize: 1.5 }, /maxSize: got 1.5; allowed: an integer from 1 to 100/],
    [
      "a too-short drain",
      { drainTimeoutSeconds: 10 },
      /drainTimeoutSeconds: got 10; allowed: an integer from 30 to 7200/,
    ],
    [
      "desired outside min..max",
      { desiredCapacity: 5 },
      /desiredCapacity: got 5; allowed: an integer from 1 to 2/,
    ],
    ["no subnets", { subnets: [] }, /subnets: got 0; allowed: 1 or more/],
    ["no security groups", { securityGroups: [] }, /securityGroups: got 0; allowed: 1 or more/],
    [
      "a grace period longer than two hours",
      { healthCheckGracePeriodSeconds: 7201 },
      /healthCheckGracePeriodSeconds: got 7201; allowed: an integer from 0 to 7200/,
    ],
    [
      "an unknown role",
      { role: "webserver" },
      /role: got "webserver"; allowed: api-server, scheduler, worker, standalone/,
    ],
  ])("GIVEN %s WHEN synthesized THEN one line names the prop", (_name, overrides, message) => {
    expect(() =>
      Testing.synthScope((scope) => {
        const image = new GoldenImage(scope, "image", { architecture: "x86_64" });
        new NodeGroup(scope, "group", { ...base(), image, ...(overrides as Partial<NodeGroupProps>) });
      }),
    ).toThrow(message);
  });
});

describe("root volume against the golden AMI's snapshot", () => {
  // GIVEN the default dev cluster (20 GiB roots) WHEN synthesized
  const { parsed } = synthCompute();
  const template = Object.values(resourcesOf(parsed, "aws_launch_template"))[0] as {
    block_device_mappings: { ebs: { volume_size: number } }[];
    lifecycle: { precondition: { condition: string; error_message: string }[] };
  };
  const [check] = template.lifecycle.precondition;

  /** The precondition evaluated by real Terraform against an image whose root snapshot is `snapshotGb`. */
  function evaluate(snapshotGb: number): { ok: boolean; message: string } {
    const dir = mkdtempSync(path.join(tmpdir(), "root-volume-"));
    const asLocal = (expr: string) => expr.replace(/data\.aws_ami\.[\w-]+/g, "local.ami");
    writeFileSync(
      path.join(dir, "main.tf.json"),
      JSON.stringify({
        locals: {
          ami: {
            root_device_name: "/dev/xvda",
            // the data source's shape: every mapping, ebs values as strings
            block_device_mappings: [
              { device_name: "/dev/xvdb", ebs: { volume_size: "500" } },
              { device_name: "/dev/xvda", ebs: { volume_size: String(snapshotGb) } },
            ],
          },
        },
        output: {
          ok: { value: asLocal(check.condition) },
          message: { value: asLocal(check.error_message) },
        },
      }),
    );
    const tf = (args: string[]) => {
      const r = spawnSync("terraform", args, {
        cwd: dir,
        encoding: "utf8",
        env: { ...process.env, CHECKPOINT_DISABLE: "1" },
      });
      if (r.status !== 0) throw new Error(`terraform ${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    };
    tf(["init", "-input=false", "-no-color"]);
    tf(["apply", "-auto-approve", "-input=false", "-no-color"]);
    const out = JSON.parse(tf(["output", "-json"]));
    rmSync(dir, { recursive: true, force: true });
    return { ok: out.ok.value, message: out.message.value };
  }

  it("GIVEN dev WHEN synthesized THEN every node's root volume is the environment's 20 GiB", () => {
    for (const t of Object.values(resourcesOf(parsed, "aws_launch_template"))) {
      expect((t as typeof template).block_device_mappings[0].ebs.volume_size).toBe(20);
    }
  });

  it.each([
    [20, true],
    [8, true],
    [30, false],
  ])(
    "GIVEN a golden AMI with a %i GiB root snapshot WHEN Terraform plans the 20 GiB launch template THEN the precondition holds: %s",
    (snapshotGb, ok) => {
      const r = evaluate(snapshotGb);
      expect(r.ok).toBe(ok);
      // the message names the configured size and the snapshot's
      expect(r.message).toBe(
        `rootVolumeGb 20 is smaller than the golden AMI's root snapshot (${snapshotGb} GiB): set rootVolumeGb to at least that, or use a bake of at most 20 GiB`,
      );
    },
  );
});
