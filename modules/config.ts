/**
 * The one typed configuration object of a deployment, validated before any construct
 * is built.
 *
 * `loadConfig(env)` reads `config/<env>.json` (env from `AIRFLOW_ENV`, default "dev"),
 * lays it over the defaults below and validates it with zod. Zero input (an empty
 * `{}` file) yields a sane, secure dev cluster. Every invalid field becomes ONE line
 * naming the field path, the bad value and what is allowed, collected in a
 * {@link ConfigError} that `main.ts` prints without a stack trace.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { AMI_NAME_FILTER, Architecture, UiAccess, iamName, repoRoot, showValue } from "./contract";

export type { Architecture } from "./contract";

/** Raised for any invalid configuration; `message` holds one line per problem. */
export class ConfigError extends Error {
  public constructor(
    /** One human-readable line per problem (field path, bad value, what is allowed). */
    public readonly problems: readonly string[],
  ) {
    super(problems.join("\n"));
    this.name = "ConfigError";
  }
}

/** CloudWatch Logs accepts only these retention periods (days). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** Default MySQL / PostgreSQL major versions (Airflow 3 supports MySQL 8.0/8.4, PostgreSQL 14-18). */
export const DB_ENGINE_VERSIONS = { mysql: "8.4", postgres: "17" } as const;

// --- small schema builders: each carries the "what is allowed" text it reports -------

const intRange = (min: number, max: number) =>
  z
    .number({ error: `an integer from ${min} to ${max}` })
    .int({ error: `an integer from ${min} to ${max}` })
    .min(min, { error: `an integer from ${min} to ${max}` })
    .max(max, { error: `an integer from ${min} to ${max}` });

const int = (min: number, max: number, def: number) => intRange(min, max).default(def);

const bool = (def: boolean) => z.boolean({ error: "true or false" }).default(def);

const pattern = (re: RegExp, allowed: string) => z.string({ error: allowed }).regex(re, { error: allowed });

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `one of ${values.map((v) => JSON.stringify(v)).join(", ")}` });

// --- IPv4 blocks ------------------------------------------------------------------------

/** An IPv4 CIDR block as numbers: `start` is the (network) address, `bits` the prefix length. */
interface Ipv4Block {
  readonly start: number;
  readonly bits: number;
}

const IPV4_CIDR = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\/(\d{1,2})$/;

/** Parses "a.b.c.d/n"; undefined unless every octet is 0-255 and n is 0-32. */
function parseCidr(v: string): Ipv4Block | undefined {
  const m = IPV4_CIDR.exec(v);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const bits = Number(m[5]);
  if (octets.some((o) => o > 255) || bits > 32) return undefined;
  return { start: octets.reduce((acc, o) => acc * 256 + o, 0), bits };
}

const blockSize = (bits: number): number => 2 ** (32 - bits);

/** "a.b.c.d/n" of the block's network address (host bits cleared). */
function networkCidr(b: Ipv4Block): string {
  const net = b.start - (b.start % blockSize(b.bits));
  return `${[24, 16, 8, 0].map((shift) => Math.floor(net / 2 ** shift) % 256).join(".")}/${b.bits}`;
}

const overlaps = (a: Ipv4Block, b: Ipv4Block): boolean =>
  a.start < b.start + blockSize(b.bits) && b.start < a.start + blockSize(a.bits);

/**
 * An IPv4 CIDR block with a prefix in [minBits, maxBits] and no host bits set: AWS would
 * silently widen "10.40.1.0/16" to 10.40.0.0/16 (or refuse it), never what was meant.
 */
const cidrBlock = (minBits: number, maxBits: number, allowed: string) =>
  z.string({ error: allowed }).superRefine((v, ctx) => {
    const b = parseCidr(v);
    if (!b || b.bits < minBits || b.bits > maxBits) {
      ctx.addIssue({ code: "custom", message: allowed });
    } else if (networkCidr(b) !== v) {
      ctx.addIssue({ code: "custom", message: `a block with no host bits set, here ${networkCidr(b)}` });
    }
  });

// --- the VPC address plan -----------------------------------------------------------------
// modules/network.ts cuts the VPC into 16 equal blocks (SUBNET_BITS = 4): public subnets
// take blocks 0..azCount-1 (the public ALB, NAT gateways), private subnets blocks
// 8..8+azCount-1 (every node, the internal ALB, RDS, ElastiCache, EFS mount targets and
// DAG_1's EMR cluster). The constants below mirror that plan; config.test.ts synthesizes
// Network with the smallest VPC allowed here and fails if the plan drifts.

/** Prefix bits network.ts adds to the VPC's for each subnet. */
export const SUBNET_NEW_BITS = 4;
/** An ALB needs a /27 or larger subnet in every AZ it spans... */
export const ALB_MIN_SUBNET_PREFIX = 27;
/** ...with at least 8 free addresses in each, to scale out. */
const ALB_FREE_ADDRESSES = 8;
/** AWS keeps the first four and the last address of every subnet. */
const AWS_RESERVED_PER_SUBNET = 5;
/** The smallest VPC: its public subnets must hold the public ALB. */
export const VPC_MAX_PREFIX = ALB_MIN_SUBNET_PREFIX - SUBNET_NEW_BITS;
/** DAG_1's default EMR cluster (1 primary + 2 core nodes), all in the first private subnet. */
const EMR_DEFAULT_NODES = 3;
const VPC_ALLOWED = `an IPv4 CIDR block from /16 to /${VPC_MAX_PREFIX} such as 10.40.0.0/16`;

/** Usable addresses of one subnet of a VPC with this prefix. */
const subnetAddresses = (vpcBits: number): number =>
  blockSize(vpcBits + SUBNET_NEW_BITS) - AWS_RESERVED_PER_SUBNET;

/**
 * Addresses the busiest private subnet (the first: it also holds the EMR cluster) may need
 * at peak: the node groups balanced over the AZs and doubled during an instance refresh
 * (maxHealthyPercentage 200, node-group.ts), the internal ALB's free addresses, one RDS
 * instance, every cache node, one EFS mount target and DAG_1's default EMR cluster.
 */
