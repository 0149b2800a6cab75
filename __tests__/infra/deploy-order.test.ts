/**
 * Deploy order on the first `apply`: what each resource must wait for, read from the
 * synthesized cluster stack (depends_on holds resource addresses), and the parameter
 * groups that are replaced create-before-destroy without a name clash.
 */
import { Testing } from "cdktf";
import { AirflowClusterStack } from "../../modules/cluster-stack";
import { AirflowConfigInput, clusterNames } from "../../modules/config";
import { Block, config, resources } from "./helpers";

function synthCluster(input: Partial<AirflowConfigInput> = {}): string {
  const c = config(input);
  return Testing.synth(new AirflowClusterStack(Testing.app(), clusterNames(c).clusterStack, { config: c }));
}

/** The address (`type.name`) of the one resource of `type` whose name and block satisfy `pred`. */
function addressOf(synth: string, type: string, pred: (name: string, block: Block) => boolean): string {
  const hits = Object.entries(resources(synth, type)).filter(([name, block]) => pred(name, block));
  if (hits.length !== 1) throw new Error(`expected one ${type}, got ${hits.map(([n]) => n).join(", ")}`);
  return `${type}.${hits[0][0]}`;
}

/** depends_on of every resource of `type`, by whether it is internal (load balancers). */
function lbDependsOn(synth: string): { internal: boolean; dependsOn: string[] }[] {
  return Object.values(resources(synth, "aws_lb")).map((lb) => ({
    internal: lb.internal as boolean,
    dependsOn: (lb.depends_on as string[] | undefined) ?? [],
  }));
}

describe.each<[string, Partial<AirflowConfigInput>, number]>([
  ["CeleryExecutor", { executor: "CeleryExecutor", uiAllowedCidrs: ["203.0.113.0/24"] }, 2],
  ["CeleryExecutor, UI port-forwarded", { executor: "CeleryExecutor" }, 1],
  ["LocalExecutor", { executor: "LocalExecutor" }, 1],
])("deploy order with %s", (_name, input, lbCount) => {
  const synth = synthCluster(input);
  const accessLogPolicy = addressOf(synth, "aws_s3_bucket_policy", (name) => name.includes("access-logs"));
  const igwRoute = addressOf(
    synth,
    "aws_route",
    (_n, b) => typeof b.gateway_id === "string" && b.gateway_id.startsWith("${aws_internet_gateway."),
  );

  it("GIVEN every load balancer WHEN synthesized THEN it waits for the access-log bucket policy (ELB test-writes on enable)", () => {
    const lbs = lbDependsOn(synth);
    expect(lbs).toHaveLength(lbCount);
    for (const lb of lbs) expect(lb.dependsOn).toContain(accessLogPolicy);
  });

  it("GIVEN the public load balancer WHEN synthesized THEN it waits for the internet gateway route; the internal one does not", () => {
    for (const lb of lbDependsOn(synth)) {
      if (lb.internal) expect(lb.dependsOn).not.toContain(igwRoute);
      else expect(lb.dependsOn).toContain(igwRoute);
    }
  });

  it("GIVEN the metadata DB WHEN synthesized THEN it waits for its enhanced-monitoring role's policy attachment", () => {
    const attachment = addressOf(
      synth,
      "aws_iam_role_policy_attachment",
      (_n, b) =>
        typeof b.policy_arn === "string" && b.policy_arn.endsWith("/AmazonRDSEnhancedMonitoringRole"),
    );
    const db = Object.values(resources(synth, "aws_db_instance"))[0];
    expect(db.depends_on).toContain(attachment);
    // ...and the role it names is the one the attachment attaches to.
    const role = resources(synth, "aws_iam_role_policy_attachment")[attachment.split(".")[1]].role as string;
    expect(db.monitoring_role_arn).toBe(role.replace(/\.name\}$/, ".arn}"));
  });

  it("GIVEN the DB parameter group WHEN synthesized THEN it has a name prefix and is replaced create-before-destroy", () => {
    const groups = Object.values(resources(synth, "aws_db_parameter_group"));
    expect(groups).toHaveLength(1);
    expect(groups[0].name).toBeUndefined();
    expect(groups[0].name_prefix).toBe("airflow-dev-metadata-mysql8-4-");
    expect(groups[0].lifecycle).toEqual({ create_before_destroy: true });
  });
});

describe("broker parameter group", () => {
  const celery = synthCluster({ executor: "CeleryExecutor" });

  it("GIVEN CeleryExecutor WHEN synthesized THEN the group's name carries a digest of its replacing attributes and it is replaced create-before-destroy", () => {
    const groups = Object.values(resources(celery, "aws_elasticache_parameter_group"));
    expect(groups).toHaveLength(1);
    expect(groups[0].name).toMatch(/^airflow-dev-broker-valkey8-[0-9a-f]{8}$/);
    expect(groups[0].lifecycle).toEqual({ create_before_destroy: true });
  });

  it("GIVEN another environment WHEN synthesized THEN the digest changes with the description (a replacement gets a fresh name)", () => {
    const name = (s: string) =>
      Object.values(resources(s, "aws_elasticache_parameter_group"))[0].name as string;
    const prod = synthCluster({ executor: "CeleryExecutor", env: "prod", uiAllowedCidrs: [] });
    expect(name(prod).slice(-8)).not.toBe(name(celery).slice(-8));
  });
});
