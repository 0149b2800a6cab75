/**
 * `npm run cost` (scripts/cost.js) against the real synthesized dev, prod and alt stacks:
 * every resource type is priced or explicitly free, the quantities the parser reads match
 * the configs, unknown SKUs and bad input fail with one line, and --json has its shape.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { App } from "cdktf";
import { AirflowClusterStack } from "../../modules/cluster-stack";
import { clusterNames, loadConfig } from "../../modules/config";
import { StateStack } from "../../modules/state-stack";
import { CONTRACT as SETTINGS_CONTRACT } from "../../modules/contract";

const ROOT = path.join(__dirname, "../..");
const CLI = path.join(ROOT, "scripts", "cost.js");

interface Line {
  address: string;
  type: string;
  component: string;
  quantity: number;
  unit: string;
  unit_usd: number;
  per: string;
  usd_month: number;
}
interface Priced {
  region: string;
  total_usd_month: number;
  mwaa_usd_month: number | null;
  mwaa: { environment_class: string; workers: number; extra_schedulers: number; usd_month: number } | null;
  emr_per_run: { primary_instance_type: string; core_instance_count: number; usd_per_run: number } | null;
  resources: Line[];
}
type StackJson = {
  provider: { aws: { region: string }[] };
  resource: Record<string, Record<string, Record<string, unknown>>>;
};
interface CostModule {
  priceOutDir(outDir: string): Priced & { stack: string };
  priceStack(stack: StackJson): Priced;
  CostError: new (lines: string[]) => Error;
  FREE_TYPES: Record<string, string>;
  PRICERS: Record<string, unknown>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const cost = require("../../scripts/cost") as CostModule;
const prices = JSON.parse(readFileSync(path.join(ROOT, "config", "aws-prices.json"), "utf8"));
const HOURS = prices.hours_per_month as number;
const use1 = (service: string, sku: string): number => prices.services[service].prices["us-east-1"][sku];
const rds = (engine: string, sku: string): number => prices.services.rds.prices[engine]["us-east-1"][sku];

/** Synthesizes both stacks of one env the way main.ts does; returns the output dir and the cluster stack. */
function synthEnv(env: string, configDir = path.join(ROOT, "config")): { outdir: string; stack: StackJson } {
  const c = loadConfig(env, configDir);
  const names = clusterNames(c);
  const outdir = mkdtempSync(path.join(tmpdir(), `cost-${env}-`));
  const app = new App({ outdir });
  new StateStack(app, names.stateStack, { config: c });
  new AirflowClusterStack(app, names.clusterStack, { config: c });
  app.synth();
  const file = path.join(outdir, "stacks", names.clusterStack, "cdk.tf.json");
  return { outdir, stack: JSON.parse(readFileSync(file, "utf8")) };
}

function runCli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: "utf8" });
}

const synths = {
  dev: synthEnv("dev"),
  prod: synthEnv("prod"),
  alt: synthEnv("alt", path.join(__dirname, "fixtures", "config")),
};
const priced = {
  dev: cost.priceOutDir(synths.dev.outdir),
  prod: cost.priceOutDir(synths.prod.outdir),
  alt: cost.priceOutDir(synths.alt.outdir),
};
type Env = keyof typeof synths;

describe.each(Object.keys(synths) as Env[])("npm run cost on the %s synth", (env) => {
  const { stack } = synths[env];
  const awsTypes = Object.keys(stack.resource).filter((t) => t.startsWith("aws_"));

  it.each(awsTypes)("GIVEN resource type %s THEN it is priced or listed free with a reason", (type) => {
    if (cost.PRICERS[type]) {
      const addresses = Object.keys(stack.resource[type]).map((n) => `${type}.${n}`);
      const pricedAddresses = new Set(priced[env].resources.map((l) => l.address));
      expect(addresses.filter((a) => !pricedAddresses.has(a))).toEqual([]);
    } else {
      expect(cost.FREE_TYPES[type]).toMatch(/\w{3,}/);
    }
  });

  it("THEN the total is the sum of the resource lines and each line is quantity x unit price", () => {
    const r = priced[env];
    const sum = r.resources.reduce((n, l) => n + l.usd_month, 0);
    expect(r.total_usd_month).toBeCloseTo(sum, 1);
    for (const l of r.resources) {
      const months = l.per === "hour" ? HOURS : 1;
      expect(l.usd_month).toBeCloseTo(l.quantity * l.unit_usd * months, 1);
    }
  });
});