function privateAddressesNeeded(c: {
  readonly executor: string;
  readonly azs: number;
  readonly apiServerCount: number;
  readonly schedulerCount: number;
  readonly workersMax: number;
  readonly redisReplicas: number;
}): number {
  const celery = c.executor === "CeleryExecutor";
  // node-group.ts: api-servers and schedulers count + 1, workers workers.max; standalone 1.
  const nodes = celery ? c.apiServerCount + 1 + c.schedulerCount + 1 + c.workersMax : 1;
  const perAzNodes = Math.ceil((2 * nodes) / c.azs);
  const internalAlb = celery ? ALB_FREE_ADDRESSES : 0;
  const cacheNodes = celery ? 1 + c.redisReplicas : 0;
  return perAzNodes + internalAlb + 1 + cacheNodes + 1 + EMR_DEFAULT_NODES;
}

const CIDR_ALLOWED = "an IPv4 CIDR block such as 203.0.113.0/24";
const uiCidr = cidrBlock(0, 32, CIDR_ALLOWED);

// --- names AWS derives from namePrefix and env ----------------------------------------------

/** A family of AWS names with one length limit, as the modules derive them. */
export interface NameFamily {
  /** What the names are, for the error line. */
  readonly what: string;
  /** AWS's length limit for the family. */
  readonly limit: number;
  /** The longest names the stack derives in this family. */
  readonly names: readonly string[];
}

/** S3 refuses bucket names with these prefixes and suffixes (reserved for its own features). */
const S3_RESERVED_PREFIXES = ["xn--", "sthree-", "amzn-s3-demo-"] as const;
const S3_RESERVED_SUFFIXES = ["-s3alias", "--ol-s3", "--x-s3", "--table-s3"] as const;

/** The S3 reserved prefix or suffix a bucket name uses, if any. */
function s3Reserved(bucket: string): string | undefined {
  return (
    S3_RESERVED_PREFIXES.find((r) => bucket.startsWith(r)) ??
    S3_RESERVED_SUFFIXES.find((r) => bucket.endsWith(r))
  );
}

/**
 * The longest name of each limited family, spelled the way the modules spell them from
 * `<prefix>` = `<namePrefix>-<env>`: buckets.ts `<prefix>-access-logs-<account>-<region>`
 * and the state bucket; load-balancer.ts `<prefix>-ui`/`-int` (ALBs) and `-flower` (the
 * longest target group); database.ts `<prefix>-<region>-rds-monitoring` (the longest IAM role;
 * the SES SMTP user's name, same limit, is shorter) and
 * `<prefix>-metadata`; broker.ts `<prefix>-broker`. config.test.ts synthesizes the stack
 * with the longest prefix and env and fails if a synthesized name is longer than these.
 * @param c the fields the names come from (an unset account id counts as 12 digits)
 */
export function derivedNames(c: {
  readonly namePrefix: string;
  readonly env: string;
  readonly region: string;
  readonly accountId?: string;
  readonly stateBucketName?: string;
}): Record<
  "bucket" | "loadBalancer" | "targetGroup" | "iamRole" | "dbInstance" | "cacheCluster",
  NameFamily
> {
  const p = `${c.namePrefix}-${c.env}`;
  const account = c.accountId ?? "000000000000";
  return {
    bucket: {
      what: "S3 bucket names",
      limit: 63,
      names: [
        `${p}-access-logs-${account}-${c.region}`,
        c.stateBucketName ?? defaultStateBucket(c.namePrefix, c.region, account),
      ],
    },
    loadBalancer: { what: "load balancer names", limit: 32, names: [`${p}-int`, `${p}-ui`] },
    targetGroup: { what: "target group names", limit: 32, names: [`${p}-flower`] },
    iamRole: { what: "IAM role names", limit: 64, names: [iamName(p, c.region, "rds-monitoring")] },
    dbInstance: { what: "RDS instance identifiers", limit: 63, names: [`${p}-metadata`] },
    cacheCluster: { what: "ElastiCache replication group ids", limit: 40, names: [`${p}-broker`] },
  };
}

/**
 * The CPU architecture of an EC2 instance type: Graviton families carry a `g` among the
 * attribute letters after the generation digit (t4g, m7g, c6gn, x2gd, im4gn, g5g), and
 * `a1` is the first Graviton; everything else (t3, m6i, m7a, g4dn, m7i-flex) is x86_64.
 * @param instanceType e.g. "m7g.large"
 */
export function instanceArchitecture(instanceType: string): Architecture {
  const family = instanceType.split(".")[0];
  if (family === "a1") return "arm64";
  const m = /^[a-z-]+?\d+([a-z-]*)$/.exec(family);
  return m && m[1].includes("g") ? "arm64" : "x86_64";
}

/**
 * An EC2 family: series letters, generation, attribute letters and an optional variant
 * (t3, m6i, c6gn, r7iz, x2iedn, m7i-flex, u7i-12tb, u-6tb1, mac2-m2pro).
 */
const FAMILY = String.raw`(?:[a-z]{1,4}\d{1,2}[a-z]{0,6}(?:-flex|-\d{1,2}tb|-m\d[a-z]*)?|u-\d{1,2}tb\d)`;
/** An EC2 size: nano..xlarge, <n>xlarge, metal or metal-<n>xl. */
const SIZE = String.raw`(?:nano|micro|small|medium|large|xlarge|[1-9]\d{0,2}xlarge|metal(?:-\d{1,3}xl)?)`;
const SIZES = "nano, micro, small, medium, large, xlarge, <n>xlarge, metal";
const INSTANCE_TYPE = new RegExp(`^${FAMILY}\\.${SIZE}$`);

/** `namePrefix`: 2-12 lowercase letters, digits and '-'; AWS's rules follow in checkNames. */
const NAME_PREFIX = /^[a-z][a-z0-9-]{0,10}[a-z0-9]$/;

/** An availability zone name such as us-east-1a. */
const AZ_NAME = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9][a-z]$/;
const azName = () => pattern(AZ_NAME, "an AZ name such as us-east-1a");

/** Instance types: family.size, e.g. t3.large, m6i.xlarge, m7g.large; unset = {@link defaultSizes}. */
const instanceType = () =>
  pattern(
    INSTANCE_TYPE,
    `an EC2 instance type <family>.<size> such as m6i.large (sizes: ${SIZES})`,
  ).optional();

/** The node and broker sizes a deployment gets unless its config names them. */
export interface DefaultSizes {
  readonly instanceTypes: {
    readonly apiServer: string;
    readonly scheduler: string;
    readonly worker: string;
    readonly standalone: string;
  };
  readonly redisNodeType: string;
  /** Root volume of every node, GiB (gp3): at least the golden AMI's root snapshot. */
  readonly rootVolumeGb: number;
}

