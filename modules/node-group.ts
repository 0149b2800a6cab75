/**
 * Nodes: one reusable {@link NodeGroup} (launch template from the golden AMI + Auto
 * Scaling group with instance refresh) and {@link AirflowNodeGroups}, which lays out the
 * roles of the settings contract: api-server (+ Flower), schedulers, Celery workers - or
 * a single standalone node with LocalExecutor.
 *
 * User-data carries only pointers (role, parameter/secret prefixes, region, settings
 * revision); the bootstrap on the AMI fetches everything else with the instance role.
 */
import {
  AutoscalingGroup,
  AutoscalingGroupInitialLifecycleHook,
} from "@cdktf/provider-aws/lib/autoscaling-group";
import { AutoscalingPolicy } from "@cdktf/provider-aws/lib/autoscaling-policy";
import { DataAwsAmi } from "@cdktf/provider-aws/lib/data-aws-ami";
import { LaunchTemplate } from "@cdktf/provider-aws/lib/launch-template";
import { Fn, Token } from "cdktf";
import { Construct } from "constructs";
import {
  AMI_NAME_FILTER,
  Architecture,
  CONTRACT,
  HasArn,
  HasId,
  NodeRole,
  PropError,
  assertIntIn,
} from "./contract";

/** Name of the worker group's termination lifecycle hook (the node completes it after draining). */
export const DRAIN_HOOK_NAME = CONTRACT.workerDrain.lifecycleHookName;
/** Worker drain budget: the AMI's Celery TimeoutStopSec (3600 s) plus 5 minutes. */
export const DEFAULT_WORKER_DRAIN_SECONDS = 3900;

/** Where the bootstrap finds the node's environment. */
export const NODE_ENV_FILE = "/etc/airflow/node.env";
/** The bootstrap baked into the AMI (packer/files/bootstrap). */
export const BOOTSTRAP = "/opt/airflow/bin/airflow-bootstrap";

/**
 * Renders user-data: writes exactly the contract's `userData.keys` as KEY=value lines to
 * {@link NODE_ENV_FILE}, then runs the bootstrap. Values may be Terraform tokens.
 * @throws when a key is missing, unknown or a value could break the env file
 */
export function renderUserData(env: Readonly<Record<string, string>>): string {
  const expected = CONTRACT.userData.keys;
  const missing = expected.filter((k) => env[k] === undefined || env[k] === "");
  const unknown = Object.keys(env).filter((k) => !expected.includes(k));
  if (missing.length || unknown.length) {
    const problems = [
      ...(missing.length ? [`missing ${missing.join(", ")}`] : []),
      ...(unknown.length ? [`unknown ${unknown.join(", ")}`] : []),
    ];
    throw new PropError(
      "user-data",
      "keys",
      problems.join("; "),
      `exactly ${expected.join(", ")} (config/settings-contract.json userData.keys)`,
    );
  }
  for (const k of expected) {
    const v = env[k];
    if (!Token.isUnresolved(v) && !/^[A-Za-z0-9/._:-]+$/.test(v)) {
      throw new PropError("user-data", k, v, "letters, digits and / . _ : -");
    }
  }
  const lines = expected.map((k) => `${k}=${env[k]}`).join("\n");
  // Quoted heredoc: the shell expands nothing; Terraform has already resolved ${...}.
  return [
    "#!/bin/bash",
    "# Pointers only - never a secret. The bootstrap reads settings from SSM and secrets",
    "# from Secrets Manager with the instance role.",
    "set -euo pipefail",
    "install -d -m 0755 /etc/airflow",
    `cat > ${NODE_ENV_FILE} <<'NODE_ENV'`,
    lines,
    "NODE_ENV",
    `chmod 0644 ${NODE_ENV_FILE}`,
    `exec ${BOOTSTRAP}`,
    "",
  ].join("\n");
}

/**
 * Splits a string into literal parts and whole tokens. Terraform functions wrapped
 * around a string with embedded `${...}` render incorrectly in cdktf; a join() over
 * parts that are each either plain text or one whole reference renders exactly.
 */
