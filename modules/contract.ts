/**
 * What the modules share, in one leaf: the settings contract (`config/settings-contract.json`,
 * which the bootstrap and the DAG tests read too), the constants derived from it, the
 * structural refs constructs hand each other, and the one error type a construct throws.
 *
 * This file imports nothing of ours. Concern modules import shared names from here and
 * from `config.ts`, never from each other, so moving or splitting one concern never
 * drags another along.
 */
import { existsSync } from "node:fs";
import * as path from "node:path";
import type { IConstruct } from "constructs";
import contractJson from "../config/settings-contract.json";

// --- the settings contract -----------------------------------------------------------

/** Node roles; each is a list of systemd units in the contract. */
export type NodeRole = "api-server" | "scheduler" | "worker" | "standalone";

/** The contract's `executor` parameter: which node layout and which secrets exist. */
export type Executor = "CeleryExecutor" | "LocalExecutor";

/** The contract's `email/backend` parameter: how DAG e-mail leaves the cluster. */
export type EmailBackend = "ses" | "smtp";

/** The contract's `db/engine` parameter: the metadata database's engine. */
export type DatabaseEngine = "mysql" | "postgres";

/** CPU architectures an EC2 instance type (and so the golden AMI) can have. */
export type Architecture = "x86_64" | "arm64";

/**
 * How users reach the UI: through the public load balancer, or only by SSM port forwarding
 * to an api-server (`npm run ui`).
 */
export type UiAccess = "load-balancer" | "port-forward";

/** Shape of `config/settings-contract.json`. */
export interface SettingsContract {
  readonly parameters: readonly {
    readonly key: string;
    readonly description: string;
    readonly airflow?: string;
  }[];
  readonly secrets: readonly { readonly key: string; readonly description: string }[];
  /** The secrets each node role fetches at boot, and the only ones its instance role may read. */
  readonly roleSecrets: Readonly<Record<NodeRole, readonly string[]>>;
  readonly variables: { readonly keys: readonly { readonly key: string; readonly description: string }[] };
  readonly roles: Readonly<Record<NodeRole, readonly string[]>>;
  readonly userData: { readonly keys: readonly string[] };
  /** Scale-in of the worker group: the termination lifecycle hook the node completes after draining. */
  readonly workerDrain: { readonly lifecycleHookName: string };
  /** The worker autoscaling signal the scheduler nodes publish (see {@link WORKER_SCALING}). */
  readonly workerScaling: {
    readonly metricName: string;
    readonly queueDimension: string;
    readonly queue: string;
    /** Per queue, the age in seconds of the oldest queued task instance. */
    readonly oldestQueuedMetricName: string;
  };
  /**
   * Every group's launch lifecycle hook, which the bootstrap completes (CONTINUE once the
   * role is healthy, ABANDON on failure), and the budget its heartbeat timeout covers.
   */
  readonly launchHook: {
    readonly lifecycleHookName: string;
    readonly bootSeconds: number;
    readonly migrationWaitSeconds: number;
    readonly healthWaitSeconds: number;
  };
  /** Ports Airflow listens on (and SES SMTP submission), as the bootstrap renders them. */
  readonly ports: Readonly<Record<string, number>>;
  /** The airflow system user of the AMI, which also owns the EFS access point. */
  readonly airflowUser: { readonly uid: number; readonly gid: number };
  /** The tag the EMR v2 managed policies require. */
  readonly emrManagedTag: { readonly key: string; readonly value: string };
  /** The tag naming the Airflow cluster (`<namePrefix>-<env>`) that created an EMR cluster. */
  readonly emrClusterTag: { readonly key: string };
  /** Airflow connection ids the infra, bootstrap and DAGs agree on. */
  readonly connections: { readonly smtp: string; readonly aws: string };
  /** Name of the Packer-built golden AMI. */
  readonly ami: { readonly namePrefix: string };
  /** The CloudWatch agent: its configuration parameter, the component log files, the statsd listener. */
  readonly cloudwatchAgent: {
    readonly parameter: string;
    readonly logDir: string;
    readonly statsd: {
      readonly host: string;
      readonly port: number;
      readonly prefix: string;
      /** The only names Airflow sends (`[metrics] metrics_allow_list`): each is a billed custom metric. */
      readonly metrics: readonly string[];
    };
  };
}

/** The settings contract, loaded once from `config/settings-contract.json`. */
export const CONTRACT: SettingsContract = contractJson as SettingsContract;

/**
 * Value stored in a string parameter whose setting does not apply (SSM rejects empty
 * strings): `broker/endpoint` and `broker/port` with LocalExecutor (the bootstrap reads
 * them only with CeleryExecutor), `spark_job_uri` with no Spark job, `alert_email`
 * without `notificationEmail`. The contract's descriptions say so.
 */
export const UNSET = "none";

/** The tag the EMR v2 managed policies require on clusters and the network they use. */
export const EMR_MANAGED_TAG = CONTRACT.emrManagedTag;

