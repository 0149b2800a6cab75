/**
 * Load balancers: the public ALB serves only the UI (HTTPS with a certificate, HTTP
 * otherwise), the api-server health check is Airflow 3's, Flower and the Execution API
 * live on the internal ALB only, and LocalExecutor needs no internal ALB.
 */
import { Lb } from "@cdktf/provider-aws/lib/lb";
import { LbListener } from "@cdktf/provider-aws/lib/lb-listener";
import { LbTargetGroup } from "@cdktf/provider-aws/lib/lb-target-group";
import { Testing } from "cdktf";
import { checkovSkips } from "../../modules/checkov";
import { ClusterLoadBalancers, ClusterLoadBalancersProps, TLS_POLICY } from "../../modules/load-balancer";
import { ComputePlane } from "../../modules/compute-plane";
import { coreFixture, resourcesOf, sourceDirs, synthCompute } from "./compute-fixtures";
import { config } from "./helpers";

const CERT = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012";

/** Opens the UI to an office block: the public ALB exists (no certificate in dev). */
const OFFICE = { uiAllowedCidrs: ["203.0.113.0/24"] };

describe("public ALB", () => {
  // GIVEN a dev cluster whose UI is open to an office block (no certificate) WHEN synthesized
  const { json, parsed, plane } = synthCompute(OFFICE);

  it("GIVEN uiAllowedCidrs WHEN synthesized THEN it is internet-facing in the public subnets, drops invalid headers and logs to the access-log bucket", () => {
    expect(json).toHaveResourceWithProperties(Lb, {
      internal: false,
      load_balancer_type: "application",
      subnets: ["${aws_subnet.pub-a.id}", "${aws_subnet.pub-b.id}"],
      security_groups: ["${aws_security_group.alb-public.id}"],
      drop_invalid_header_fields: true,
      access_logs: { bucket: "${aws_s3_bucket.access-logs.bucket}", prefix: "alb/public", enabled: true },
    });
  });

  it("GIVEN uiAllowedCidrs WHEN synthesized THEN its UI target group health-checks the api-server on :8080 at /api/v2/monitor/health", () => {
    expect(json).toHaveResourceWithProperties(LbTargetGroup, {
      name: "airflow-dev-ui",
      port: 8080,
      protocol: "HTTP",
      health_check: expect.objectContaining({ path: "/api/v2/monitor/health", matcher: "200" }),
    });
  });

  it("GIVEN no certificate WHEN synthesized THEN it serves plain HTTP on 80 only, excused in checkov with a reason", () => {
    const [http] = plane.loadBalancers.publicListeners;
    expect(plane.loadBalancers.publicListeners).toHaveLength(1);
    expect(http.portInput).toBe(80);
    expect(http.protocolInput).toBe("HTTP");
    expect(checkovSkips(http).map((s) => s.id)).toEqual(["CKV_AWS_103", "CKV_AWS_2"]);
    for (const s of checkovSkips(http)) expect(s.comment).toMatch(/certificateArn/);
    expect(plane.loadBalancers.publicLb).toBeDefined();
    if (plane.loadBalancers.publicLb) {
      expect(checkovSkips(plane.loadBalancers.publicLb).map((s) => s.id)).toContain("CKV2_AWS_20");
    }
  });

  it("GIVEN uiAllowedCidrs WHEN synthesized THEN its only listener is :80, so Flower (5555) is never exposed", () => {
    const publicListeners = Object.values(resourcesOf(parsed, "aws_lb_listener")).filter((l) =>
      String(l.load_balancer_arn).includes("_public_"),
    );
    expect(publicListeners.map((l) => l.port)).toEqual([80]);
  });
});