export function tokenSafeParts(s: string): string[] {
  // cdktf encodes a string token as `${TfToken[TOKEN.<n>]}`; each such piece, on its
  // own, resolves to the reference it stands for.
  return s.split(/(\$\{TfToken\[[^\]]+\]\})/).filter((part) => part !== "");
}

/** Properties of {@link GoldenImage}. */
export interface GoldenImageProps {
  /** CPU architecture of the instance types: an image baked for the other one would not boot. */
  readonly architecture: Architecture;
  /**
   * Name filter of the Packer-built image; the newest available match wins.
   * @default AMI_NAME_FILTER - every bake Packer names
   */
  readonly name?: string;
  /**
   * Accounts (or "self", "amazon") that may own the image.
   * @default ["self"]
   */
  readonly owners?: readonly string[];
  /**
   * Exact AMI id; the name lookup is skipped.
   * @default none - the newest match of `name`
   */
  readonly id?: string;
  /**
   * Pin the bake by its `GitRevision` tag: the newest match of `name` built from that commit.
   * @default none - any bake
   */
  readonly gitRevision?: string;
}

/**
 * The Packer-built golden AMI of the instance types' architecture: the newest match of
 * `name` (of the bake tagged `gitRevision` when set), or exactly `id`. Prod pins one of
 * the two, so node groups roll only when someone changes the pin.
 */
export class GoldenImage extends Construct {
  /** The AMI data source. */
  public readonly ami: DataAwsAmi;
  /** AMI id. */
  public readonly imageId: string;
  /** Root device name of the AMI (for the encrypted root volume mapping). */
  public readonly rootDeviceName: string;

  public constructor(scope: Construct, id: string, props: GoldenImageProps) {
    super(scope, id);
    if (props.architecture !== "x86_64" && props.architecture !== "arm64") {
      throw new PropError(this, "architecture", props.architecture, '"x86_64" or "arm64"');
    }
    const owners = props.owners ?? ["self"];
    if (owners.length === 0) throw new PropError(this, "owners", owners, 'one or more owners such as "self"');
    if (props.id && props.gitRevision) {
      throw new PropError(
        this,
        "gitRevision",
        props.gitRevision,
        "omitted when id is set (one pin, not two)",
      );
    }
    const architecture = { name: "architecture", values: [props.architecture] };
    this.ami = new DataAwsAmi(this, "ami", {
      mostRecent: true,
      owners: [...owners],
      // Filtering on the architecture keeps the newest image of any other kind from winning.
      filter: props.id
        ? [{ name: "image-id", values: [props.id] }, architecture]
        : [
            { name: "name", values: [props.name ?? AMI_NAME_FILTER] },
            { name: "state", values: ["available"] },
            architecture,
            ...(props.gitRevision ? [{ name: "tag:GitRevision", values: [props.gitRevision] }] : []),
          ],
    });
    this.imageId = this.ami.id;
    this.rootDeviceName = this.ami.rootDeviceName;
  }
}