/**
 * Key of the tag DAG_1 puts on its EMR clusters, valued `<namePrefix>-<env>` (the
 * `emr_cluster_tag` variable): the node roles create, step, watch and terminate only
 * clusters carrying it with their own cluster's value.
 */
export const EMR_CLUSTER_TAG = CONTRACT.emrClusterTag.key;

/**
 * The worker autoscaling signal: `ceil((running + queued) / worker_concurrency)` per Celery
 * queue (the Helm chart's KEDA query), published each minute by the scheduler nodes as
 * `metricName` with the `queueDimension` dimension in {@link airflowMetricsNamespace}; the
 * worker group serves and tracks `queue`.
 */
export const WORKER_SCALING = CONTRACT.workerScaling;

/** The node roles each executor runs. */
export const EXECUTOR_ROLES: Readonly<Record<Executor, readonly NodeRole[]>> = {
  CeleryExecutor: ["api-server", "scheduler", "worker"],
  LocalExecutor: ["standalone"],
};

/**
 * The contract secrets one node role reads (`roleSecrets`): what the bootstrap fetches
 * on that role, and the only secrets its instance role may read.
 */
export function roleSecrets(role: NodeRole): readonly string[] {
  return CONTRACT.roleSecrets[role];
}

/** uid and gid of the airflow user on every node (and of the EFS access point). */
export const AIRFLOW_USER = CONTRACT.airflowUser;

/** Airflow connection that carries SES SMTP credentials when `emailBackend` is "smtp". */
export const SMTP_CONNECTION_ID = CONTRACT.connections.smtp;

/** Default name filter of the golden AMI lookup: every bake Packer names. */
export const AMI_NAME_FILTER = `${CONTRACT.ami.namePrefix}-*`;

/**
 * Ports: Airflow's from the contract (what the bootstrap renders into airflow.cfg), the
 * data stores' and web ports as their engines and AWS define them.
 */
export const PORTS = {
  apiServer: CONTRACT.ports["api-server"],
  flower: CONTRACT.ports["flower"],
  workerLogServer: CONTRACT.ports["worker-log-server"],
  triggererLogServer: CONTRACT.ports["triggerer-log-server"],
  smtpSubmission: CONTRACT.ports["smtp-submission"],
  redis: 6379,
  nfs: 2049,
  mysql: 3306,
  postgres: 5432,
  https: 443,
  http: 80,
} as const;

/** Key prefixes in the log bucket: remote task logs, EMR logs, ALB access logs. */
export const LOG_PREFIXES = { remote: "airflow-logs", emr: "emr-logs", alb: "alb" } as const;

/** Terraform version the stacks need: S3-native state locking (`use_lockfile`) came in 1.10. */
export const REQUIRED_TERRAFORM_VERSION = ">= 1.10";

/**
 * The name of an IAM role, instance profile or user of this cluster. IAM names are global
 * to the account while everything else is regional, so the region is part of the name:
 * the same `namePrefix` and `env` then deploy in a second region without a name clash.
 * @param resourcePrefix `<namePrefix>-<env>`
 * @param region the cluster's region
 * @param suffix what the principal is for, e.g. `worker` or `rds-monitoring`
 */
export function iamName(resourcePrefix: string, region: string, suffix: string): string {
  return `${resourcePrefix}-${region}-${suffix}`;
}

/**
 * Name of one node role's Auto Scaling group (also its instances' `Name` tag): node-group.ts
 * names the group, and iam.ts scopes a node's actions on its own group by this name.
 * @param resourcePrefix `<namePrefix>-<env>`
 */
export function nodeGroupName(resourcePrefix: string, role: NodeRole): string {
  return `${resourcePrefix}-${role}`;
}

// --- structural refs: what one construct needs of another ----------------------------

/** Anything with an `id` (VPC, subnet, security group, EFS file system, access point). */
export interface HasId {
  /** The resource id. */
  readonly id: string;
}

/** Anything with an ARN. */
export interface HasArn {
  /** The resource ARN. */
  readonly arn: string;
}

/** Anything with a bucket name (an `aws_s3_bucket`). */
export interface HasBucket {
  /** Bucket name. */
  readonly bucket: string;
}

/** A bucket as IAM needs it (an `aws_s3_bucket`). */
export interface BucketRef extends HasBucket, HasArn {}

/** Anything with a name (an IAM role, an instance profile). */
export interface HasName {
  /** The resource name. */
  readonly name: string;
}

// --- errors --------------------------------------------------------------------------