/**
 * Default sizes per environment. Outside dev the nodes keep headroom (t3.large, m6i.large
 * workers that never run out of CPU credits). Dev gets the smallest x86_64 sizes that still
 * run each role with the golden AMI: api-server + Flower and scheduler + dag-processor +
 * triggerer each fit 4 GiB, a worker at concurrency 16 keeps 8 GiB (about 0.4 GiB per task
 * process); t3a (AMD) lists about 10% under t3 at the same vCPUs and memory. A
 * cache.t4g.micro (0.5 GiB) holds the Celery queue of a dev cluster many times over.
 * Root volumes: the OS and the venv take about 5 GiB and task logs go to S3, so dev's 20 GiB
 * (the golden AMI's snapshot size) leaves room; elsewhere 30 GiB for local log and temp files.
 * @param env the environment name
 */
export function defaultSizes(env: string): DefaultSizes {
  return env === "dev"
    ? {
        instanceTypes: {
          apiServer: "t3a.medium",
          scheduler: "t3a.medium",
          worker: "t3a.large",
          standalone: "t3a.xlarge",
        },
        redisNodeType: "cache.t4g.micro",
        rootVolumeGb: 20,
      }
    : {
        instanceTypes: {
          apiServer: "t3.large",
          scheduler: "t3.large",
          worker: "m6i.large",
          standalone: "t3.xlarge",
        },
        redisNodeType: "cache.t4g.small",
        rootVolumeGb: 30,
      };
}

const schedulerSchema = z
  .strictObject({
    /** `[scheduler] max_dagruns_to_create_per_loop` */
    maxDagrunsToCreatePerLoop: int(1, 1000, 10),
    /** `[scheduler] max_dagruns_per_loop_to_schedule` */
    maxDagrunsPerLoopToSchedule: int(1, 1000, 20),
    /**
     * `[scheduler] use_row_level_locking`; must stay true: an instance refresh launches the
     * new scheduler node before the old one stops (minHealthyPercentage 100, node-group.ts),
     * so two schedulers overlap even with schedulerCount 1 or a LocalExecutor standalone node.
     */
    useRowLevelLocking: z
      .boolean({ error: "true or false" })
      .refine((v) => v, {
        error:
          "true (an instance refresh starts the new scheduler before the old one stops, so two schedulers overlap even with one node)",
      })
      .default(true),
    /** `[scheduler] pool_metrics_interval` */
    poolMetricsIntervalSeconds: int(1, 3600, 5),
    /** `[scheduler] orphaned_tasks_check_interval` */
    orphanedTasksCheckIntervalSeconds: int(10, 86400, 300),
  })
  .prefault({});