/** Properties of {@link NodeGroup}. */
export interface NodeGroupProps {
  /** `<namePrefix>-<env>`: the group is `<resourcePrefix>-<role>`. */
  readonly resourcePrefix: string;
  /** `/<namePrefix>/<env>`: where the bootstrap reads the settings (user-data pointer). */
  readonly parameterPrefix: string;
  /** `<namePrefix>/<env>`: where the bootstrap reads the secrets (user-data pointer). */
  readonly secretPrefix: string;
  /** AWS region the bootstrap calls SSM and Secrets Manager in. */
  readonly region: string;
  /**
   * Extra tags on the instances and their volumes (Auto Scaling launches them, so the
   * provider's default tags never reach them).
   * @default {}
   */
  readonly tags?: Readonly<Record<string, string>>;
  /** Node role: selects the systemd units the bootstrap starts. */
  readonly role: NodeRole;
  /** EC2 instance type. */
  readonly instanceType: string;
  /** Minimum instances. */
  readonly minSize: number;
  /** Maximum instances. */
  readonly maxSize: number;
  /**
   * Desired instances, managed by Terraform.
   * @default none - Auto Scaling owns it (starts at minSize), for groups with a scaling policy
   */
  readonly desiredCapacity?: number;
  /** The golden AMI. */
  readonly image: GoldenImage;
  /** Private subnets to launch into. */
  readonly subnets: readonly HasId[];
  /** Security groups of the instances. */
  readonly securityGroups: readonly HasId[];
  /** Instance profile of the instances. */
  readonly instanceProfile: HasArn;
  /** AIRFLOW_SETTINGS_REVISION (see settings.ts `settingsRevision`). */
  readonly settingsRevision: string;
  /**
   * Target groups the instances register with; the group then uses ELB health checks.
   * @default [] - EC2 health checks
   */
  readonly targetGroups?: readonly HasArn[];
  /**
   * Root volume size in GiB (gp3, encrypted).
   * @default 30
   */
  readonly rootVolumeGb?: number;
  /**
   * EC2 detailed monitoring (1-minute instance metrics, billed per metric).
   * @default true
   */
  readonly detailedMonitoring?: boolean;
  /**
   * Seconds after launch before health checks count (boot + bootstrap + DB migration).
   * @default 600
   */
  readonly healthCheckGracePeriodSeconds?: number;
  /**
   * Seconds a new instance needs before its metrics count and instance refresh moves on
   * (the group's default_instance_warmup).
   * @default 300
   */
  readonly instanceWarmupSeconds?: number;
  /**
   * Termination lifecycle hook timeout in seconds: how long a terminating instance may
   * drain (Celery warm shutdown) before it is terminated anyway. The node completes the
   * hook itself once drained.
   * @default none - no termination hook
   */
  readonly drainTimeoutSeconds?: number;
  /**
   * Instance refresh: minimum healthy percentage during a rolling replacement. With the
   * default maximum of 200 % new instances launch before old ones terminate.
   * @default 100
   */
  readonly minHealthyPercentage?: number;
}

/** A launch template + Auto Scaling group for one node role. */
export class NodeGroup extends Construct {
  /** The launch template (a new version on every user-data or AMI change). */
  public readonly launchTemplate: LaunchTemplate;
  /** The Auto Scaling group. */
  public readonly autoScalingGroup: AutoscalingGroup;
  /** The rendered user-data (before base64). */
  public readonly userData: string;