/** Renders a bad value for an error line: JSON, cut at 80 characters. */
export function showValue(v: unknown): string {
  if (v === undefined) return "(missing)";
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * A construct prop that cannot be built, as one line: `<construct path>: <field>: got
 * <value>; allowed: <what>`. `main.ts` prints it like a config error, without a trace.
 */
export class PropError extends Error {
  /**
   * @param scope the construct (its path names it) or a function's name
   * @param field the prop, e.g. "drainTimeoutSeconds"
   * @param got the bad value
   * @param allowed what would have been accepted
   */
  public constructor(scope: IConstruct | string, field: string, got: unknown, allowed: string) {
    const where = typeof scope === "string" ? scope : scope.node.path;
    super(`${where}: ${field}: got ${showValue(got)}; allowed: ${allowed}`);
    this.name = "PropError";
  }
}

/**
 * Checks an S3 key prefix given as a construct prop: segments without a leading or
 * trailing '/'.
 */
export function assertKeyPrefix(scope: IConstruct | string, field: string, value: string): void {
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(value)) {
    throw new PropError(scope, field, value, "S3 key segments without a leading or trailing '/'");
  }
}

/**
 * Checks an integer construct prop against its range; `undefined` (an unset optional prop)
 * passes, so callers check before applying the default.
 */
export function assertIntIn(
  scope: IConstruct | string,
  field: string,
  value: number | undefined,
  min: number,
  max: number,
): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min || value > max)) {
    throw new PropError(scope, field, value, `an integer from ${min} to ${max}`);
  }
}

// --- the repository ------------------------------------------------------------------

/**
 * The repository root: the nearest directory above this file with a package.json (from
 * modules/ under ts-jest and from dist/modules/ when compiled), else the cwd, which is the
 * project directory when the cdktf CLI runs the app.
 */
export function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) return process.cwd();
  }
}

/** `[metrics] statsd_prefix` as the bootstrap renders it: every statsd name starts with it. */
export const AIRFLOW_STATSD_PREFIX = CONTRACT.cloudwatchAgent.statsd.prefix;

/**
 * The CloudWatch namespace of the cluster's Airflow metrics: the agent's statsd rollup and
 * the worker queue-depth signal.
 * @param resourcePrefix `<namePrefix>-<env>`
 */
export function airflowMetricsNamespace(resourcePrefix: string): string {
  return `Airflow/${resourcePrefix}`;
}

/** The CloudWatch agent's part of the contract (config/settings-contract.json `cloudwatchAgent`). */
export const CLOUDWATCH_AGENT = CONTRACT.cloudwatchAgent;

/** The log component of the bootstrap's own output (cloud-init's log on first boot). */
export const BOOTSTRAP_LOG_COMPONENT = "bootstrap";

/**
 * The components whose logs a node role ships: the bootstrap and each of the role's units
 * (`airflow-<component>.service|timer` runs `airflow-<component>.service`, which appends to
 * `<logDir>/<component>.log`).
 */
export function logComponents(role: NodeRole): readonly string[] {
  const units = CONTRACT.roles[role].map((u) => u.replace(/^airflow-/, "").replace(/\.(service|timer)$/, ""));
  return [BOOTSTRAP_LOG_COMPONENT, ...units];
}

/**
 * Log group of one component: `<parameterPrefix>/airflow/<component>`, so an operator finds
 * a cluster's logs under the same path as its settings.
 * @param parameterPrefix `/<namePrefix>/<env>`
 */
export function componentLogGroupName(parameterPrefix: string, component: string): string {
  return `${parameterPrefix}/airflow/${component}`;
}

/**
 * Name of the cluster alarm whose id (its construct id in alarms.ts) is `alarmId`.
 * @param resourcePrefix `<namePrefix>-<env>`
 */
export function alarmName(resourcePrefix: string, alarmId: string): string {
  return `${resourcePrefix}-${alarmId}`;
}

/** Id of the alarm "group `role` had fewer instances in service than desired". */
export function groupInServiceAlarmId(role: string): string {
  return `${role}-in-service`;
}

/**
 * Name of the alarm "group `role` had fewer instances in service than desired". Instance
 * refresh rolls back on it by name (node-group.ts): a resource reference would make the
 * group and the alarm depend on each other.
 */
export function groupInServiceAlarmName(resourcePrefix: string, role: string): string {
  return alarmName(resourcePrefix, groupInServiceAlarmId(role));
}

/** Id of the alarm on unhealthy targets of target group `targetGroup` behind load balancer `lb`. */
export function unhealthyTargetsAlarmId(lb: string, targetGroup: string): string {
  return `alb-${lb}-${targetGroup}-unhealthy`;
}

/** Name of the alarm on unhealthy targets of target group `targetGroup` behind load balancer `lb`. */
export function unhealthyTargetsAlarmName(resourcePrefix: string, lb: string, targetGroup: string): string {
  return alarmName(resourcePrefix, unhealthyTargetsAlarmId(lb, targetGroup));
}

/**
 * Short names of the load balancers and target groups in the unhealthy-target alarms:
 * cluster-stack.ts alarms on them, and the api-server's instance refresh rolls back on
 * the UI's and the Execution API's (compute-plane.ts).
 */
export const ALARMED_TARGET_GROUPS = {
  ui: { lb: "public", targetGroup: "ui" },
  executionApi: { lb: "internal", targetGroup: "execution-api" },
  flower: { lb: "internal", targetGroup: "flower" },
} as const;