// The quantities the configs imply (config/dev.json is all defaults, prod.json and the alt
// fixture override some), each priced at its us-east-1 list price from the table.
const valkey = prices.services.elasticache.valkey_factor as number;
it.each<[Env, string, number, number, string]>([
  ["dev", "EC2 t3a.medium", 3, use1("ec2", "t3a.medium"), "api-server 1 + schedulers 2"],
  ["dev", "EC2 t3a.large", 1, use1("ec2", "t3a.large"), "worker min 1"],
  ["dev", "EC2 t4g.nano", 1, use1("ec2", "t4g.nano"), "the NAT instance"],
  [
    "dev",
    "EBS gp3",
    4 * 20 + 8,
    use1("ebs", "gp3"),
    "4 nodes x 20 GB (dev's root volume) + the NAT instance's 8 GB",
  ],
  ["dev", "detailed monitoring", 0, 0, "basic monitoring in dev"],
  ["dev", "RDS mysql db.t4g.medium", 1, rds("mysql", "db.t4g.medium"), "Single-AZ in dev"],
  ["dev", "RDS storage gp3", 20, rds("storage", "gp3"), "20 GB"],
  [
    "dev",
    "ElastiCache valkey cache.t4g.micro",
    1,
    use1("elasticache", "cache.t4g.micro") * valkey,
    "one node, no replica",
  ],
  ["dev", "NAT gateway", 0, 0, "a NAT instance instead"],
  ["dev", "ALB", 1, use1("elb", "alb_hour"), "internal only: the UI is port-forwarded"],
  ["dev", "public IPv4", 1, use1("vpc", "public_ipv4_hour"), "the NAT instance's"],
  ["dev", "EFS Standard", 1, use1("efs", "standard_gb"), "assumed 1 GB"],
  ["dev", "secret", 7, use1("secretsmanager", "secret_month"), "7 secrets, Flower's own password included"],
  ["dev", "KMS key", 1, use1("kms", "key_month"), "one CMK"],
  ["dev", "scaling alarms", 2, use1("cloudwatch", "alarm_month"), "worker queue-depth target tracking"],
  ["dev", "queue-depth signal", 2, use1("cloudwatch", "metric_month"), "WorkersNeeded + OldestQueuedSeconds"],
  ["dev", "S3 Standard", 4, use1("s3", "standard_gb"), "4 buckets x 1 GB"],
  [
    "dev",
    "Airflow metrics (CloudWatch agent)",
    SETTINGS_CONTRACT.cloudwatchAgent.statsd.metrics.length * 2,
    use1("cloudwatch", "metric_month"),
    "the agent's statsd rollup, once per cluster",
  ],
  [
    "alt",
    "Airflow metrics (CloudWatch agent)",
    SETTINGS_CONTRACT.cloudwatchAgent.statsd.metrics.length * 2,
    use1("cloudwatch", "metric_month"),
    "the standalone node's statsd rollup",
  ],
  ["prod", "EC2 m6i.xlarge", 2, use1("ec2", "m6i.xlarge"), "workers min 2"],
  ["prod", "RDS mysql db.m7g.large", 2, rds("mysql", "db.m7g.large"), "Multi-AZ: primary + standby"],
  ["prod", "RDS storage gp3", 200, rds("storage", "gp3"), "100 GB x 2 (Multi-AZ)"],
  ["prod", "NAT gateway", 3, use1("vpc", "nat_gateway_hour"), "one NAT per AZ"],
  ["prod", "EC2 t4g.nano", 0, 0, "no NAT instance outside dev"],
  [
    "prod",
    "ElastiCache valkey cache.t4g.small",
    2,
    use1("elasticache", "cache.t4g.small") * valkey,
    "primary + 1 replica (automatic failover)",
  ],
  ["prod", "ALB", 2, use1("elb", "alb_hour"), "public + internal (deletion protection keeps the public one)"],
  ["prod", "public IPv4", 6, use1("vpc", "public_ipv4_hour"), "3 NAT EIPs + public ALB in 3 AZs"],
  ["alt", "EC2 t3.xlarge", 1, use1("ec2", "t3.xlarge"), "one standalone node"],
  ["alt", "RDS postgres db.t4g.medium", 2, rds("postgres", "db.t4g.medium"), "Multi-AZ outside dev"],
  ["alt", "EFS One Zone", 1, use1("efs", "one_zone_gb"), "efs.oneZone"],
  ["alt", "ALB", 1, use1("elb", "alb_hour"), "LocalExecutor: no internal ALB"],
  ["alt", "ElastiCache valkey cache.t4g.small", 0, 0, "LocalExecutor: no broker"],
])("GIVEN the %s synth THEN %s is priced for %d units at $%d each (%s)", (env, component, quantity, unit) => {
  const lines = priced[env].resources.filter((l) => l.component === component);
  const q = lines.reduce((n, l) => n + l.quantity, 0);
  expect(q).toBe(quantity);
  for (const l of lines) expect(l.unit_usd).toBeCloseTo(unit, 6);
});