  public constructor(scope: Construct, id: string, props: NodeGroupProps) {
    super(scope, id);
    const { role } = props;
    if (!(role in CONTRACT.roles)) {
      throw new PropError(this, "role", role, Object.keys(CONTRACT.roles).join(", "));
    }
    const intIn = (field: string, v: number | undefined, min: number, max: number): void =>
      assertIntIn(this, field, v, min, max);
    intIn("minSize", props.minSize, 0, 100);
    intIn("maxSize", props.maxSize, 1, 100);
    intIn("rootVolumeGb", props.rootVolumeGb, 8, 16384);
    intIn("healthCheckGracePeriodSeconds", props.healthCheckGracePeriodSeconds, 0, 7200);
    intIn("instanceWarmupSeconds", props.instanceWarmupSeconds, 0, 3600);
    // Lifecycle hook heartbeat timeout: 30 s to 2 h.
    intIn("drainTimeoutSeconds", props.drainTimeoutSeconds, 30, 7200);
    intIn("minHealthyPercentage", props.minHealthyPercentage, 0, 100);
    if (props.minSize > props.maxSize) {
      throw new PropError(this, "minSize", props.minSize, `at most maxSize (${props.maxSize})`);
    }
    if (props.desiredCapacity !== undefined) {
      intIn("desiredCapacity", props.desiredCapacity, props.minSize, props.maxSize);
    }
    if (props.subnets.length === 0) throw new PropError(this, "subnets", 0, "1 or more private subnets");
    if (props.securityGroups.length === 0) {
      throw new PropError(this, "securityGroups", 0, "1 or more security groups");
    }

    const name = `${props.resourcePrefix}-${role}`;
    const tags: Record<string, string> = {
      ...props.tags,
      Name: name,
      "airflow:cluster": props.resourcePrefix,
      "airflow:role": role,
    };

    this.userData = renderUserData({
      AIRFLOW_ROLE: role,
      AIRFLOW_PARAMETER_PREFIX: props.parameterPrefix,
      AIRFLOW_SECRET_PREFIX: props.secretPrefix,
      AWS_REGION: props.region,
      AIRFLOW_SETTINGS_REVISION: props.settingsRevision,
    });

    this.launchTemplate = new LaunchTemplate(this, "template", {
      name,
      description: `Airflow ${role} node from the golden AMI`,
      imageId: props.image.imageId,
      instanceType: props.instanceType,
      iamInstanceProfile: { arn: props.instanceProfile.arn },
      vpcSecurityGroupIds: props.securityGroups.map((s) => s.id),
      userData: Fn.base64encode(Fn.join("", tokenSafeParts(this.userData))),
      updateDefaultVersion: true,
      // IMDSv2 only, one hop: containers/processes behind a NAT hop cannot steal the role.
      metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 },
      monitoring: { enabled: props.detailedMonitoring ?? true },
      blockDeviceMappings: [
        {
          deviceName: props.image.rootDeviceName,
          ebs: {
            volumeSize: props.rootVolumeGb ?? 30,
            volumeType: "gp3",
            encrypted: "true",
            deleteOnTermination: "true",
          },
        },
      ],
      tagSpecifications: [
        { resourceType: "instance", tags },
        { resourceType: "volume", tags },
      ],
    });

    const targetGroups = props.targetGroups ?? [];
    const hooks: AutoscalingGroupInitialLifecycleHook[] = props.drainTimeoutSeconds
      ? [
          {
            // The node sees target-lifecycle-state=Terminated in IMDS, stops Celery warmly
            // (running tasks finish, no new ones) and completes this hook; CONTINUE after
            // the timeout if it never does.
            name: DRAIN_HOOK_NAME,
            lifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING",
            heartbeatTimeout: props.drainTimeoutSeconds,
            defaultResult: "CONTINUE",
          },
        ]
      : [];
    const warmupSeconds = props.instanceWarmupSeconds ?? 300;
    this.autoScalingGroup = new AutoscalingGroup(this, "group", {
      name,
      minSize: props.minSize,
      maxSize: props.maxSize,
      desiredCapacity: props.desiredCapacity,
      vpcZoneIdentifier: props.subnets.map((s) => s.id),
      launchTemplate: {
        id: this.launchTemplate.id,
        version: Token.asString(this.launchTemplate.latestVersion),
      },
      targetGroupArns: targetGroups.map((t) => t.arn),
      healthCheckType: targetGroups.length ? "ELB" : "EC2",
      healthCheckGracePeriod: props.healthCheckGracePeriodSeconds ?? 600,
      defaultInstanceWarmup: warmupSeconds,
      initialLifecycleHook: hooks,
      // Terraform's default (10 min) is shorter than the drain hook's heartbeat: a destroy
      // would time out while a worker drains. Allow the whole heartbeat plus 15 minutes
      // (`npm run destroy` also deletes the hook first, so nodes terminate at once).
      timeouts: props.drainTimeoutSeconds
        ? { delete: `${Math.ceil(props.drainTimeoutSeconds / 60) + 15}m` }
        : undefined,
      // A new launch template version (user-data = settings revision, AMI, type) rolls
      // the group: launch new, wait healthy + warm-up, then terminate old.
      instanceRefresh: {
        strategy: "Rolling",
        preferences: {
          minHealthyPercentage: props.minHealthyPercentage ?? 100,
          maxHealthyPercentage: 200,
          instanceWarmup: String(warmupSeconds),
          skipMatching: true,
        },
      },
      enabledMetrics: [
        "GroupDesiredCapacity",
        "GroupInServiceInstances",
        "GroupPendingInstances",
        "GroupTerminatingInstances",
        "GroupTotalInstances",
      ],
      tag: Object.keys(tags)
        .sort()
        .map((key) => ({ key, value: tags[key], propagateAtLaunch: true })),
    });
  }
}

