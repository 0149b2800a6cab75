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
import { AMI_NAME_FILTER, repoRoot, showValue } from "./contract";

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

const CIDR_ALLOWED = "an IPv4 CIDR block such as 203.0.113.0/24";
const cidr = z.cidrv4({ error: CIDR_ALLOWED });

/** CPU architectures an EC2 instance type (and so the golden AMI) can have. */
export type Architecture = "x86_64" | "arm64";

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

/** Instance types: family.size, e.g. t3.large, m6i.xlarge, m7g.large. */
const instanceType = (def: string) =>
  pattern(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, "an EC2 instance type such as m6i.large").default(def);

const schedulerSchema = z
  .strictObject({
    /** `[scheduler] max_dagruns_to_create_per_loop` */
    maxDagrunsToCreatePerLoop: int(1, 1000, 10),
    /** `[scheduler] max_dagruns_per_loop_to_schedule` */
    maxDagrunsPerLoopToSchedule: int(1, 1000, 20),
    /** `[scheduler] use_row_level_locking`; must stay true with more than one scheduler. */
    useRowLevelLocking: bool(true),
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
      /^[a-z][a-z0-9-]{0,10}[a-z0-9]$/,
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
      .array(pattern(/^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9][a-z]$/, "an AZ name such as us-east-1a"), {
        error: 'a list of 2-6 AZ names such as ["us-east-1a", "us-east-1b"]',
      })
      .min(2, { error: "a list of 2-6 distinct AZ names" })
      .max(6, { error: "a list of 2-6 distinct AZ names" })
      .refine((v) => new Set(v).size === v.length, { error: "a list of 2-6 distinct AZ names" })
      .optional(),
    vpcCidr: z
      .cidrv4({ error: "an IPv4 CIDR block from /16 to /24 such as 10.40.0.0/16" })
      .refine(
        (v) => {
          const bits = Number(v.split("/")[1]);
          return bits >= 16 && bits <= 24;
        },
        { error: "an IPv4 CIDR block from /16 to /24 such as 10.40.0.0/16" },
      )
      .default("10.40.0.0/16"),
    executor: oneOf(["CeleryExecutor", "LocalExecutor"]).default("CeleryExecutor"),
    instanceTypes: z
      .strictObject({
        apiServer: instanceType("t3.large"),
        scheduler: instanceType("t3.large"),
        worker: instanceType("m6i.large"),
        standalone: instanceType("t3.xlarge"),
      })
      .prefault({}),
    workers: z
      .strictObject({
        min: int(0, 100, 1),
        max: int(1, 100, 4),
      })
      .prefault({}),
    schedulerCount: int(1, 4, 2),
    database: z
      .strictObject({
        engine: oneOf(["mysql", "postgres"]).default("mysql"),
        instanceClass: pattern(
          /^db\.[a-z0-9-]+\.[a-z0-9]+$/,
          "an RDS instance class such as db.t4g.medium",
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
          /^cache\.[a-z0-9-]+\.[a-z0-9]+$/,
          "an ElastiCache node type such as cache.t4g.small",
        ).default("cache.t4g.small"),
        /** Read replicas; with one or more, automatic failover and Multi-AZ are on. */
        replicas: int(0, 5, 1),
        /** Bump to rotate the AUTH token on the next deploy, without downtime (see modules/broker.ts). */
        authTokenVersion: int(1, 1000000, 1),
      })
      .prefault({}),
    efs: z
      .strictObject({
        /** One Zone storage: cheaper, but the file system lives in a single AZ. */
        oneZone: bool(false),
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
    /** CIDRs allowed to reach the public UI load balancer; empty = no public load balancer ingress. */
    uiAllowedCidrs: z.array(cidr, { error: "a list of IPv4 CIDR blocks" }).default([]),
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
    const roles: (keyof typeof c.instanceTypes)[] =
      c.executor === "CeleryExecutor" ? ["apiServer", "scheduler", "worker"] : ["standalone"];
    const first = roles[0];
    const arch = instanceArchitecture(c.instanceTypes[first]);
    for (const role of roles.slice(1)) {
      if (instanceArchitecture(c.instanceTypes[role]) !== arch) {
        ctx.addIssue({
          code: "custom",
          path: ["instanceTypes", role],
          input: c.instanceTypes[role],
          message: `an ${arch} instance type like instanceTypes.${first} (${JSON.stringify(c.instanceTypes[first])}): one golden AMI serves every role`,
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
    if (c.executor === "CeleryExecutor" && c.schedulerCount > 1 && !c.scheduler.useRowLevelLocking) {
      ctx.addIssue({
        code: "custom",
        path: ["scheduler", "useRowLevelLocking"],
        input: c.scheduler.useRowLevelLocking,
        message: `true while schedulerCount is ${c.schedulerCount} (schedulers coordinate through row locks)`,
      });
    }
  });

type Parsed = z.output<typeof schema>;

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
   * Whether destroying the metadata DB leaves a final snapshot: outside dev always, so
   * switching deletionProtection off to tear an environment down still keeps its data.
   */
  readonly finalSnapshot: boolean;
  /** Whether a destroy empties the buckets (force_destroy): only without deletion protection. */
  readonly forceDestroyBuckets: boolean;
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
    finalSnapshot: protect || !isDev,
    forceDestroyBuckets: !protect,
  };
}

/** The validated configuration with every default and derived value filled in. */
export interface AirflowConfig extends Omit<Parsed, "database" | "deletionProtection" | "azCount"> {
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
  readonly uiAccess: "load-balancer" | "port-forward";
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
  return {
    ...c,
    azCount: c.availabilityZones?.length ?? c.azCount ?? 2,
    database: {
      ...c.database,
      multiAz: c.database.multiAz ?? !isDev,
      engineVersion: DB_ENGINE_VERSIONS[c.database.engine],
    },
    accountId,
    durability: durabilityOf(c.env, c.deletionProtection),
    stateBucketName: c.stateBucketName ?? defaultStateBucket(c.namePrefix, c.region, accountId),
    stateBucketNameIsGlobalGuess: c.stateBucketName === undefined && accountId === undefined,
    uiAccess: c.uiAllowedCidrs.length > 0 || c.uiDomainName ? "load-balancer" : "port-forward",
    architecture: instanceArchitecture(
      c.executor === "CeleryExecutor" ? c.instanceTypes.apiServer : c.instanceTypes.standalone,
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
    const available = readdirSync(dir)
      .filter((f) => /^[a-z][a-z0-9]{0,7}\.json$/.test(f))
      .map((f) => f.replace(/\.json$/, ""))
      .sort();
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