// Issue 12's target for the default dev cluster, read from the real cost tool over the real synth.
describe("cheaper defaults at equal capacity", () => {
  it("GIVEN the default dev synth THEN npm run cost prints at most $250/month in us-east-1 and at most half of MWAA at equal capacity", () => {
    const r = runCli(["--out", synths.dev.outdir, "--json"]);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as Priced;
    expect(out.region).toBe("us-east-1");
    expect(out.mwaa?.environment_class).toBe("mw1.medium");
    expect(out.total_usd_month).toBeLessThanOrEqual(250);
    expect(out.total_usd_month).toBeLessThanOrEqual(0.5 * (out.mwaa_usd_month ?? 0));
  });

  it("GIVEN the default dev synth THEN equal capacity holds: 2 schedulers, 1 worker at concurrency 16, the api-server", () => {
    const groups = synths.dev.stack.resource.aws_autoscaling_group;
    const desired = Object.fromEntries(
      Object.values(groups).map((g) => [String(g.name), (g.desired_capacity ?? g.min_size) as number]),
    );
    expect(desired).toEqual({
      "airflow-dev-api-server": 1,
      "airflow-dev-scheduler": 2,
      "airflow-dev-worker": 1,
    });
    expect(loadConfig("dev").workerConcurrency).toBe(16);
  });

  it("GIVEN the prod synth THEN it keeps a NAT gateway per AZ, a Multi-AZ DB and a replicated broker", () => {
    const res = synths.prod.stack.resource;
    expect(Object.keys(res.aws_nat_gateway ?? {})).toHaveLength(3);
    expect(res.aws_instance).toBeUndefined();
    expect(Object.values(res.aws_db_instance).map((d) => d.multi_az)).toEqual([true]);
    const [broker] = Object.values(res.aws_elasticache_replication_group);
    expect(broker).toMatchObject({ automatic_failover_enabled: true, multi_az_enabled: true });
    expect(broker.num_cache_clusters).toBeGreaterThanOrEqual(2);
  });
});

describe("MWAA at equal capacity", () => {
  it("GIVEN dev (2 t3a.medium schedulers, 1 worker x concurrency 16) THEN mw1.medium with 2 workers", () => {
    const m = priced.dev.mwaa!;
    expect([m.environment_class, m.workers, m.extra_schedulers]).toEqual(["mw1.medium", 2, 0]);
    const rates = prices.services.mwaa.prices["us-east-1"];
    const want =
      (rates.environment_hour["mw1.medium"] + rates.additional_worker_hour["mw1.medium"]) * HOURS +
      prices.assumptions.mwaa_metadata_gb.value * rates.metadata_gb_month;
    expect(priced.dev.mwaa_usd_month).toBeCloseTo(want, 2);
  });

  it("GIVEN prod (2 workers x 16 = 32 slots) THEN mw1.medium with 4 workers", () => {
    expect([priced.prod.mwaa!.environment_class, priced.prod.mwaa!.workers]).toEqual(["mw1.medium", 4]);
  });

  it("GIVEN alt (LocalExecutor, parallelism 48, t3.xlarge) THEN mw1.large with 3 workers", () => {
    expect([priced.alt.mwaa!.environment_class, priced.alt.mwaa!.workers]).toEqual(["mw1.large", 3]);
  });

  it("GIVEN the DAG asset in the synth THEN the EMR run is priced from DAG_1's Params", () => {
    expect(priced.dev.emr_per_run).toMatchObject({
      primary_instance_type: "m7g.xlarge",
      core_instance_count: 2,
    });
    const perNode = use1("ec2", "m7g.xlarge") + use1("emr", "m7g.xlarge");
    expect(priced.dev.emr_per_run!.usd_per_run).toBeCloseTo(
      3 * perNode * prices.assumptions.emr_run_hours.value,
      2,
    );
  });
});