/** What the role layout needs from the load balancers. */
export interface NodeTargetGroups {
  /** Target groups of the api-server (or standalone) node. */
  readonly apiServerTargetGroups: readonly HasArn[];
}

/** What one role's nodes run on. */
export interface NodeSpec {
  /** EC2 instance type. */
  readonly instanceType: string;
  /** Security groups of the instances. */
  readonly securityGroups: readonly HasId[];
}

/** The Celery worker fleet. */
export interface WorkerSpec extends NodeSpec {
  /** Fewest workers. */
  readonly min: number;
  /** Most workers; above `min` a target-tracking policy scales between the two. */
  readonly max: number;
  /**
   * Drain time on scale-in / refresh (termination hook timeout), seconds.
   * @default 3900 - the AMI's worker TimeoutStopSec (3600 s, packer worker_stop_timeout)
   *   plus 5 minutes, so systemd's warm shutdown always finishes inside the hook
   */
  readonly drainSeconds?: number;
  /**
   * Average CPU % the target-tracking policy aims for.
   * @default 60
   */
  readonly targetCpuPercent?: number;
}

/** LocalExecutor: one node runs every component, tasks included. */
export interface StandaloneLayout {
  /** Selects this layout. */
  readonly executor: "LocalExecutor";
  /** The node; it needs both the api-server's and the scheduler's network paths. */
  readonly standalone: NodeSpec;
}

/** CeleryExecutor: an api-server, schedulers and a worker fleet. */
export interface CeleryLayout {
  /** Selects this layout. */
  readonly executor: "CeleryExecutor";
  /** The api-server: one node, two while a refresh replaces it. */
  readonly apiServer: NodeSpec;
  /** Schedulers; each runs scheduler, dag-processor and triggerer. */
  readonly scheduler: NodeSpec & {
    /** Schedulers in service (one more while a refresh replaces one). */
    readonly count: number;
  };
  /** Celery workers. */
  readonly worker: WorkerSpec;
}

/** Properties of {@link AirflowNodeGroups}. */
export interface AirflowNodeGroupsProps {
  /** `<namePrefix>-<env>`: groups are `<resourcePrefix>-<role>`. */
  readonly resourcePrefix: string;
  /** `/<namePrefix>/<env>` (user-data pointer). */
  readonly parameterPrefix: string;
  /** `<namePrefix>/<env>` (user-data pointer). */
  readonly secretPrefix: string;
  /** AWS region (user-data pointer). */
  readonly region: string;
  /**
   * Extra tags on every instance and volume.
   * @default {}
   */
  readonly tags?: Readonly<Record<string, string>>;
  /** Which golden AMI every group boots. */
  readonly image: GoldenImageProps;
  /** The roles and their sizes; the executor decides which roles exist. */
  readonly layout: StandaloneLayout | CeleryLayout;
  /** Private subnets. */
  readonly subnets: readonly HasId[];
  /** Instance profile per node role of the layout: each group runs with its own role's. */
  readonly instanceProfiles: Readonly<Partial<Record<NodeRole, HasArn>>>;
  /** Load balancer target groups. */
  readonly loadBalancers: NodeTargetGroups;
  /** AIRFLOW_SETTINGS_REVISION. */
  readonly settingsRevision: string;
  /**
   * EC2 detailed monitoring of every group (the environment policy's).
   * @default true
   */
  readonly detailedMonitoring?: boolean;
}

/**
 * The node groups of the layout: CeleryExecutor -> api-server (1, up to 2 during a
 * refresh), schedulers (`scheduler.count`; each runs scheduler, dag-processor, triggerer)
 * and workers (`worker.min`..`worker.max`); LocalExecutor -> one standalone node.
 */