const schema = z
  .strictObject({
    /** Environment name; also the config file name (`config/<env>.json`). */
    env: pattern(
      /^[a-z][a-z0-9]{0,7}$/,
      "lowercase letters and digits, 1-8 characters, starting with a letter",
    ),
    /** Prefix of every resource, parameter and secret name. */
    namePrefix: pattern(
      NAME_PREFIX,
      "lowercase letters, digits and '-', 2-12 characters, starting with a letter",
    ).default("airflow"),
    region: pattern(
      /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$/,
      "an AWS region code such as us-east-1",
    ).default("us-east-1"),
    /**
     * Number of availability zones to spread subnets over. Default: the length of
     * `availabilityZones` when given, else 2.
     */
    azCount: intRange(2, 6).optional(),
    /**
     * Explicit AZ names, e.g. ["us-east-1a", "us-east-1b"]. Pinning them keeps subnets
     * from moving if AWS adds a zone; without it the first `azCount` available zones
     * are used.
     */
    availabilityZones: z
      .array(azName(), {
        error: 'a list of 2-6 AZ names such as ["us-east-1a", "us-east-1b"]',
      })
      .min(2, { error: "a list of 2-6 distinct AZ names" })
      .max(6, { error: "a list of 2-6 distinct AZ names" })
      .refine((v) => new Set(v).size === v.length, { error: "a list of 2-6 distinct AZ names" })
      .optional(),
    /** The VPC; /23 at the smallest, and large enough for the cluster's peak (see the address plan above). */
    vpcCidr: cidrBlock(16, VPC_MAX_PREFIX, VPC_ALLOWED).default("10.40.0.0/16"),
    executor: oneOf(["CeleryExecutor", "LocalExecutor"]).default("CeleryExecutor"),
    instanceTypes: z
      .strictObject({
        apiServer: instanceType(),
        scheduler: instanceType(),
        worker: instanceType(),
        standalone: instanceType(),
      })
      .prefault({}),
    /** Root volume of every node, GiB; unset = {@link defaultSizes}. At least the AMI's root snapshot (20 GiB). */
    rootVolumeGb: intRange(20, 16384).optional(),
    workers: z
      .strictObject({
        /** 0: no worker runs while no task is queued or running; the first queued task starts one. */
        min: int(0, 100, 1),
        max: int(1, 100, 4),
        /** Spot workers (drained on rebalance recommendations and interruption notices); prod keeps on-demand by default. */
        spot: z.boolean({ error: "true or false" }).default(false),
      })
      .prefault({}),
    schedulerCount: int(1, 4, 2),
    database: z
      .strictObject({
        engine: oneOf(["mysql", "postgres"]).default("mysql"),
        instanceClass: pattern(
          new RegExp(`^db\\.${FAMILY}\\.${SIZE}$`),
          `an RDS instance class db.<family>.<size> such as db.t4g.medium (sizes: ${SIZES})`,
        ).default("db.t4g.medium"),
        /** Default: false in dev, true elsewhere. */
        multiAz: z.boolean({ error: "true or false" }).optional(),
        allocatedStorageGb: int(20, 65536, 20),
        /** Automated backups are never switched off, hence the minimum of 1. */
        backupRetentionDays: int(1, 35, 7),
        /** Bump to rotate the DB password on the next deploy (see modules/database.ts). */
        passwordVersion: int(1, 1000000, 1),
      })
      .prefault({}),
    redis: z
      .strictObject({
        nodeType: pattern(
          new RegExp(`^cache\\.${FAMILY}\\.${SIZE}$`),
          `an ElastiCache node type cache.<family>.<size> such as cache.t4g.small (sizes: ${SIZES})`,
        ).optional(),
        /**
         * Read replicas; with one or more, automatic failover and Multi-AZ are on.
         * Default: the environment policy's `brokerReplicas`.
         */
        replicas: intRange(0, 5).optional(),
        /** Bump to rotate the AUTH token on the next deploy, without downtime (see modules/broker.ts). */
        authTokenVersion: int(1, 1000000, 1),
        /** ROTATE while nodes roll onto a new token; SET afterwards revokes the old one. */
        authTokenUpdateStrategy: oneOf(["ROTATE", "SET"]).default("ROTATE"),
      })
      .prefault({}),
    efs: z
      .strictObject({
        /** One Zone storage: cheaper, but the file system lives in a single AZ. */
        oneZone: bool(false),
        /**
         * AZ of a One Zone file system, one of `availabilityZones`; the node groups launch
         * only there. Default: the first AZ.
         */
        availabilityZone: azName().optional(),
      })
      .prefault({}),
    logRetentionDays: z
      .number({ error: `one of ${LOG_RETENTION_DAYS.join(", ")}` })
      .refine((v) => (LOG_RETENTION_DAYS as readonly number[]).includes(v), {
        error: `one of ${LOG_RETENTION_DAYS.join(", ")}`,
      })
      .default(30),
    /**
     * How DAG e-mail leaves the cluster: "ses" (the Amazon provider's SES e-mail backend,
     * authenticated by the node's instance role; no IAM user or access key) or "smtp"
     * (the SES SMTP interface through the `smtp_default` connection, whose credentials are
     * an IAM user's access key).
     */
    emailBackend: oneOf(["ses", "smtp"]).default("ses"),
    notificationEmail: z.email({ error: "an e-mail address such as data-team@example.com" }).optional(),
    /** Alarm when EMR clusters run longer than this many minutes (at most 180: the alarm's evaluation window). */
    emrMaxRuntimeMinutes: int(20, 180, 120),
    ami: z
      .strictObject({
        /** Name filter of the Packer-built golden AMI; the newest match wins. */
        name: pattern(
          /^[A-Za-z0-9()[\]./\-'@_* ]{3,128}$/,
          `an AMI name filter such as ${AMI_NAME_FILTER}`,
        ).default(AMI_NAME_FILTER),
        owners: z
          .array(
            pattern(
              /^(self|amazon|aws-marketplace|[0-9]{12})$/,
              'an AMI owner: "self", "amazon", "aws-marketplace" or a 12-digit account id',
            ),
            { error: 'a list of AMI owners such as ["self"]' },
          )
          .min(1, { error: 'a non-empty list of AMI owners such as ["self"]' })
          .default(["self"]),
        /** Explicit AMI id; when set the name lookup is skipped. */
        id: pattern(/^ami-[0-9a-f]{8}([0-9a-f]{9})?$/, "an AMI id such as ami-0123456789abcdef0").optional(),
        /**
         * Pin the bake by its `GitRevision` tag (the `git_revision` Packer was given): the
         * newest match of `name` built from that commit. Like `id`, it stops a deploy from
         * rolling the node groups onto whatever was baked last.
         */
        gitRevision: pattern(
          /^[0-9a-f]{7,40}$/,
          "the git commit the AMI was baked from (7-40 hex digits)",
        ).optional(),
      })
      .prefault({}),
    /**
     * CIDRs allowed to reach the public UI load balancer; empty = no public load balancer
     * ingress. Outside dev they need `certificateArn` (the UI is HTTPS-only once reachable
     * from outside the VPC), and 0.0.0.0/0 needs `uiAllowPublicInternet`.
     */
    uiAllowedCidrs: z.array(uiCidr, { error: "a list of IPv4 CIDR blocks" }).default([]),
    /** Explicit opt-in to `uiAllowedCidrs: ["0.0.0.0/0"]`: the login page open to the whole internet. */
    uiAllowPublicInternet: bool(false),
    /** ACM certificate for the public load balancer; with it the UI is served over HTTPS. */
    certificateArn: pattern(
      /^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate\/[0-9a-f-]{36}$/,
      "an ACM certificate ARN such as arn:aws:acm:us-east-1:123456789012:certificate/<uuid>",
    ).optional(),
    /**
     * DNS name users reach the UI at (a record you point at the public load balancer).
     * It becomes `[api] base_url`; with `certificateArn` it must be a name the certificate
     * covers, since an ACM certificate can never cover the ALB's own *.elb.amazonaws.com name.
     * Default: the load balancer's DNS name.
     */
    uiDomainName: pattern(
      /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/,
      "a lowercase DNS name such as airflow.example.com",
    ).optional(),
    scheduler: schedulerSchema,
    /**
     * The seed's `allow_trigger_in_future`. Airflow 3 removed the option (`airflow config
     * update` lists it as removed): the scheduler starts a run only once its `run_after`
     * has passed, so a future-dated trigger simply waits. Kept for the settings contract
     * key `core/allow-trigger-in-future`; it has no effect on Airflow 3.
     */
    allowTriggerInFuture: bool(false),
    /** `[core] parallelism` */
    parallelism: int(1, 4096, 32),
    /** `[celery] worker_concurrency` */
    workerConcurrency: int(1, 512, 16),
    /**
     * AWS account id the environment deploys to. It makes the default state bucket name
     * unique to the account; `npm run deploy` passes the caller's account instead
     * (AIRFLOW_ACCOUNT_ID) when this is unset.
     */
    accountId: pattern(/^[0-9]{12}$/, "a 12-digit AWS account id such as 123456789012").optional(),
    /** Default: true unless env is "dev". */
    deletionProtection: z.boolean({ error: "true or false" }).optional(),
    /**
     * Name of the Terraform state bucket created by the state stack. Bucket names are
     * global: the default `<namePrefix>-tfstate-<accountId>-<region>` is unique to the
     * account; without an account id it falls back to `<namePrefix>-tfstate-<region>-<hash>`,
     * which anyone could have taken (synth warns; `npm run deploy` always knows the account).
     */
    stateBucketName: pattern(
      /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/,
      "an S3 bucket name: 3-63 lowercase letters, digits and '-'",
    ).optional(),
    /** Extra tags on every taggable resource (merged by the policy aspect). */
    tags: z
      .record(
        pattern(/^(?!aws:)[\w .:/=+\-@]{1,128}$/, "a tag key of 1-128 characters not starting with aws:"),
        pattern(/^[\w .:/=+\-@]{0,256}$/, "a tag value of up to 256 characters"),
        { error: "an object of tag keys to string values" },
      )
      .default({}),
    /**
     * IAM role or user ARNs (`*` and `?` wildcards allowed, e.g. for an SSO permission set's
     * role) that may read and write this env's Terraform state, which holds every generated
     * secret. The state bucket policy denies this env's state to everyone else (see
     * modules/state-stack.ts). Unset: any principal of the account whose IAM policies allow it.
     */
    stateAccessPrincipalArns: z
      .array(
        pattern(
          /^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)\/[\w+=,.@/*?-]{1,512}$/,
          "an IAM role or user ARN such as arn:aws:iam::123456789012:role/deployer (not an assumed-role session ARN)",
        ),
        { error: 'a list of IAM role or user ARNs such as ["arn:aws:iam::123456789012:role/deployer"]' },
      )
      .min(1, { error: "a non-empty list of IAM role or user ARNs, or omitted" })
      .optional(),
  })
  .superRefine((c, ctx) => {
    if (c.availabilityZones) {
      c.availabilityZones.forEach((az, i) => {
        if (!az.startsWith(c.region) || az.length !== c.region.length + 1) {
          ctx.addIssue({
            code: "custom",
            path: ["availabilityZones", i],
            input: az,
            message: `an AZ of region ${c.region}, such as ${c.region}a`,
          });
        }
      });
      if (c.azCount !== undefined && c.azCount !== c.availabilityZones.length) {
        ctx.addIssue({
          code: "custom",
          path: ["azCount"],
          input: c.azCount,
          message: `${c.availabilityZones.length} (the number of availabilityZones) or omitted`,
        });
      }
    }
    // One golden AMI serves every node group, so every role in use needs one architecture.
    const resolved = resolvedDefaults(c);
    const types = resolved.instanceTypes;
    const roles: (keyof typeof types)[] =
      c.executor === "CeleryExecutor" ? ["apiServer", "scheduler", "worker"] : ["standalone"];
    const first = roles[0];
    const arch = instanceArchitecture(types[first]);
    for (const role of roles.slice(1)) {
      if (instanceArchitecture(types[role]) !== arch) {
        ctx.addIssue({
          code: "custom",
          path: ["instanceTypes", role],
          input: types[role],
          message: `an ${arch} instance type like instanceTypes.${first} (${JSON.stringify(types[first])}): one golden AMI serves every role`,
        });
      }
    }
    if (c.ami.id && c.ami.gitRevision) {
      ctx.addIssue({
        code: "custom",
        path: ["ami", "gitRevision"],
        input: c.ami.gitRevision,
        message: "omitted when ami.id is set (pin by id or by git revision, not both)",
      });
    }
    if (c.workers.min > c.workers.max) {
      ctx.addIssue({
        code: "custom",
        path: ["workers", "min"],
        input: c.workers.min,
        message: `an integer no greater than workers.max (${c.workers.max})`,
      });
    }
    const issue = (path: (string | number)[], message: string): void =>
      ctx.addIssue({ code: "custom", path, message });
    // requirements.lock is resolved for x86_64-manylinux_2_28 only (scripts/lock-python.sh),
    // so the Packer bake is proven for x86_64 alone; an own image (ami.id or another name) may be arm64.
    const typed = INSTANCE_TYPE.test(types[first]); // else it has its line already
    if (typed && arch === "arm64" && !c.ami.id && c.ami.name === AMI_NAME_FILTER) {
      issue(
        ["instanceTypes", first],
        `an x86_64 instance type: the golden AMI ("${AMI_NAME_FILTER}") is built for x86_64 only (requirements.lock is resolved for x86_64); for arm64 set ami.id or ami.name to your own image`,
      );
    }
    // An owner alias lets images published by other accounts match the name filter.
    if (!c.ami.id) {
      c.ami.owners.forEach((owner, i) => {
        if (owner === "amazon" || owner === "aws-marketplace") {
          issue(
            ["ami", "owners", i],
            `"self" or a 12-digit account id while ami.id is unset: images under "${owner}" are published by other accounts, so a stranger's image could match ami.name`,
          );
        }
      });
    }
    checkAddressPlan(c, resolved, issue);
    checkUiExposure(c, issue);
    checkEfsZone(c, issue);
    checkNames(c, issue);
  });

/** Adds one issue at `path`. */
type Report = (path: (string | number)[], message: string) => void;

/** The VPC holds the busiest private subnet at its peak (see the address plan above). */
function checkAddressPlan(c: Parsed, resolved: Resolved, issue: Report): void {
  const vpc = parseCidr(c.vpcCidr);
  // A block refused on its own already has its line.
  if (!vpc || vpc.bits < 16 || vpc.bits > VPC_MAX_PREFIX || networkCidr(vpc) !== c.vpcCidr) return;
  const need = privateAddressesNeeded({
    executor: c.executor,
    azs: resolved.azCount,
    apiServerCount: resolved.durability.apiServerCount,
    schedulerCount: c.schedulerCount,
    workersMax: c.workers.max,
    redisReplicas: resolved.redis.replicas,
  });
  if (subnetAddresses(vpc.bits) >= need) return;
  let fits = vpc.bits;
  while (fits > 16 && subnetAddresses(fits) < need) fits -= 1;
  issue(
    ["vpcCidr"],
    `a /${fits} or larger block: its private subnets would be /${vpc.bits + SUBNET_NEW_BITS} (${subnetAddresses(vpc.bits)} usable addresses) but one may need ${need} (nodes during an instance refresh, the internal load balancer, RDS, the cache, EFS and DAG_1's EMR cluster)`,
  );
}

/** A UI reachable from outside the VPC: distinct blocks, HTTPS outside dev, the internet only on request. */
function checkUiExposure(c: Parsed, issue: Report): void {
  const blocks = c.uiAllowedCidrs.map(parseCidr);
  blocks.forEach((b, i) => {
    if (!b) return;
    const j = blocks.findIndex((o, k) => k < i && o !== undefined && overlaps(o, b));
    if (j >= 0) {
      issue(
        ["uiAllowedCidrs", i],
        `a block that neither repeats nor overlaps uiAllowedCidrs.${j} (${JSON.stringify(c.uiAllowedCidrs[j])})`,
      );
    } else if (b.bits === 0 && !c.uiAllowPublicInternet) {
      issue(
        ["uiAllowedCidrs", i],
        "narrower blocks, or uiAllowPublicInternet: true to open the UI to the whole internet",
      );
    }
  });
  if (c.uiAllowedCidrs.length > 0 && c.env !== "dev" && !c.certificateArn) {
    issue(
      ["certificateArn"],
      `an ACM certificate ARN while uiAllowedCidrs is set in env "${c.env}" (a UI reachable from outside the VPC is HTTPS-only; only dev may serve it over HTTP)`,
    );
  }
}

/** A chosen One Zone AZ is one the network has a private subnet in. */
function checkEfsZone(c: Parsed, issue: Report): void {
  const az = c.efs.availabilityZone;
  if (az === undefined || !AZ_NAME.test(az)) return; // a malformed name has its line already
  const at = ["efs", "availabilityZone"];
  if (!c.efs.oneZone) {
    issue(at, "omitted unless efs.oneZone is true (a regional file system has a mount target in every AZ)");
  } else if (!c.availabilityZones) {
    issue(
      at,
      "omitted unless availabilityZones is set (only pinned AZs are known when the stack is synthesized)",
    );
  } else if (!c.availabilityZones.includes(az)) {
    issue(at, `one of availabilityZones: ${c.availabilityZones.map((z) => JSON.stringify(z)).join(", ")}`);
  }
}

/** Names AWS would refuse once the modules derive them from namePrefix and env. */
function checkNames(c: Parsed, issue: Report): void {
  if (c.stateBucketName) {
    const reserved = s3Reserved(c.stateBucketName);
    if (reserved) {
      issue(["stateBucketName"], `an S3 bucket name not using the reserved affix "${reserved}"`);
    }
  }
  if (!NAME_PREFIX.test(c.namePrefix)) return; // refused on its own already
  const families = derivedNames(c);
  const prefixProblem = ((): string | undefined => {
    if (c.namePrefix.includes("--")) {
      return "no two consecutive hyphens (RDS and ElastiCache identifiers refuse them)";
    }
    const alb = families.loadBalancer.names.find((n) => n.startsWith("internal-"));
    if (alb) return `a prefix that does not make load balancer names start with "internal-" (${alb})`;
    const bucket = families.bucket.names.find((n) => n !== c.stateBucketName && s3Reserved(n));
    if (bucket) {
      return `a prefix that does not give S3 bucket names the reserved affix "${s3Reserved(bucket)}" (${bucket})`;
    }
    for (const f of Object.values(families)) {
      // An explicit stateBucketName is not the prefix's doing (its own pattern limits it).
      const derived = f.names.filter((n) => n !== c.stateBucketName);
      const longest = derived.reduce((a, b) => (b.length > a.length ? b : a));
      if (longest.length > f.limit) {
        const room = f.limit - (longest.length - c.namePrefix.length);
        return `at most ${room} characters with env "${c.env}" and region "${c.region}": ${f.what} are at most ${f.limit} characters and ${longest} has ${longest.length}`;
      }
    }
    return undefined;
  })();
  if (prefixProblem) issue(["namePrefix"], prefixProblem);
}

type Parsed = z.output<typeof schema>;

/** What a config leaves to its environment, resolved once for the checks and for {@link parseConfig}. */
interface Resolved {
  /** Environment policy ({@link durabilityOf}). */
  readonly durability: Durability;
  /** The instance types in use: the config's, else the environment's {@link defaultSizes}. */
  readonly instanceTypes: DefaultSizes["instanceTypes"];
  /** Root volume, GiB: the config's, else the environment's {@link defaultSizes}. */
  readonly rootVolumeGb: number;
  /** Broker node type ({@link defaultSizes}) and replicas ({@link Durability}): the config's, else the environment's. */
  readonly redis: { readonly nodeType: string; readonly replicas: number };
  /** Number of AZs: the pinned ones, else `azCount`, else 2. */
  readonly azCount: number;
}

/** Resolves the environment defaults of a parsed config (see {@link Resolved}). */
function resolvedDefaults(c: Parsed): Resolved {
  const sizes = defaultSizes(c.env);
  const durability = durabilityOf(c.env, c.deletionProtection);
  const set = Object.fromEntries(Object.entries(c.instanceTypes).filter(([, v]) => v !== undefined));
  return {
    durability,
    instanceTypes: { ...sizes.instanceTypes, ...set },
    rootVolumeGb: c.rootVolumeGb ?? sizes.rootVolumeGb,
    redis: {
      nodeType: c.redis.nodeType ?? sizes.redisNodeType,
      replicas: c.redis.replicas ?? durability.brokerReplicas,
    },
    azCount: c.availabilityZones?.length ?? c.azCount ?? 2,
  };
}

/**
 * Environment policy: what a deletion or a destroy may lose, and what redundancy costs
 * are paid. Decided once, here, from `env` and `deletionProtection`; modules read only
 * this object, so no two resources can disagree about how disposable the env is.
 */
export interface Durability {
  /** RDS and load balancer deletion protection. Default: true unless env is "dev". */
  readonly deletionProtection: boolean;
  /**
   * Secrets Manager recovery window of every secret: 7 days with deletion protection, 0
   * (delete at once, so `destroy` + `deploy` can reuse the names) without.
   */
  readonly secretRecoveryWindowDays: number;
  /** Waiting period before the cluster KMS key is deleted: 7 days in dev (the minimum), 30 elsewhere. */
  readonly kmsDeletionWindowDays: number;
  /** Daily broker snapshots kept: 1 in dev, 7 elsewhere. */
  readonly cacheSnapshotRetentionDays: number;
  /** One NAT gateway per AZ (an AZ outage keeps the others online) outside dev; one shared NAT in dev. */
  readonly natPerAz: boolean;
  /**
   * Dev's one NAT is a t4g.nano NAT instance instead of a managed NAT gateway (about $7
   * instead of $37 a month): it is a single point of egress that AWS does not scale or patch
   * between deploys, which only a disposable env accepts.
   */
  readonly natInstance: boolean;
  /**
   * Default read replicas of the Celery broker: 1 outside dev (automatic failover across
   * AZs), 0 in dev, where a lost broker node costs only queued messages, which the
   * scheduler re-queues after `[scheduler] task_queued_timeout`.
   */
  readonly brokerReplicas: number;
  /** 1-minute EC2 detailed monitoring of the nodes: outside dev; dev reads 5-minute basic metrics. */
  readonly detailedMonitoring: boolean;
  /**
   * Whether destroying the metadata DB leaves a final snapshot: outside dev always, so
   * switching deletionProtection off to tear an environment down still keeps its data.
   */
  readonly finalSnapshot: boolean;
  /** Whether a destroy empties the buckets (force_destroy): only without deletion protection. */
  readonly forceDestroyBuckets: boolean;
  /**
   * API servers in service (CeleryExecutor): 2 outside dev, which the group spreads over
   * the private subnets' AZs, so one node or AZ lost keeps the UI and the Execution API up;
   * 1 in dev.
   */
  readonly apiServerCount: number;
}

/** The one place environment policy is derived (see {@link Durability}). */
export function durabilityOf(env: string, deletionProtection?: boolean): Durability {
  const isDev = env === "dev";
  const protect = deletionProtection ?? !isDev;
  return {
    deletionProtection: protect,
    secretRecoveryWindowDays: protect ? 7 : 0,
    kmsDeletionWindowDays: isDev ? 7 : 30,
    cacheSnapshotRetentionDays: isDev ? 1 : 7,
    natPerAz: !isDev,
    natInstance: isDev,
    brokerReplicas: isDev ? 0 : 1,
    detailedMonitoring: !isDev,
    finalSnapshot: protect || !isDev,
    forceDestroyBuckets: !protect,
    apiServerCount: isDev ? 1 : 2,
  };
}

/** The validated configuration with every default and derived value filled in. */
export interface AirflowConfig extends Omit<
  Parsed,
  "database" | "deletionProtection" | "azCount" | "instanceTypes" | "redis" | "rootVolumeGb"
> {
  /** Root volume of every node, GiB: the config's, else the environment's {@link defaultSizes}. */
  readonly rootVolumeGb: number;
  /** Instance type per role: the config's, else the environment's {@link defaultSizes}. */
  readonly instanceTypes: DefaultSizes["instanceTypes"];
  /** The broker: node type and replicas default per environment ({@link defaultSizes}, {@link Durability}). */
  readonly redis: Parsed["redis"] & { readonly nodeType: string; readonly replicas: number };
  /** Number of AZs (the length of `availabilityZones` when those are pinned). */
  readonly azCount: number;
  readonly database: Parsed["database"] & { readonly multiAz: boolean; readonly engineVersion: string };
  /** Environment policy (deletion protection, recovery windows, snapshots, NAT per AZ). */
  readonly durability: Durability;
  /** Name of the Terraform state bucket (derived unless set). */
  readonly stateBucketName: string;
  /** True when the state bucket name is neither set nor derived from an account id. */
  readonly stateBucketNameIsGlobalGuess: boolean;
  /** CPU architecture of the instance types in use; the AMI lookup filters on it. */
  readonly architecture: Architecture;
  /**
   * How users reach the UI: through the public load balancer (`uiAllowedCidrs` or
   * `uiDomainName` set), or only by SSM port forwarding to an api-server (`npm run ui`),
   * in which case `[api] base_url` is the forwarded local address so the login redirect
   * comes back to it.
   */
  readonly uiAccess: UiAccess;
  /**
   * Whether the internet-facing load balancer exists: with `uiAccess` "load-balancer"; with
   * LocalExecutor, whose node has no other load balancer to health-check it; and with
   * deletion protection, which guards that load balancer too, so dropping it from a live
   * protected env would fail the apply. An unprotected Celery cluster reached by port
   * forwarding needs only its internal load balancer.
   */
  readonly publicLoadBalancer: boolean;
}

/** `[api] base_url` when the UI is reached by SSM port forwarding (`scripts/ui.sh` forwards this port). */
export const UI_PORT_FORWARD_URL = "http://localhost:8080";

/** Raw (JSON) shape a config file may hold. */
export type AirflowConfigInput = z.input<typeof schema>;

/** Reads the bad value at an issue's path from the raw input, for the error line. */
function valueAt(input: unknown, p: readonly PropertyKey[]): unknown {
  let cur: unknown = input;
  for (const key of p) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

/** One line per zod issue: `<source>: <path>: got <value>; allowed: <what>`. */
function formatIssues(issues: readonly z.core.$ZodIssue[], input: unknown, source: string): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === "invalid_key") {
      const key = String(issue.path[issue.path.length - 1]);
      const field = issue.path.slice(0, -1).join(".");
      const allowed = issue.issues.map((i) => i.message).join("; ");
      lines.push(`${source}: ${field}: key ${showValue(key)} not allowed; allowed: ${allowed}`);
      continue;
    }
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const field = [...issue.path, key].join(".");
        const parent = valueAt(input, issue.path);
        const known = Object.keys(knownKeys(issue.path)).join(", ");
        lines.push(
          `${source}: ${field}: unknown key (value ${showValue(valueAt(parent, [key]))}); allowed keys here: ${known}`,
        );
      }
      continue;
    }
    const field = issue.path.length ? issue.path.join(".") : "(root)";
    // Nested sections carry no message of their own: name their keys instead.
    const allowed =
      issue.code === "invalid_type" && issue.expected === "object"
        ? `an object with keys ${Object.keys(knownKeys(issue.path)).join(", ")}`
        : issue.message;
    lines.push(`${source}: ${field}: got ${showValue(valueAt(input, issue.path))}; allowed: ${allowed}`);
  }
  return lines;
}

/** The keys a (nested) object of the schema accepts, for unknown-key messages. */
function knownKeys(p: readonly PropertyKey[]): Record<string, unknown> {
  // Unwrap default/prefault/optional/pipe layers down to the object shape.
  let node: z.core.$ZodType = schema;
  const unwrap = (t: z.core.$ZodType): z.core.$ZodType => {
    let cur = t;
    for (;;) {
      const def = cur._zod.def as unknown as { innerType?: z.core.$ZodType; in?: z.core.$ZodType };
      if (def.innerType) cur = def.innerType;
      else if (def.in) cur = def.in;
      else return cur;
    }
  };
  node = unwrap(node);
  for (const key of p) {
    const shape = (node._zod.def as unknown as { shape?: Record<string, z.core.$ZodType> }).shape;
    const child = shape?.[String(key)];
    if (!child) return {};
    node = unwrap(child);
  }
  return (node._zod.def as unknown as { shape?: Record<string, unknown> }).shape ?? {};
}

/** Default name of the state bucket: account-unique when the account id is known. */
function defaultStateBucket(namePrefix: string, region: string, accountId?: string): string {
  if (accountId) return `${namePrefix}-tfstate-${accountId}-${region}`;
  const suffix = createHash("sha256").update(`${namePrefix}|${region}`).digest("hex").slice(0, 10);
  return `${namePrefix}-tfstate-${region}-${suffix}`;
}

/**
 * Validates raw config (already including `env`) and fills in derived values.
 * @param input parsed JSON
 * @param source where it came from, prefixed to each error line
 * @throws ConfigError with one line per invalid field
 */
export function parseConfig(input: unknown, source = "config"): AirflowConfig {
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(formatIssues(result.error.issues, input, source));
  }
  const c = result.data;
  const isDev = c.env === "dev";
  const accountId = c.accountId ?? accountFromEnv();
  const { durability, instanceTypes, rootVolumeGb, redis, azCount } = resolvedDefaults(c);
  const uiAccess: UiAccess = c.uiAllowedCidrs.length > 0 || c.uiDomainName ? "load-balancer" : "port-forward";
  return {
    ...c,
    instanceTypes,
    rootVolumeGb,
    redis: { ...c.redis, ...redis },
    azCount,
    database: {
      ...c.database,
      multiAz: c.database.multiAz ?? !isDev,
      engineVersion: DB_ENGINE_VERSIONS[c.database.engine],
    },
    accountId,
    durability,
    stateBucketName: c.stateBucketName ?? defaultStateBucket(c.namePrefix, c.region, accountId),
    stateBucketNameIsGlobalGuess: c.stateBucketName === undefined && accountId === undefined,
    uiAccess,
    publicLoadBalancer:
      uiAccess === "load-balancer" || c.executor === "LocalExecutor" || durability.deletionProtection,
    architecture: instanceArchitecture(
      c.executor === "CeleryExecutor" ? instanceTypes.apiServer : instanceTypes.standalone,
    ),
  };
}