describe("unknown SKUs and regions", () => {
  const mutated = (edit: (s: StackJson) => void): StackJson => {
    const s = JSON.parse(JSON.stringify(synths.dev.stack)) as StackJson;
    edit(s);
    return s;
  };
  const workerTemplate = (s: StackJson) =>
    Object.entries(s.resource.aws_launch_template).find(([n]) => n.includes("worker"))!;

  it("GIVEN an instance type the table lacks THEN one line names the resource, the SKU and the region", () => {
    const s = mutated((x) => {
      workerTemplate(x)[1].instance_type = "x9z.large";
    });
    expect(() => cost.priceStack(s)).toThrow(cost.CostError);
    expect(() => cost.priceStack(s)).toThrow(
      /^aws_autoscaling_group\.compute_nodes_worker_group_\w+: no ec2 price for x9z\.large in us-east-1 \(config\/aws-prices\.json services\.ec2\)$/,
    );
  });

  it("GIVEN a resource type neither priced nor free THEN one line names it", () => {
    const s = mutated((x) => {
      x.resource.aws_rds_cluster = { aurora: { engine: "aurora-mysql" } };
    });
    expect(() => cost.priceStack(s)).toThrow(
      /^aws_rds_cluster\.aurora: resource type aws_rds_cluster is neither priced nor listed free in scripts\/cost\.js$/,
    );
  });

  it("GIVEN another priced region THEN its prices apply; an unpriced region is one line", () => {
    const eu = cost.priceStack(mutated((x) => (x.provider.aws[0].region = "eu-west-1")));
    expect(eu.region).toBe("eu-west-1");
    const nat = eu.resources.find((l) => l.component === "EC2 t4g.nano")!;
    expect(nat.unit_usd).toBe(prices.services.ec2.prices["eu-west-1"]["t4g.nano"]);
    expect(() => cost.priceStack(mutated((x) => (x.provider.aws[0].region = "sa-east-1")))).toThrow(
      /^provider\.aws\.region: got "sa-east-1"; priced regions: us-east-1, us-west-2, eu-west-1, ap-northeast-2/,
    );
  });

  it("GIVEN the CLI on a stack with an unknown SKU THEN it prints one line and exits 1, no stack trace", () => {
    const s = mutated((x) => {
      workerTemplate(x)[1].instance_type = "x9z.large";
    });
    const out = mkdtempSync(path.join(tmpdir(), "cost-bad-"));
    mkdirSync(path.join(out, "stacks", "airflow-dev"), { recursive: true });
    writeFileSync(path.join(out, "stacks", "airflow-dev", "cdk.tf.json"), JSON.stringify(s));
    const r = runCli(["--out", out]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.trimEnd().split("\n")).toEqual([
      expect.stringMatching(/^cost: aws_autoscaling_group\.\S+: no ec2 price for x9z\.large in us-east-1/),
    ]);
  });
});

describe("the CLI", () => {
  it("GIVEN --json THEN stdout is exactly one JSON object with the documented fields", () => {
    const r = runCli(["--out", synths.dev.outdir, "--json"]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    const j = JSON.parse(lines[0]);
    expect(j).toMatchObject({
      region: "us-east-1",
      total_usd_month: priced.dev.total_usd_month,
      mwaa_usd_month: priced.dev.mwaa_usd_month,
    });
    expect(j.resources.length).toBeGreaterThan(10);
    for (const l of j.resources) {
      expect(l).toEqual(
        expect.objectContaining({
          address: expect.stringMatching(/^aws_\w+\.\S+$/),
          type: expect.stringMatching(/^aws_/),
          usd_month: expect.any(Number),
          quantity: expect.any(Number),
          unit: expect.any(String),
          unit_usd: expect.any(Number),
        }),
      );
    }
  });

  it("GIVEN no flags but --out THEN the table ends with the total, MWAA and the mapping", () => {
    const r = runCli(["--out", synths.dev.outdir]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`$${priced.dev.total_usd_month.toFixed(2)}  total`);
    expect(r.stdout).toMatch(/MWAA at equal capacity: mw1\.medium \+ 1 extra worker/);
    expect(r.stdout).toMatch(/mapping: class: the cheapest whose scheduler/);
  });

  const stateOnly = mkdtempSync(path.join(tmpdir(), "cost-state-"));
  mkdirSync(path.join(stateOnly, "stacks", "airflow-state"), { recursive: true });
  writeFileSync(
    path.join(stateOnly, "stacks", "airflow-state", "cdk.tf.json"),
    readFileSync(path.join(synths.dev.outdir, "stacks", "airflow-state", "cdk.tf.json")),
  );
  it.each([
    [["--out", "/nonexistent/cdktf.out"], /^cost: --out \/nonexistent\/cdktf\.out: no such directory/],
    [["--out", stateOnly], /^cost: --out \S+: expected one cluster stack .* found: airflow-state$/],
    [["--bogus"], /^cost: unknown argument "--bogus"; usage: npm run -s cost -- \[--out DIR\] \[--json\]$/],
    [["--out"], /^cost: --out: needs a directory/],
  ])("GIVEN %j THEN one line and exit 1", (args, want) => {
    const r = runCli(args as string[]);
    expect(r.status).toBe(1);
    expect(r.stderr.trimEnd().split("\n")).toEqual([expect.stringMatching(want)]);
  });
});