export class AirflowNodeGroups extends Construct {
  /** The golden AMI lookup shared by all groups. */
  public readonly image: GoldenImage;
  /** Node group per role present in this layout. */
  public readonly groups: Readonly<Partial<Record<NodeRole, NodeGroup>>>;

  public constructor(scope: Construct, id: string, props: AirflowNodeGroupsProps) {
    super(scope, id);
    const { layout } = props;
    if (layout.executor === "CeleryExecutor") {
      assertIntIn(this, "layout.worker.targetCpuPercent", layout.worker.targetCpuPercent, 1, 100);
    }
    this.image = new GoldenImage(this, "image", props.image);
    const common = {
      resourcePrefix: props.resourcePrefix,
      parameterPrefix: props.parameterPrefix,
      secretPrefix: props.secretPrefix,
      region: props.region,
      tags: props.tags,
      image: this.image,
      subnets: props.subnets,
      settingsRevision: props.settingsRevision,
      detailedMonitoring: props.detailedMonitoring,
    };
    const profile = (role: NodeRole): HasArn => {
      const p = props.instanceProfiles[role];
      if (p === undefined)
        throw new PropError(this, `instanceProfiles.${role}`, undefined, "an instance profile");
      return p;
    };
    const groups: Partial<Record<NodeRole, NodeGroup>> = {};
    if (layout.executor === "LocalExecutor") {
      groups.standalone = new NodeGroup(this, "standalone", {
        ...common,
        role: "standalone",
        instanceProfile: profile("standalone"),
        securityGroups: layout.standalone.securityGroups,
        instanceType: layout.standalone.instanceType,
        minSize: 1,
        maxSize: 1,
        desiredCapacity: 1,
        targetGroups: props.loadBalancers.apiServerTargetGroups,
        // One node: refresh must launch the new one before the old one goes.
        minHealthyPercentage: 100,
      });
    } else {
      groups["api-server"] = new NodeGroup(this, "api-server", {
        ...common,
        role: "api-server",
        instanceProfile: profile("api-server"),
        securityGroups: layout.apiServer.securityGroups,
        instanceType: layout.apiServer.instanceType,
        minSize: 1,
        maxSize: 2,
        desiredCapacity: 1,
        targetGroups: props.loadBalancers.apiServerTargetGroups,
      });
      groups.scheduler = new NodeGroup(this, "scheduler", {
        ...common,
        role: "scheduler",
        instanceProfile: profile("scheduler"),
        securityGroups: layout.scheduler.securityGroups,
        instanceType: layout.scheduler.instanceType,
        minSize: layout.scheduler.count,
        maxSize: layout.scheduler.count + 1,
        desiredCapacity: layout.scheduler.count,
      });
      const worker = new NodeGroup(this, "worker", {
        ...common,
        role: "worker",
        instanceProfile: profile("worker"),
        securityGroups: layout.worker.securityGroups,
        instanceType: layout.worker.instanceType,
        minSize: layout.worker.min,
        maxSize: layout.worker.max,
        // No desiredCapacity: the scaling policy owns it between min and max.
        drainTimeoutSeconds: layout.worker.drainSeconds ?? DEFAULT_WORKER_DRAIN_SECONDS,
      });
      groups.worker = worker;
      if (layout.worker.max > layout.worker.min) {
        // CPU is a coarse proxy; the better signal (queued+running tasks / concurrency,
        // what the Helm chart's KEDA uses) needs a metric published from the metadata DB.
        new AutoscalingPolicy(this, "worker-cpu", {
          name: `${props.resourcePrefix}-worker-cpu`,
          autoscalingGroupName: worker.autoScalingGroup.name,
          policyType: "TargetTrackingScaling",
          targetTrackingConfiguration: {
            predefinedMetricSpecification: { predefinedMetricType: "ASGAverageCPUUtilization" },
            targetValue: layout.worker.targetCpuPercent ?? 60,
          },
        });
      }
    }
    this.groups = groups;
  }
}
