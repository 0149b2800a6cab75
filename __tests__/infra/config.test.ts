import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Testing } from "cdktf";
import { AirflowClusterStack } from "../../modules/cluster-stack";
import {
  ALB_MIN_SUBNET_PREFIX,
  ConfigError,
  SUBNET_NEW_BITS,
  VPC_MAX_PREFIX,
  clusterNames,
  derivedNames,
  instanceArchitecture,
  loadConfig,
  parseConfig,
} from "../../modules/config";
import { Network } from "../../modules/network";
import { bareStack, list } from "./helpers";

/** The problem lines of the ConfigError a parse raises (fails the test if none). */
function problems(input: Record<string, unknown>): readonly string[] {
  try {
    parseConfig({ env: "dev", ...input }, "test");
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(input)}`);
}

describe("config defaults", () => {
  it("GIVEN an empty file WHEN parsed THEN a sane, secure dev cluster results", () => {
    // WHEN
    const c = parseConfig({ env: "dev" }, "test");
    // THEN
    expect(c).toMatchObject({
      namePrefix: "airflow",
      region: "us-east-1",
      azCount: 2,
      vpcCidr: "10.40.0.0/16",
      executor: "CeleryExecutor",
      workers: { min: 1, max: 4 },
      schedulerCount: 2,
      database: { engine: "mysql", engineVersion: "8.4", instanceClass: "db.t4g.medium", multiAz: false },
      instanceTypes: { apiServer: "t3a.medium", scheduler: "t3a.medium", worker: "t3a.large" },
      redis: { nodeType: "cache.t4g.micro", replicas: 0, authTokenUpdateStrategy: "ROTATE" },
      uiAccess: "port-forward",
      publicLoadBalancer: false,
      efs: { oneZone: false },
      logRetentionDays: 30,
      ami: { name: "airflow-golden-*", owners: ["self"] },
      uiAllowedCidrs: [],
      scheduler: {
        maxDagrunsToCreatePerLoop: 10,
        maxDagrunsPerLoopToSchedule: 20,
        useRowLevelLocking: true,
        poolMetricsIntervalSeconds: 5,
        orphanedTasksCheckIntervalSeconds: 300,
      },
      allowTriggerInFuture: false,
      durability: { deletionProtection: false },
    });
    expect(c.notificationEmail).toBeUndefined();
    expect(c.certificateArn).toBeUndefined();
  });

  it.each([
    ["dev", false, false],
    ["prod", true, true],
    ["staging", true, true],
  ])(
    "GIVEN env %s WHEN parsed THEN deletionProtection=%s and multiAz=%s by default",
    (env, protect, multiAz) => {
      const c = parseConfig({ env }, "test");
      expect(c.durability.deletionProtection).toBe(protect);
      expect(c.database.multiAz).toBe(multiAz);
    },
  );

  // One row per environment policy: every durability value, decided once from env and
  // deletionProtection (the README's "Environment policy" table lists the same values).
  it.each([
    // env, deletionProtection, protect, secretDays, kmsDays, cacheSnapshotDays, natPerAz, natInstance, brokerReplicas, detailedMonitoring, finalSnapshot, forceDestroy, apiServers
    ["dev", undefined, false, 0, 7, 1, false, true, 0, false, false, true, 1],
    ["dev", true, true, 7, 7, 1, false, true, 0, false, true, false, 1],
    ["prod", undefined, true, 7, 30, 7, true, false, 1, true, true, false, 2],
    ["prod", false, false, 0, 30, 7, true, false, 1, true, true, true, 2],
  ] as const)(
    "GIVEN env %s and deletionProtection %s WHEN parsed THEN the durability policy is protect=%s, secrets %sd, KMS %sd, cache snapshots %sd, NAT per AZ %s, NAT instance %s, broker replicas %s, detailed monitoring %s, final snapshot %s, force destroy %s, api-servers %s",
    (
      env,
      deletionProtection,
      protect,
      secretDays,
      kmsDays,
      cacheDays,
      natPerAz,
      natInstance,
      brokerReplicas,
      detailedMonitoring,
      finalSnapshot,
      forceDestroy,
      apiServers,
    ) => {
      // WHEN
      const c = parseConfig(
        { env, ...(deletionProtection === undefined ? {} : { deletionProtection }) },
        "test",
      );
      // THEN
      expect(c.durability).toEqual({
        deletionProtection: protect,
        secretRecoveryWindowDays: secretDays,
        kmsDeletionWindowDays: kmsDays,
        cacheSnapshotRetentionDays: cacheDays,
        natPerAz,
        natInstance,
        brokerReplicas,
        detailedMonitoring,
        finalSnapshot,
        forceDestroyBuckets: forceDestroy,
        apiServerCount: apiServers,
      });
    },
  );

  // Sizes follow the env (dev the smallest that runs each role), and an explicit value wins.
  it.each([
    // env, input, apiServer, scheduler, worker, standalone, redis node type, replicas
    ["dev", {}, "t3a.medium", "t3a.medium", "t3a.large", "t3a.xlarge", "cache.t4g.micro", 0],
    ["prod", {}, "t3.large", "t3.large", "m6i.large", "t3.xlarge", "cache.t4g.small", 1],
    [
      "dev",
      { instanceTypes: { worker: "m6i.large" }, redis: { nodeType: "cache.t4g.small", replicas: 1 } },
      "t3a.medium",
      "t3a.medium",
      "m6i.large",
      "t3a.xlarge",
      "cache.t4g.small",
      1,
    ],
    [
      "prod",
      { redis: { replicas: 0 } },
      "t3.large",
      "t3.large",
      "m6i.large",
      "t3.xlarge",
      "cache.t4g.small",
      0,
    ],
  ] as const)(
    "GIVEN env %s and %j WHEN parsed THEN api-server %s, scheduler %s, worker %s, standalone %s, broker %s x (1 + %s)",
    (env, input, apiServer, scheduler, worker, standalone, nodeType, replicas) => {
      const c = parseConfig({ env, ...input }, "test");
      expect(c.instanceTypes).toEqual({ apiServer, scheduler, worker, standalone });
      expect(c.redis).toMatchObject({ nodeType, replicas });
    },
  );

  it.each([
    // env, input, root volume GiB
    ["dev", {}, 20],
    ["prod", {}, 30],
    ["dev", { rootVolumeGb: 50 }, 50],
  ] as const)("GIVEN env %s and %j WHEN parsed THEN every node's root volume is %i GiB", (env, input, gb) => {
    expect(parseConfig({ env, ...input }, "test").rootVolumeGb).toBe(gb);
  });

  it.each([
    // input, uiAccess, publicLoadBalancer
    [{}, "port-forward", false],
    [{ uiAllowedCidrs: ["203.0.113.0/24"] }, "load-balancer", true],
    [{ executor: "LocalExecutor" }, "port-forward", true],
    [{ deletionProtection: true }, "port-forward", true],
  ] as const)(
    "GIVEN %j WHEN parsed THEN the UI is reached by %s and the public load balancer exists: %s",
    (input, uiAccess, publicLoadBalancer) => {
      const c = parseConfig({ env: "dev", ...input }, "test");
      expect(c.uiAccess).toBe(uiAccess);
      expect(c.publicLoadBalancer).toBe(publicLoadBalancer);
    },
  );

  it("GIVEN explicit overrides of derived values WHEN parsed THEN they win", () => {
    const c = parseConfig({ env: "prod", deletionProtection: false, database: { multiAz: false } }, "test");
    expect(c.durability.deletionProtection).toBe(false);
    expect(c.database.multiAz).toBe(false);
  });

  it("GIVEN postgres WHEN parsed THEN version 17 is derived", () => {
    expect(parseConfig({ env: "dev", database: { engine: "postgres" } }, "test").database.engineVersion).toBe(
      "17",
    );
  });

  it("GIVEN pinned availability zones WHEN parsed THEN azCount follows them", () => {
    const c = parseConfig(
      { env: "dev", availabilityZones: ["us-east-1a", "us-east-1b", "us-east-1c"] },
      "test",
    );
    expect(c.azCount).toBe(3);
  });

  it("GIVEN a config WHEN names are derived THEN they follow the settings contract", () => {
    const names = clusterNames(parseConfig({ env: "prod", namePrefix: "etl" }, "test"));
    expect(names).toMatchObject({
      resourcePrefix: "etl-prod",
      parameterPrefix: "/etl/prod",
      secretPrefix: "etl/prod",
      clusterStack: "etl-prod",
      stateStack: "etl-state",
      stateKey: "etl/prod/terraform.tfstate",
    });
    expect(names.stateBucket).toMatch(/^etl-tfstate-us-east-1-[0-9a-f]{10}$/);
  });

  it.each([
    [
      "config accountId",
      { accountId: "123456789012" },
      undefined,
      "airflow-tfstate-123456789012-us-east-1",
      false,
    ],
    ["the deploy's caller account", {}, "210987654321", "airflow-tfstate-210987654321-us-east-1", false],
    [
      "config accountId over the caller's",
      { accountId: "123456789012" },
      "210987654321",
      "airflow-tfstate-123456789012-us-east-1",
      false,
    ],
    ["explicit stateBucketName", { stateBucketName: "my-state" }, "210987654321", "my-state", false],
  ])(
    "GIVEN %s WHEN names are derived THEN the state bucket is unique to the account",
    (_n, input, callerAccount, bucket, guess) => {
      const saved = process.env.AIRFLOW_ACCOUNT_ID;
      if (callerAccount) process.env.AIRFLOW_ACCOUNT_ID = callerAccount;
      try {
        const c = parseConfig({ env: "dev", ...input }, "test");
        expect(clusterNames(c).stateBucket).toBe(bucket);
        expect(c.stateBucketNameIsGlobalGuess).toBe(guess);
      } finally {
        if (saved === undefined) delete process.env.AIRFLOW_ACCOUNT_ID;
        else process.env.AIRFLOW_ACCOUNT_ID = saved;
      }
    },
  );

  it("GIVEN no account anywhere WHEN parsed THEN the bucket name is flagged as a global guess", () => {
    expect(parseConfig({ env: "dev" }, "test").stateBucketNameIsGlobalGuess).toBe(true);
  });

  it("GIVEN the same prefix and region WHEN names are derived twice THEN the state bucket is the same", () => {
    const a = clusterNames(parseConfig({ env: "dev" }, "test")).stateBucket;
    const b = clusterNames(parseConfig({ env: "prod" }, "test")).stateBucket;
    expect(a).toBe(b);
  });
});

describe("config validation", () => {
  // GIVEN an invalid field, WHEN parsed, THEN exactly one line names the field, the bad
  // value and what is allowed.
  it.each<[string, Record<string, unknown>, string]>([
    ["AZ count too low", { azCount: 1 }, "test: azCount: got 1; allowed: an integer from 2 to 6"],
    ["AZ count fractional", { azCount: 2.5 }, "test: azCount: got 2.5; allowed: an integer from 2 to 6"],
    ["AZ count as string", { azCount: "2" }, 'test: azCount: got "2"; allowed: an integer from 2 to 6'],
    [
      "VPC CIDR too large",
      { vpcCidr: "10.0.0.0/8" },
      'test: vpcCidr: got "10.0.0.0/8"; allowed: an IPv4 CIDR block from /16 to /23 such as 10.40.0.0/16',
    ],
    [
      "VPC CIDR malformed",
      { vpcCidr: "10.0.0/16" },
      'test: vpcCidr: got "10.0.0/16"; allowed: an IPv4 CIDR block from /16 to /23 such as 10.40.0.0/16',
    ],
    [
      "VPC CIDR with host bits set",
      { vpcCidr: "10.40.1.0/16" },
      'test: vpcCidr: got "10.40.1.0/16"; allowed: a block with no host bits set, here 10.40.0.0/16',
    ],
    [
      "VPC whose subnets are too small for a load balancer (/24: /28 subnets, an ALB needs /27)",
      { vpcCidr: "10.40.0.0/24" },
      'test: vpcCidr: got "10.40.0.0/24"; allowed: an IPv4 CIDR block from /16 to /23 such as 10.40.0.0/16',
    ],
    [
      "VPC too small for the cluster's peak",
      { vpcCidr: "10.40.0.0/23", workers: { max: 40 }, redis: { replicas: 1 } },
      'test: vpcCidr: got "10.40.0.0/23"; allowed: a /21 or larger block: its private subnets would be /27 (27 usable addresses) but one may need 60 (nodes during an instance refresh, the internal load balancer, RDS, the cache, EFS and DAG_1\'s EMR cluster)',
    ],
    [
      "UI domain name with a scheme",
      { uiDomainName: "https://airflow.example.com" },
      'test: uiDomainName: got "https://airflow.example.com"; allowed: a lowercase DNS name such as airflow.example.com',
    ],
    [
      "unknown executor",
      { executor: "KubernetesExecutor" },
      'test: executor: got "KubernetesExecutor"; allowed: one of "CeleryExecutor", "LocalExecutor"',
    ],
    [
      "bad region",
      { region: "moon-1" },
      'test: region: got "moon-1"; allowed: an AWS region code such as us-east-1',
    ],
    [
      "root volume below the golden AMI's snapshot",
      { rootVolumeGb: 8 },
      "test: rootVolumeGb: got 8; allowed: an integer from 20 to 16384",
    ],
    [
      "workers min above max",
      { workers: { min: 5, max: 2 } },
      "test: workers.min: got 5; allowed: an integer no greater than workers.max (2)",
    ],
    [
      "workers.spot as a string",
      { workers: { spot: "yes" } },
      'test: workers.spot: got "yes"; allowed: true or false',
    ],
    [
      "negative workers.min",
      { workers: { min: -1 } },
      "test: workers.min: got -1; allowed: an integer from 0 to 100",
    ],
    [
      "too many schedulers",
      { schedulerCount: 5 },
      "test: schedulerCount: got 5; allowed: an integer from 1 to 4",
    ],
    [
      "MariaDB",
      { database: { engine: "mariadb" } },
      'test: database.engine: got "mariadb"; allowed: one of "mysql", "postgres"',
    ],
    [
      "DB class without db. prefix",
      { database: { instanceClass: "t3.micro" } },
      'test: database.instanceClass: got "t3.micro"; allowed: an RDS instance class db.<family>.<size> such as db.t4g.medium (sizes: nano, micro, small, medium, large, xlarge, <n>xlarge, metal)',
    ],
    [
      "DB class with a misspelt size",
      { database: { instanceClass: "db.r6g.xlargee" } },
      'test: database.instanceClass: got "db.r6g.xlargee"; allowed: an RDS instance class db.<family>.<size> such as db.t4g.medium (sizes: nano, micro, small, medium, large, xlarge, <n>xlarge, metal)',
    ],
    [
      "instance type with a misspelt size",
      { instanceTypes: { worker: "m6i.xlargee" } },
      'test: instanceTypes.worker: got "m6i.xlargee"; allowed: an EC2 instance type <family>.<size> such as m6i.large (sizes: nano, micro, small, medium, large, xlarge, <n>xlarge, metal)',
    ],
    [
      "instance type without a size",
      { instanceTypes: { scheduler: "m6i" } },
      'test: instanceTypes.scheduler: got "m6i"; allowed: an EC2 instance type <family>.<size> such as m6i.large (sizes: nano, micro, small, medium, large, xlarge, <n>xlarge, metal)',
    ],
    [
      "instance type whose family has no generation",
      { instanceTypes: { apiServer: "large.xlarge" } },
      'test: instanceTypes.apiServer: got "large.xlarge"; allowed: an EC2 instance type <family>.<size> such as m6i.large (sizes: nano, micro, small, medium, large, xlarge, <n>xlarge, metal)',
    ],
    [
      "Graviton types against the x86_64-only golden AMI",
      { instanceTypes: { apiServer: "t4g.large", scheduler: "t4g.large", worker: "m7g.large" } },
      'test: instanceTypes.apiServer: got "t4g.large"; allowed: an x86_64 instance type: the golden AMI ("airflow-golden-*") is built for x86_64 only (requirements.lock is resolved for x86_64); for arm64 set ami.id or ami.name to your own image',
    ],
    [
      "a Graviton standalone node against the x86_64-only golden AMI",
      { executor: "LocalExecutor", instanceTypes: { standalone: "m7g.xlarge" } },
      'test: instanceTypes.standalone: got "m7g.xlarge"; allowed: an x86_64 instance type: the golden AMI ("airflow-golden-*") is built for x86_64 only (requirements.lock is resolved for x86_64); for arm64 set ami.id or ami.name to your own image',
    ],
    [
      "backups off",
      { database: { backupRetentionDays: 0 } },
      "test: database.backupRetentionDays: got 0; allowed: an integer from 1 to 35",
    ],
    [
      "too many replicas",
      { redis: { replicas: 6 } },
      "test: redis.replicas: got 6; allowed: an integer from 0 to 5",
    ],
    [
      "an AUTH token strategy ElastiCache does not take here",
      { redis: { authTokenUpdateStrategy: "DELETE" } },
      'test: redis.authTokenUpdateStrategy: got "DELETE"; allowed: one of "ROTATE", "SET"',
    ],
    [
      "Redis node type",
      { redis: { nodeType: "r6g.large" } },
      'test: redis.nodeType: got "r6g.large"; allowed: an ElastiCache node type cache.<family>.<size> such as cache.t4g.small (sizes: nano, micro, small, medium, large, xlarge, <n>xlarge, metal)',
    ],
    [
      "Redis node type with a misspelt size",
      { redis: { nodeType: "cache.r7g.larg" } },
      'test: redis.nodeType: got "cache.r7g.larg"; allowed: an ElastiCache node type cache.<family>.<size> such as cache.t4g.small (sizes: nano, micro, small, medium, large, xlarge, <n>xlarge, metal)',
    ],
    [
      "retention not a CloudWatch value",
      { logRetentionDays: 31 },
      "test: logRetentionDays: got 31; allowed: one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
    ],
    [
      "EMR runtime limit beyond the alarm's 3-hour window",
      { emrMaxRuntimeMinutes: 240 },
      "test: emrMaxRuntimeMinutes: got 240; allowed: an integer from 20 to 180",
    ],
    [
      "bad e-mail",
      { notificationEmail: "not-an-email" },
      'test: notificationEmail: got "not-an-email"; allowed: an e-mail address such as data-team@example.com',
    ],
    [
      "short AMI id",
      { ami: { id: "ami-123" } },
      'test: ami.id: got "ami-123"; allowed: an AMI id such as ami-0123456789abcdef0',
    ],
    [
      "empty AMI owners",
      { ami: { owners: [] } },
      'test: ami.owners: got []; allowed: a non-empty list of AMI owners such as ["self"]',
    ],
    [
      "AMI looked up by name among Amazon-aliased images",
      { ami: { owners: ["amazon"] } },
      'test: ami.owners.0: got "amazon"; allowed: "self" or a 12-digit account id while ami.id is unset: images under "amazon" are published by other accounts, so a stranger\'s image could match ami.name',
    ],
    [
      "AMI looked up by name among Marketplace images",
      { ami: { owners: ["self", "aws-marketplace"] } },
      'test: ami.owners.1: got "aws-marketplace"; allowed: "self" or a 12-digit account id while ami.id is unset: images under "aws-marketplace" are published by other accounts, so a stranger\'s image could match ami.name',
    ],
    [
      "UI CIDR without prefix",
      { uiAllowedCidrs: ["203.0.113.7"] },
      'test: uiAllowedCidrs.0: got "203.0.113.7"; allowed: an IPv4 CIDR block such as 203.0.113.0/24',
    ],
    [
      "UI CIDR with host bits set",
      { uiAllowedCidrs: ["203.0.113.7/24"] },
      'test: uiAllowedCidrs.0: got "203.0.113.7/24"; allowed: a block with no host bits set, here 203.0.113.0/24',
    ],
    [
      "UI CIDR repeated",
      { uiAllowedCidrs: ["203.0.113.0/24", "198.51.100.0/24", "203.0.113.0/24"] },
      'test: uiAllowedCidrs.2: got "203.0.113.0/24"; allowed: a block that neither repeats nor overlaps uiAllowedCidrs.0 ("203.0.113.0/24")',
    ],
    [
      "UI CIDRs overlapping",
      { uiAllowedCidrs: ["198.51.100.0/24", "198.51.100.128/25"] },
      'test: uiAllowedCidrs.1: got "198.51.100.128/25"; allowed: a block that neither repeats nor overlaps uiAllowedCidrs.0 ("198.51.100.0/24")',
    ],
    [
      "the whole internet without the opt-in",
      { uiAllowedCidrs: ["0.0.0.0/0"] },
      'test: uiAllowedCidrs.0: got "0.0.0.0/0"; allowed: narrower blocks, or uiAllowPublicInternet: true to open the UI to the whole internet',
    ],
    [
      "a UI reachable from outside the VPC over HTTP outside dev",
      { env: "prod", uiAllowedCidrs: ["203.0.113.0/24"] },
      'test: certificateArn: got (missing); allowed: an ACM certificate ARN while uiAllowedCidrs is set in env "prod" (a UI reachable from outside the VPC is HTTPS-only; only dev may serve it over HTTP)',
    ],
    [
      "certificate ARN of another service",
      { certificateArn: "arn:aws:iam::123456789012:server-certificate/x" },
      'test: certificateArn: got "arn:aws:iam::123456789012:server-certificate/x"; allowed: an ACM certificate ARN such as arn:aws:acm:us-east-1:123456789012:certificate/<uuid>',
    ],
    [
      "row locking off with two schedulers",
      { scheduler: { useRowLevelLocking: false } },
      "test: scheduler.useRowLevelLocking: got false; allowed: true (an instance refresh starts the new scheduler before the old one stops, so two schedulers overlap even with one node)",
    ],
    [
      "row locking off with one scheduler (a refresh overlaps the old and the new)",
      { schedulerCount: 1, scheduler: { useRowLevelLocking: false } },
      "test: scheduler.useRowLevelLocking: got false; allowed: true (an instance refresh starts the new scheduler before the old one stops, so two schedulers overlap even with one node)",
    ],
    [
      "row locking off on a LocalExecutor standalone node (refresh launches before it terminates)",
      { executor: "LocalExecutor", scheduler: { useRowLevelLocking: false } },
      "test: scheduler.useRowLevelLocking: got false; allowed: true (an instance refresh starts the new scheduler before the old one stops, so two schedulers overlap even with one node)",
    ],
    [
      "scheduler tunable out of range",
      { scheduler: { maxDagrunsToCreatePerLoop: 0 } },
      "test: scheduler.maxDagrunsToCreatePerLoop: got 0; allowed: an integer from 1 to 1000",
    ],
    ["parallelism zero", { parallelism: 0 }, "test: parallelism: got 0; allowed: an integer from 1 to 4096"],
    [
      "boolean as string",
      { allowTriggerInFuture: "yes" },
      'test: allowTriggerInFuture: got "yes"; allowed: true or false',
    ],
    [
      "upper-case name prefix",
      { namePrefix: "Airflow" },
      "test: namePrefix: got \"Airflow\"; allowed: lowercase letters, digits and '-', 2-12 characters, starting with a letter",
    ],
    [
      "name prefix ending in a hyphen (one line, though it also has two in a row)",
      { namePrefix: "air--" },
      "test: namePrefix: got \"air--\"; allowed: lowercase letters, digits and '-', 2-12 characters, starting with a letter",
    ],
    [
      "a misspelt Graviton type (one line: the architecture is judged once the type is valid)",
      { instanceTypes: { apiServer: "t4g.largee", scheduler: "t4g.large", worker: "t4g.large" } },
      'test: instanceTypes.apiServer: got "t4g.largee"; allowed: an EC2 instance type <family>.<size> such as m6i.large (sizes: nano, micro, small, medium, large, xlarge, <n>xlarge, metal)',
    ],
    [
      "a small VPC with host bits set (one line: its size is judged once the block is clean)",
      { vpcCidr: "10.40.1.0/23", workers: { max: 40 } },
      'test: vpcCidr: got "10.40.1.0/23"; allowed: a block with no host bits set, here 10.40.0.0/23',
    ],
    [
      "name prefix with consecutive hyphens",
      { namePrefix: "air--flow" },
      'test: namePrefix: got "air--flow"; allowed: no two consecutive hyphens (RDS and ElastiCache identifiers refuse them)',
    ],
    [
      "name prefix making load balancer names start with internal-",
      { namePrefix: "internal" },
      'test: namePrefix: got "internal"; allowed: a prefix that does not make load balancer names start with "internal-" (internal-dev-int)',
    ],
    [
      "name prefix giving bucket names an S3-reserved prefix",
      { namePrefix: "sthree" },
      'test: namePrefix: got "sthree"; allowed: a prefix that does not give S3 bucket names the reserved affix "sthree-" (sthree-dev-access-logs-000000000000-us-east-1)',
    ],
    [
      "name prefix and env too long for S3 bucket names in a long-named region",
      { namePrefix: "dataplatform", env: "warehous", region: "ap-southeastern-1" },
      'test: namePrefix: got "dataplatform"; allowed: at most 11 characters with env "warehous" and region "ap-southeastern-1": S3 bucket names are at most 63 characters and dataplatform-warehous-access-logs-000000000000-ap-southeastern-1 has 64',
    ],
    [
      "state bucket name with an S3-reserved suffix",
      { stateBucketName: "team-state-s3alias" },
      'test: stateBucketName: got "team-state-s3alias"; allowed: an S3 bucket name not using the reserved affix "-s3alias"',
    ],
    [
      "AZ of another region",
      { availabilityZones: ["us-east-1a", "us-west-2b"] },
      'test: availabilityZones.1: got "us-west-2b"; allowed: an AZ of region us-east-1, such as us-east-1a',
    ],
    [
      "azCount disagreeing with pinned AZs",
      { azCount: 3, availabilityZones: ["us-east-1a", "us-east-1b"] },
      "test: azCount: got 3; allowed: 2 (the number of availabilityZones) or omitted",
    ],
    [
      "One Zone EFS AZ outside the pinned AZs",
      {
        availabilityZones: ["us-east-1a", "us-east-1b"],
        efs: { oneZone: true, availabilityZone: "us-east-1c" },
      },
      'test: efs.availabilityZone: got "us-east-1c"; allowed: one of availabilityZones: "us-east-1a", "us-east-1b"',
    ],
    [
      "One Zone EFS AZ without pinned AZs",
      { efs: { oneZone: true, availabilityZone: "us-east-1a" } },
      'test: efs.availabilityZone: got "us-east-1a"; allowed: omitted unless availabilityZones is set (only pinned AZs are known when the stack is synthesized)',
    ],
    [
      "EFS AZ for a regional file system",
      { availabilityZones: ["us-east-1a", "us-east-1b"], efs: { availabilityZone: "us-east-1a" } },
      'test: efs.availabilityZone: got "us-east-1a"; allowed: omitted unless efs.oneZone is true (a regional file system has a mount target in every AZ)',
    ],
    [
      "EFS AZ that is no AZ name",
      { efs: { oneZone: true, availabilityZone: "east" } },
      'test: efs.availabilityZone: got "east"; allowed: an AZ name such as us-east-1a',
    ],
    [
      "reserved tag key",
      { tags: { "aws:owner": "me" } },
      'test: tags: key "aws:owner" not allowed; allowed: a tag key of 1-128 characters not starting with aws:',
    ],
    [
      "mixed CPU architectures (one golden AMI serves every role)",
      {
        instanceTypes: { apiServer: "t4g.large", scheduler: "t4g.large", worker: "m6i.large" },
        ami: { name: "team-arm64-*" },
      },
      'test: instanceTypes.worker: got "m6i.large"; allowed: an arm64 instance type like instanceTypes.apiServer ("t4g.large"): one golden AMI serves every role',
    ],
    [
      "AMI pinned twice",
      { ami: { id: "ami-0123456789abcdef0", gitRevision: "c8e1283" } },
      'test: ami.gitRevision: got "c8e1283"; allowed: omitted when ami.id is set (pin by id or by git revision, not both)',
    ],
    [
      "AMI git revision not a commit",
      { ami: { gitRevision: "main" } },
      'test: ami.gitRevision: got "main"; allowed: the git commit the AMI was baked from (7-40 hex digits)',
    ],
    [
      "account id too short",
      { accountId: "12345" },
      'test: accountId: got "12345"; allowed: a 12-digit AWS account id such as 123456789012',
    ],
    [
      "unknown e-mail backend",
      { emailBackend: "sendmail" },
      'test: emailBackend: got "sendmail"; allowed: one of "ses", "smtp"',
    ],
    [
      "unknown top-level key",
      { executer: "LocalExecutor" },
      'test: executer: unknown key (value "LocalExecutor"); allowed keys here: env, namePrefix, region, azCount, availabilityZones, vpcCidr, executor, instanceTypes, rootVolumeGb, workers, schedulerCount, database, redis, efs, logRetentionDays, emailBackend, notificationEmail, emrMaxRuntimeMinutes, ami, uiAllowedCidrs, uiAllowPublicInternet, certificateArn, uiDomainName, scheduler, allowTriggerInFuture, parallelism, workerConcurrency, accountId, deletionProtection, stateBucketName, tags, stateAccessPrincipalArns',
    ],
    [
      "state access given as an assumed-role session",
      { stateAccessPrincipalArns: ["arn:aws:sts::123456789012:assumed-role/deployer/alice"] },
      'test: stateAccessPrincipalArns.0: got "arn:aws:sts::123456789012:assumed-role/deployer/alice"; allowed: an IAM role or user ARN such as arn:aws:iam::123456789012:role/deployer (not an assumed-role session ARN)',
    ],
    [
      "an empty state access list",
      { stateAccessPrincipalArns: [] },
      "test: stateAccessPrincipalArns: got []; allowed: a non-empty list of IAM role or user ARNs, or omitted",
    ],
    [
      "a section that is not an object",
      { workers: [1, 4] },
      "test: workers: got [1,4]; allowed: an object with keys min, max, spot",
    ],
    [
      "unknown nested key",
      { database: { engin: "postgres" } },
      'test: database.engin: unknown key (value "postgres"); allowed keys here: engine, instanceClass, multiAz, allocatedStorageGb, backupRetentionDays, passwordVersion',
    ],
  ])("rejects %s", (_name, input, line) => {
    expect(problems(input)).toEqual([line]);
  });

  // GIVEN a value next to a refusal above WHEN parsed THEN it is accepted (the guards are not blanket bans)
  it.each<[string, Record<string, unknown>]>([
    ["the smallest VPC with the most AZs", { vpcCidr: "10.40.0.0/23", azCount: 6 }],
    ["the largest VPC", { vpcCidr: "10.0.0.0/16", workers: { max: 100 }, schedulerCount: 4 }],
    ["workers that scale to zero, on Spot", { workers: { min: 0, max: 3, spot: true } }],
    [
      "a real EC2 type of each shape",
      { instanceTypes: { worker: "m7i-flex.2xlarge", scheduler: "x2iedn.metal" } },
    ],
    [
      "a 48xlarge and a metal-24xl",
      { instanceTypes: { worker: "c7i.48xlarge", apiServer: "m7i.metal-24xl" } },
    ],
    [
      "Graviton types with an own image by id",
      {
        instanceTypes: { apiServer: "t4g.large", scheduler: "t4g.large", worker: "m7g.large" },
        ami: { id: "ami-0123456789abcdef0" },
      },
    ],
    [
      "Graviton types with an own image by name",
      {
        executor: "LocalExecutor",
        instanceTypes: { standalone: "m7g.xlarge" },
        ami: { name: "team-arm64-*" },
      },
    ],
    [
      "Amazon-aliased owners when the AMI is pinned by id",
      { ami: { owners: ["amazon"], id: "ami-0123456789abcdef0" } },
    ],
    ["an explicit owner account", { ami: { owners: ["self", "123456789012"] } }],
    ["adjacent UI CIDRs", { uiAllowedCidrs: ["198.51.100.0/25", "198.51.100.128/25"] }],
    ["the whole internet with the opt-in", { uiAllowedCidrs: ["0.0.0.0/0"], uiAllowPublicInternet: true }],
    ["HTTP from outside the VPC in dev", { uiAllowedCidrs: ["203.0.113.0/24"] }],
    [
      "HTTPS from outside the VPC outside dev",
      {
        env: "prod",
        uiAllowedCidrs: ["203.0.113.0/24"],
        certificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
      },
    ],
    [
      "the longest prefix and env in the longest real region",
      { namePrefix: "dataplatform", env: "warehous", region: "ap-southeast-2" },
    ],
    ["a prefix with single hyphens", { namePrefix: "dp-air-flow" }],
  ])("accepts %s", (_name, input) => {
    expect(() => parseConfig({ env: "dev", ...input }, "test")).not.toThrow();
  });

  it("GIVEN several invalid fields WHEN parsed THEN there is one line per field", () => {
    expect(problems({ azCount: 9, executor: "X", redis: { replicas: -1 } })).toEqual([
      "test: azCount: got 9; allowed: an integer from 2 to 6",
      'test: executor: got "X"; allowed: one of "CeleryExecutor", "LocalExecutor"',
      "test: redis.replicas: got -1; allowed: an integer from 0 to 5",
    ]);
  });
});

describe("loadConfig", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "airflow-config-"));
  writeFileSync(path.join(dir, "dev.json"), "{}");
  writeFileSync(path.join(dir, "prod.json"), JSON.stringify({ workers: { max: 8 } }));
  writeFileSync(path.join(dir, "broken.json"), "{ not json");
  writeFileSync(path.join(dir, "list.json"), "[1, 2]");
  writeFileSync(path.join(dir, "other.json"), JSON.stringify({ env: "prod" }));

  const message = (env: string): string => {
    try {
      loadConfig(env, dir);
    } catch (e) {
      if (e instanceof ConfigError) return e.message;
      throw e;
    }
    throw new Error("expected a ConfigError");
  };

  it("GIVEN an env file WHEN loaded THEN it is laid over the defaults with env from its name", () => {
    const c = loadConfig("prod", dir);
    expect(c.env).toBe("prod");
    expect(c.workers).toEqual({ min: 1, max: 8, spot: false });
  });

  it("GIVEN no env argument WHEN AIRFLOW_ENV is unset THEN dev is loaded", () => {
    const saved = process.env.AIRFLOW_ENV;
    delete process.env.AIRFLOW_ENV;
    try {
      expect(loadConfig(undefined, dir).env).toBe("dev");
    } finally {
      if (saved !== undefined) process.env.AIRFLOW_ENV = saved;
    }
  });

  it("GIVEN AIRFLOW_CONFIG_DIR WHEN no dir argument is given THEN env files are read from there", () => {
    const saved = process.env.AIRFLOW_CONFIG_DIR;
    process.env.AIRFLOW_CONFIG_DIR = dir;
    try {
      expect(loadConfig("prod").workers.max).toBe(8);
    } finally {
      if (saved === undefined) delete process.env.AIRFLOW_CONFIG_DIR;
      else process.env.AIRFLOW_CONFIG_DIR = saved;
    }
  });

  it.each<[string, string, RegExp]>([
    [
      "unknown env",
      "staging",
      /^AIRFLOW_ENV: got "staging"; no .*staging\.json; allowed: broken, dev, list, other, prod$/,
    ],
    ["path-like env", "../etc", /^AIRFLOW_ENV: got "\.\.\/etc"; allowed: lowercase letters and digits/],
    ["bad JSON", "broken", /broken\.json: not valid JSON \(/],
    ["JSON that is not an object", "list", /list\.json: \(root\): got \[1,2\]; allowed: a JSON object$/],
    [
      "env field disagreeing with the file name",
      "other",
      /other\.json: env: got "prod"; allowed: "other" \(the file's name\) or omitted$/,
    ],
  ])("GIVEN %s WHEN loaded THEN one clear line", (_name, env, pattern) => {
    const msg = message(env);
    expect(msg).toMatch(pattern);
    expect(msg.split("\n")).toHaveLength(1);
  });

  it("GIVEN the repository's own env files WHEN loaded THEN they are valid", () => {
    expect(loadConfig("dev").env).toBe("dev");
    const prod = loadConfig("prod");
    expect(prod.durability.deletionProtection).toBe(true);
    expect(prod.database.multiAz).toBe(true);
    // the non-default fixture the seam tests synthesize (scripts/test-infra.sh)
    expect(loadConfig("alt", path.join(__dirname, "fixtures/config")).namePrefix).toBe("dp-air");
  });
});

describe("instanceArchitecture", () => {
  // GIVEN an EC2 instance type WHEN classified THEN Graviton families (a "g" among the
  // attribute letters, and a1) are arm64, the rest x86_64, as EC2 DescribeInstanceTypes says.
  it.each([
    ["t3.large", "x86_64"],
    ["m6i.large", "x86_64"],
    ["m7a.xlarge", "x86_64"],
    ["m7i-flex.large", "x86_64"],
    ["g4dn.xlarge", "x86_64"],
    ["g4ad.xlarge", "x86_64"],
    ["u-6tb1.metal", "x86_64"],
    ["t4g.medium", "arm64"],
    ["m7g.large", "arm64"],
    ["c6gn.xlarge", "arm64"],
    ["r8g.large", "arm64"],
    ["x2gd.large", "arm64"],
    ["im4gn.large", "arm64"],
    ["g5g.xlarge", "arm64"],
    ["hpc7g.4xlarge", "arm64"],
    ["a1.large", "arm64"],
  ])("%s is %s", (type, arch) => {
    expect(instanceArchitecture(type)).toBe(arch);
  });
});

describe("the guards follow what the modules build", () => {
  it("GIVEN the smallest VPC config allows and the most AZs WHEN Network is synthesized THEN every subnet can hold a load balancer", () => {
    // GIVEN
    const smallest = parseConfig({ env: "dev", vpcCidr: `10.40.0.0/${VPC_MAX_PREFIX}`, azCount: 6 }, "test");
    const stack = bareStack();
    // WHEN
    new Network(stack, "network", {
      resourcePrefix: "airflow-dev",
      region: smallest.region,
      cidr: smallest.vpcCidr,
      azCount: smallest.azCount,
      flowLogRetentionDays: 30,
    });
    const prefixes = list(Testing.synth(stack), "aws_subnet").map((s) =>
      Number(String(s.cidr_block).split("/")[1]),
    );
    // THEN: 12 subnets, each exactly as config.ts's address plan assumes, and /27 or larger
    expect(prefixes).toHaveLength(12);
    expect(new Set(prefixes)).toEqual(new Set([VPC_MAX_PREFIX + SUBNET_NEW_BITS]));
    expect(Math.max(...prefixes)).toBeLessThanOrEqual(ALB_MIN_SUBNET_PREFIX);
  });

  it("GIVEN the longest prefix, env and real region WHEN the stack is synthesized THEN no name is longer than the longest config.ts checks", () => {
    // GIVEN
    const c = parseConfig(
      {
        env: "warehous",
        namePrefix: "dataplatform",
        region: "ap-southeast-2",
        accountId: "123456789012",
        uiAllowedCidrs: ["203.0.113.0/24"],
        certificateArn:
          "arn:aws:acm:ap-southeast-2:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
      },
      "test",
    );
    // WHEN (the account id is a data source at synth: give it its real length)
    const synth = Testing.synth(
      new AirflowClusterStack(Testing.app(), clusterNames(c).clusterStack, { config: c }),
    ).replace(/\$\{data\.aws_caller_identity\.[^}]+\}/g, "123456789012");
    const families = derivedNames(c);
    const synthesized: Record<keyof typeof families, string[]> = {
      bucket: [...list(synth, "aws_s3_bucket").map((r) => String(r.bucket)), c.stateBucketName],
      loadBalancer: list(synth, "aws_lb").map((r) => String(r.name)),
      targetGroup: list(synth, "aws_lb_target_group").map((r) => String(r.name)),
      iamRole: list(synth, "aws_iam_role").map((r) => String(r.name)),
      dbInstance: list(synth, "aws_db_instance").map((r) => String(r.identifier)),
      cacheCluster: list(synth, "aws_elasticache_replication_group").map((r) =>
        String(r.replication_group_id),
      ),
    };
    // THEN: a name longer than the family's longest in derivedNames (a new suffix in a
    // module) or than AWS's limit is listed
    const tooLong = (Object.entries(synthesized) as [keyof typeof families, string[]][]).flatMap(
      ([family, names]) => {
        const checked = Math.max(...families[family].names.map((n) => n.length));
        expect(names.length).toBeGreaterThan(0);
        return names
          .filter((n) => n.length > checked || n.length > families[family].limit)
          .map(
            (n) => `${family}: ${n} (${n.length} > ${checked} checked, ${families[family].limit} allowed)`,
          );
      },
    );
    expect(tooLong).toEqual([]);
    // load balancer and target group names are used whole: none was cut to collide
    for (const family of ["loadBalancer", "targetGroup"] as const) {
      expect(new Set(synthesized[family]).size).toBe(synthesized[family].length);
    }
  });
});
