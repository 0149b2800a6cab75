/**
 * Portability: a second region deploys beside the first under the same namePrefix and env
 * (no name in an account-global namespace is shared), and with One Zone EFS every node
 * launches where the file system has its mount target (read from the synthesized stacks).
 */
import { Testing } from "cdktf";
import { AirflowClusterStack } from "../../modules/cluster-stack";
import { AirflowConfigInput, clusterNames } from "../../modules/config";
import { StateStack } from "../../modules/state-stack";
import { Block, config, list, resources } from "./helpers";

/** Resource types whose name is unique per account (IAM) or worldwide (S3), and its attribute. */
const GLOBAL_NAMES: Readonly<Record<string, string>> = {
  aws_iam_role: "name",
  aws_iam_instance_profile: "name",
  aws_iam_user: "name",
  aws_iam_group: "name",
  aws_iam_policy: "name",
  aws_s3_bucket: "bucket",
};

/** IAM types named inside their role or user (or not named at all): no global clash. */
const SCOPED_IAM_TYPES = new Set([
  "aws_iam_role_policy",
  "aws_iam_role_policy_attachment",
  "aws_iam_user_policy",
  "aws_iam_access_key",
]);

/** Every synthesized stack of one region: the state stack and the cluster stack. */
function synthRegion(input: Partial<AirflowConfigInput>): string[] {
  const c = config(input);
  const names = clusterNames(c);
  return [
    Testing.synth(new StateStack(Testing.app(), names.stateStack, { config: c })),
    Testing.synth(new AirflowClusterStack(Testing.app(), names.clusterStack, { config: c })),
  ];
}

/** The account-global names of the stacks, as `type name`. */
function globalNames(stacks: readonly string[]): string[] {
  return stacks.flatMap((synth) => {
    const types = Object.keys((JSON.parse(synth) as { resource?: object }).resource ?? {});
    const unclassified = types.filter(
      (t) => t.startsWith("aws_iam_") && !(t in GLOBAL_NAMES) && !SCOPED_IAM_TYPES.has(t),
    );
    // A new IAM type must be classified here before this test can vouch for it.
    expect(unclassified).toEqual([]);
    return Object.entries(GLOBAL_NAMES).flatMap(([type, attr]) =>
      list(synth, type).map((r) => `${type} ${String(r[attr] ?? r[`${attr}_prefix`])}`),
    );
  });
}

describe.each([
  ["CeleryExecutor", { executor: "CeleryExecutor" } as const],
  ["LocalExecutor", { executor: "LocalExecutor" } as const],
])("a second region with the same namePrefix and env (%s)", (_name, executor) => {
  // SMTP e-mail adds the one IAM user; eu-central-2 has no legacy ELB account.
  const input = {
    ...executor,
    env: "prod",
    accountId: "123456789012",
    emailBackend: "smtp",
    notificationEmail: "data-team@example.com",
  } as const;
  const first = globalNames(synthRegion({ ...input, region: "us-east-1" }));
  const second = globalNames(synthRegion({ ...input, region: "eu-central-2" }));

  it("GIVEN two regions WHEN both are synthesized THEN every IAM principal and bucket is there, and none has the other region's name", () => {
    for (const type of ["aws_iam_role", "aws_iam_instance_profile", "aws_iam_user", "aws_s3_bucket"]) {
      expect(first.some((n) => n.startsWith(`${type} `))).toBe(true);
    }
    expect(first.filter((n) => second.includes(n))).toEqual([]);
  });

  it("GIVEN one region WHEN synthesized THEN its global names are distinct among themselves", () => {
    expect(new Set(first).size).toBe(first.length);
  });
});

/** The private subnets in AZ order (their Name tag ends in the AZ index): AZ and id reference. */
function privateSubnets(synth: string): { az: string; id: string }[] {
  return Object.entries(resources(synth, "aws_subnet"))
    .map(([name, s]) => ({ name, s, tags: s.tags as Record<string, string> }))
    .filter(({ tags }) => tags.Tier === "private")
    .sort((a, b) => Number(a.tags.Name.split("-").pop()) - Number(b.tags.Name.split("-").pop()))
    .map(({ name, s }) => ({ az: String(s.availability_zone), id: `\${aws_subnet.${name}.id}` }));
}

describe.each<[string, Partial<AirflowConfigInput>, number | "all"]>([
  ["regional EFS (Celery)", { executor: "CeleryExecutor" }, "all"],
  ["One Zone EFS in the default AZ (Celery)", { executor: "CeleryExecutor", efs: { oneZone: true } }, 0],
  [
    "One Zone EFS in a chosen AZ (Celery)",
    {
      executor: "CeleryExecutor",
      availabilityZones: ["us-east-1a", "us-east-1b", "us-east-1c"],
      efs: { oneZone: true, availabilityZone: "us-east-1b" },
    },
    1,
  ],
  [
    "One Zone EFS in a chosen AZ (LocalExecutor)",
    {
      executor: "LocalExecutor",
      availabilityZones: ["us-east-1a", "us-east-1c"],
      efs: { oneZone: true, availabilityZone: "us-east-1c" },
    },
    1,
  ],
])("%s", (_name, input, zone) => {
  const c = config(input);
  const synth = Testing.synth(
    new AirflowClusterStack(Testing.app(), clusterNames(c).clusterStack, { config: c }),
  );
  const subnets = privateSubnets(synth);
  const all = subnets.map((s) => s.id);
  const mounted = list(synth, "aws_efs_mount_target").map((m) => String(m.subnet_id));
  const groups: Block[] = list(synth, "aws_autoscaling_group");

  it("GIVEN the file system WHEN synthesized THEN its mount targets are in the expected subnets", () => {
    expect(mounted.sort()).toEqual(zone === "all" ? [...all].sort() : [all[zone]]);
    const fs = list(synth, "aws_efs_file_system")[0];
    if (zone === "all") {
      expect(fs.availability_zone_name).toBeUndefined();
    } else {
      // The file system's AZ is its mount target's subnet's AZ.
      const subnetName = all[zone].split(".")[1];
      expect(fs.availability_zone_name).toBe(`\${aws_subnet.${subnetName}.availability_zone}`);
      if (c.efs.availabilityZone) expect(subnets[zone].az).toBe(c.efs.availabilityZone);
    }
  });

  it("GIVEN every node group WHEN synthesized THEN it launches only in subnets that have a mount target", () => {
    expect(groups.length).toBeGreaterThan(0);
    for (const g of groups) {
      const launch = g.vpc_zone_identifier as string[];
      expect(launch.length).toBeGreaterThan(0);
      expect(launch.filter((s) => !mounted.includes(s))).toEqual([]);
      // A regional file system keeps every group spread over every AZ.
      if (zone === "all") expect([...launch].sort()).toEqual([...all].sort());
    }
  });

  it("GIVEN the load balancers WHEN synthesized THEN they still span every AZ (ALBs need two)", () => {
    for (const lb of list(synth, "aws_lb")) expect((lb.subnets as string[]).length).toBe(all.length);
  });
});