/**
 * The account id `npm run deploy` found with `aws sts get-caller-identity`
 * (AIRFLOW_ACCOUNT_ID); an invalid value is a config error, not a silent fallback.
 */
function accountFromEnv(): string | undefined {
  const v = process.env.AIRFLOW_ACCOUNT_ID;
  if (v === undefined || v === "") return undefined;
  if (!/^[0-9]{12}$/.test(v)) {
    throw new ConfigError([
      `AIRFLOW_ACCOUNT_ID: got ${showValue(v)}; allowed: a 12-digit AWS account id or unset`,
    ]);
  }
  return v;
}

/** Directory holding `<env>.json` files (the repository's, not dist/'s copy). */
export const CONFIG_DIR = path.join(repoRoot(), "config");

/**
 * The environments a config directory defines: its `<env>.json` files (other JSON there,
 * such as `settings-contract.json`, has a name no env can have), sorted.
 * @param dir directory of the env files
 */
export function envNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /^[a-z][a-z0-9]{0,7}\.json$/.test(f))
    .map((f) => f.slice(0, -".json".length))
    .sort();
}

/**
 * Loads and validates `config/<env>.json`.
 * @param env environment name; default `AIRFLOW_ENV` or "dev"
 * @param dir directory of the env files; default `AIRFLOW_CONFIG_DIR` or the repository's `config/`
 * @throws ConfigError on an unknown env, unreadable/bad JSON or any invalid field
 */