describe("public ALB with a certificate", () => {
  // GIVEN certificateArn WHEN synthesized
  const { json, parsed, plane } = synthCompute({ certificateArn: CERT, uiAllowedCidrs: ["203.0.113.0/24"] });

  it("GIVEN certificateArn WHEN synthesized THEN its listeners and the UI target group need no checkov excuse, and the ALB none for CKV2_AWS_20", () => {
    for (const l of plane.loadBalancers.publicListeners) expect(checkovSkips(l)).toEqual([]);
    // HTTPS listener in front: checkov's HTTP target-group check passes, so no skip (a stale one fails CI).
    const { uiTargetGroup, publicLb } = plane.loadBalancers;
    expect(uiTargetGroup && publicLb).toBeDefined();
    if (uiTargetGroup && publicLb) {
      expect(checkovSkips(uiTargetGroup)).toEqual([]);
      expect(checkovSkips(publicLb).map((s) => s.id)).not.toContain("CKV2_AWS_20");
    }
  });

  it("GIVEN certificateArn WHEN synthesized THEN TLS 1.2+ terminates on 443 and 80 redirects to HTTPS", () => {
    // THEN an HTTPS listener with the certificate and the TLS policy
    expect(json).toHaveResourceWithProperties(LbListener, {
      port: 443,
      protocol: "HTTPS",
      ssl_policy: TLS_POLICY,
      certificate_arn: CERT,
    });
    // and an HTTP listener that only redirects
    expect(json).toHaveResourceWithProperties(LbListener, {
      port: 80,
      protocol: "HTTP",
      default_action: [
        expect.objectContaining({
          type: "redirect",
          redirect: { port: "443", protocol: "HTTPS", status_code: "HTTP_301" },
        }),
      ],
    });
  });

  it("GIVEN certificateArn WHEN synthesized THEN the published base URL is https://", () => {
    const base = Object.values(resourcesOf(parsed, "aws_ssm_parameter")).find(
      (p) => p.name === "/airflow/dev/api/base-url",
    );
    expect(String(base?.insecure_value)).toMatch(/^https:\/\//);
  });

  it("GIVEN uiDomainName WHEN synthesized THEN the base URL uses it, not the ALB name the certificate cannot cover", () => {
    const { parsed: named } = synthCompute({ certificateArn: CERT, uiDomainName: "airflow.example.com" });
    const base = Object.values(resourcesOf(named, "aws_ssm_parameter")).find(
      (p) => p.name === "/airflow/dev/api/base-url",
    );
    expect(base?.insecure_value).toBe("https://airflow.example.com");
  });
});

describe("no public ALB (the default: UI by SSM port forwarding)", () => {
  // GIVEN the default dev cluster (CeleryExecutor, uiAllowedCidrs empty) WHEN synthesized
  const { parsed, plane } = synthCompute();

  it("GIVEN the default dev cluster WHEN synthesized THEN its only load balancer is the internal one, with no UI target group or public listener", () => {
    expect(Object.values(resourcesOf(parsed, "aws_lb")).map((l) => l.internal)).toEqual([true]);
    expect(Object.values(resourcesOf(parsed, "aws_lb_target_group")).map((t) => t.name)).toEqual([
      "airflow-dev-exec",
      "airflow-dev-flower",
    ]);
    expect(plane.loadBalancers.publicListeners).toEqual([]);
    expect(plane.uiUrl).toBe("http://localhost:8080");
  });

  it("GIVEN the default dev cluster WHEN synthesized THEN the api-server is still ELB-health-checked, through the internal ALB's target groups", () => {
    const asg = Object.values(resourcesOf(parsed, "aws_autoscaling_group")).find(
      (g) => g.name === "airflow-dev-api-server",
    );
    expect((asg?.target_group_arns as string[]).length).toBe(2);
    expect(asg?.health_check_type).toBe("ELB");
  });
});

describe("internal ALB (CeleryExecutor)", () => {
  // GIVEN a dev cluster (CeleryExecutor) with both ALBs WHEN synthesized
  const { json, parsed } = synthCompute(OFFICE);

  it("GIVEN CeleryExecutor WHEN synthesized THEN it is internal, in the private subnets, behind its own security group", () => {
    expect(json).toHaveResourceWithProperties(Lb, {
      internal: true,
      subnets: ["${aws_subnet.priv-a.id}", "${aws_subnet.priv-b.id}"],
      security_groups: ["${aws_security_group.alb-internal.id}"],
    });
  });

  it.each([
    ["execution API", 8080, "airflow-dev-exec", "/api/v2/monitor/health", "200"],
    ["Flower", 5555, "airflow-dev-flower", "/healthcheck", "200-499"],
  ])(
    "GIVEN CeleryExecutor WHEN synthesized THEN it forwards %s on :%d to target group %s (health %s, %s)",
    (_what, port, tgName, healthPath, matcher) => {
      expect(json).toHaveResourceWithProperties(LbTargetGroup, {
        name: tgName,
        port,
        health_check: expect.objectContaining({ path: healthPath, matcher }),
      });
      const listener = Object.values(resourcesOf(parsed, "aws_lb_listener")).find((l) => l.port === port);
      expect(String(listener?.load_balancer_arn)).toMatch(/_internal_/);
    },
  );

  it("GIVEN CeleryExecutor WHEN synthesized THEN the api-server group is registered with all three target groups and ELB-health-checked", () => {
    const asg = Object.values(resourcesOf(parsed, "aws_autoscaling_group")).find(
      (g) => g.name === "airflow-dev-api-server",
    );
    expect((asg?.target_group_arns as string[]).length).toBe(3);
    expect(asg?.health_check_type).toBe("ELB");
  });
});

describe("LocalExecutor", () => {
  it("GIVEN LocalExecutor WHEN synthesized THEN there is no internal ALB and no Flower, only the UI target group", () => {
    const { parsed } = synthCompute({ executor: "LocalExecutor" });
    const lbs = Object.values(resourcesOf(parsed, "aws_lb"));
    expect(lbs.map((l) => l.internal)).toEqual([false]);
    expect(Object.values(resourcesOf(parsed, "aws_lb_target_group")).map((t) => t.name)).toEqual([
      "airflow-dev-ui",
    ]);
  });
});

describe("invalid wiring", () => {
  const subnet = { id: "subnet-1" };
  it.each<[string, Partial<ClusterLoadBalancersProps>, RegExp]>([
    ["one public subnet", { publicSubnets: [subnet] }, /publicSubnets: got 1; allowed: 2 or more/],
    [
      "an internal ALB in one subnet",
      { internal: { securityGroup: { id: "sg-2" }, subnets: [subnet] } },
      /internal.subnets: got 1; allowed: 2 or more/,
    ],
    [
      "an access-log prefix with a slash",
      { accessLogs: { bucket: { bucket: "b" }, prefix: "/alb/" } },
      /accessLogs.prefix: got "\/alb\/"/,
    ],
    [
      "no load balancer at all",
      { publicLoadBalancer: false, internal: undefined },
      /publicLoadBalancer: got false; allowed: true without `internal`/,
    ],
    [
      "a public ALB without its security group",
      { publicSecurityGroup: undefined },
      /publicSecurityGroup: got \(missing\); allowed: a security group with the public ALB/,
    ],
    [
      "a resource prefix no ALB name may carry",
      { resourcePrefix: "airflow_dev" },
      /resourcePrefix: got "airflow_dev"; allowed: letters, digits and '-'/,
    ],
  ])("GIVEN %s WHEN synthesized THEN one line names the prop", (_name, overrides, message) => {
    // GIVEN valid props with one override WHEN synthesized THEN the error names that prop
    expect(() =>
      Testing.synthScope((scope) => {
        const base: ClusterLoadBalancersProps = {
          resourcePrefix: "airflow-dev",
          env: "dev",
          deletionProtection: false,
          vpc: { id: "vpc-1" },
          publicSubnets: [subnet, subnet],
          publicSecurityGroup: { id: "sg-1" },
          internal: { securityGroup: { id: "sg-2" }, subnets: [subnet, subnet] },
        };
        new ClusterLoadBalancers(scope, "lbs", { ...base, ...overrides });
      }),
    ).toThrow(message);
  });

  it("GIVEN CeleryExecutor without the internal ALB's security group WHEN synthesized THEN the compute plane names it", () => {
    // GIVEN a CeleryExecutor core without the internal ALB's security group
    const celery = config();
    const fx = coreFixture(celery);
    const securityGroups = { ...fx.props.securityGroups, albInternal: undefined };
    // WHEN the compute plane is built THEN the error names the missing prop
    expect(
      () =>
        new ComputePlane(fx.stack, "compute", {
          config: celery,
          ...fx.props,
          securityGroups,
          ...sourceDirs(),
        }),
    ).toThrow(/securityGroups.albInternal: got \(missing\); allowed: a security group with CeleryExecutor/);
  });
});

describe("stack outputs", () => {
  it.each([
    ["CeleryExecutor", true],
    ["LocalExecutor", false],
  ] as const)(
    "GIVEN %s WHEN synthesized THEN the outputs name the URLs, buckets, EMR roles and settings locations, each described",
    (executor, flower) => {
      // GIVEN the compute plane WHEN synthesized THEN outputs carry stable names and descriptions
      const { parsed } = synthCompute({ executor, uiAllowedCidrs: ["203.0.113.0/24"] });
      const outputs = parsed.output ?? {};
      const expected = [
        "artifacts_bucket",
        "dags_uri",
        "data_bucket",
        "emr_instance_profile_arn",
        "emr_instance_profile_name",
        "emr_service_role_arn",
        "emr_service_role_name",
        "execution_api_url",
        ...(flower ? ["flower_url"] : []),
        "log_bucket",
        "node_role_arns",
        "parameter_prefix",
        "secret_arn_prefix",
        "spark_job_uri",
        "ui_url",
      ];
      expect(Object.keys(outputs).sort()).toEqual(expected);
      for (const o of Object.values(outputs)) expect(o.description?.length).toBeGreaterThan(10);
      expect(outputs.parameter_prefix.value).toBe("/airflow/dev");
      // one IAM role per node role of the executor
      expect(Object.keys(outputs.node_role_arns.value as unknown as object).sort()).toEqual(
        executor === "CeleryExecutor" ? ["api-server", "scheduler", "worker"] : ["standalone"],
      );
      expect(outputs.ui_url.value).toMatch(/^http:\/\/\$\{aws_lb\.[\w-]+\.dns_name\}$/);
    },
  );
});