export function loadConfig(
  env = process.env.AIRFLOW_ENV ?? "dev",
  dir = process.env.AIRFLOW_CONFIG_DIR ?? CONFIG_DIR,
): AirflowConfig {
  if (!/^[a-z][a-z0-9]{0,7}$/.test(env)) {
    throw new ConfigError([
      `AIRFLOW_ENV: got ${showValue(env)}; allowed: lowercase letters and digits, 1-8 characters, starting with a letter`,
    ]);
  }
  const file = path.join(dir, `${env}.json`);
  const rel = path.relative(process.cwd(), file);
  const source = rel && !rel.startsWith("..") ? rel : file;
  if (!existsSync(file)) {
    const available = envNames(dir);
    throw new ConfigError([
      `AIRFLOW_ENV: got ${showValue(env)}; no ${source}; allowed: ${available.join(", ") || "(no env files found)"}`,
    ]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigError([`${source}: not valid JSON (${(e as Error).message})`]);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError([`${source}: (root): got ${showValue(raw)}; allowed: a JSON object`]);
  }
  const obj = raw as Record<string, unknown>;
  if ("env" in obj && obj.env !== env) {
    throw new ConfigError([
      `${source}: env: got ${showValue(obj.env)}; allowed: ${showValue(env)} (the file's name) or omitted`,
    ]);
  }
  return parseConfig({ ...obj, env }, source);
}

/** Names derived from the config, defined once so every module agrees. */
export interface ClusterNames {
  /** `<namePrefix>-<env>`: prefix of AWS resource names. */
  readonly resourcePrefix: string;
  /** `/<namePrefix>/<env>`: SSM parameter prefix (see config/settings-contract.json). */
  readonly parameterPrefix: string;
  /** `<namePrefix>/<env>`: Secrets Manager name prefix. */
  readonly secretPrefix: string;
  /** Name of the cluster stack (`<namePrefix>-<env>`). */
  readonly clusterStack: string;
  /** Name of the bootstrap state stack (`<namePrefix>-state`). */
  readonly stateStack: string;
  /** Terraform state bucket name. */
  readonly stateBucket: string;
  /** S3 key of the cluster stack's state. */
  readonly stateKey: string;
}

/** Derives every shared name from the config. */
export function clusterNames(
  config: Pick<AirflowConfig, "namePrefix" | "env" | "stateBucketName">,
): ClusterNames {
  const { namePrefix, env } = config;
  return {
    resourcePrefix: `${namePrefix}-${env}`,
    parameterPrefix: `/${namePrefix}/${env}`,
    secretPrefix: `${namePrefix}/${env}`,
    clusterStack: `${namePrefix}-${env}`,
    stateStack: `${namePrefix}-state`,
    stateBucket: config.stateBucketName,
    stateKey: `${namePrefix}/${env}/terraform.tfstate`,
  };
}
