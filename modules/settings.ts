/**
 * Settings for nodes: the SSM parameters and Secrets Manager secrets a node reads at boot.
 *
 * `config/settings-contract.json` is the one source of truth for their names; this file
 * imports it (so a renamed key in the contract changes what synth creates, and a key with
 * no value wired here fails synth naming that key) and the bootstrap on the AMI reads the
 * same file. Nothing secret is ever a literal: secret values are Terraform references to
 * `random_password` / `random_bytes` results, so synthesized JSON holds only `${...}`.
 */
import { DataAwsCallerIdentity } from "@cdktf/provider-aws/lib/data-aws-caller-identity";
import { DataAwsPartition } from "@cdktf/provider-aws/lib/data-aws-partition";
import { SecretsmanagerSecret } from "@cdktf/provider-aws/lib/secretsmanager-secret";
import { SecretsmanagerSecretVersion } from "@cdktf/provider-aws/lib/secretsmanager-secret-version";
import { SsmParameter } from "@cdktf/provider-aws/lib/ssm-parameter";
import { Bytes } from "@cdktf/provider-random/lib/bytes";
import { Password } from "@cdktf/provider-random/lib/password";
import { Fn, Token } from "cdktf";
import { Construct, IConstruct } from "constructs";
import { skipCheckovAll } from "./checkov";
import {
  CONTRACT,
  DatabaseEngine,
  EXECUTOR_ROLES,
  EmailBackend,
  Executor,
  HasArn,
  HasBucket,
  HasId,
  HasName,
  LOG_PREFIXES,
  PropError,
  UNSET,
  assertIntIn,
  assertKeyPrefix,
  roleSecrets,
} from "./contract";

// --- the contract -------------------------------------------------------------------

/** Airflow's boolean spelling in airflow.cfg. */
const pyBool = (b: boolean): string => (b ? "True" : "False");

/**
 * The contract's secret keys that this executor needs: those some node role of the
 * executor reads (`roleSecrets`), in the contract's order. So the broker's AUTH token
 * and Flower's password, which only Celery roles read, exist only with CeleryExecutor.
 */
export function secretKeysFor(executor: Executor): string[] {
  const read = new Set(EXECUTOR_ROLES[executor].flatMap((role) => roleSecrets(role)));
  return CONTRACT.secrets.map((s) => s.key).filter((k) => read.has(k));
}

function checkKeys(
  scope: IConstruct,
  what: string,
  expected: readonly string[],
  given: Readonly<Record<string, unknown>>,
): void {
  const missing = expected.filter((k) => given[k] === undefined || given[k] === "");
  if (missing.length) {
    throw new PropError(
      scope,
      what,
      missing,
      "a non-empty value for every key of config/settings-contract.json",
    );
  }
  const unknown = Object.keys(given).filter((k) => !expected.includes(k));
  if (unknown.length) {
    throw new PropError(
      scope,
      what,
      unknown,
      `keys of config/settings-contract.json: ${expected.join(", ")}`,
    );
  }
}

// --- secrets ---------------------------------------------------------------------------

/** A secret created elsewhere (e.g. by the database or broker construct). */
export interface ExistingSecret {
  /** The secret. */
  readonly secret: SecretsmanagerSecret;
  /** Its current version (the version id feeds the settings revision). */
  readonly version: SecretsmanagerSecretVersion;
}

/** Secrets this construct generates; the others must come from their owners. */
export const GENERATED_SECRETS: readonly string[] = [
  "fernet-key",
  "jwt-secret",
  "api-secret-key",
  "admin-password",
  "flower-password",
];

/** Properties of {@link ClusterSecrets}. */
export interface ClusterSecretsProps {
  /** `<namePrefix>-<env>`: opens each secret's description. */
  readonly resourcePrefix: string;
  /** `<namePrefix>/<env>`: each secret is `<secretPrefix>/<contract key>`. */
  readonly secretPrefix: string;
  /** AWS region of the secrets (the `arnPrefix` output names it). */
  readonly region: string;
  /** The executor, which selects the contract's secrets (the broker's AUTH token is Celery's). */
  readonly executor: Executor;
  /**
   * Days a deleted generated secret stays recoverable (the environment's durability policy);
   * 0 deletes at once, so `destroy` + `deploy` can reuse the names.
   */
  readonly recoveryWindowDays: number;
  /** Customer-managed KMS key that encrypts the secrets (the cluster key). */
  readonly key: HasArn;
  /**
   * Secrets whose value another construct must set itself: `db-password` (the RDS
   * construct) and, with CeleryExecutor, `redis-auth-token` (the broker construct).
   * Keyed by contract secret key.
   */
  readonly existing: Readonly<Record<string, ExistingSecret>>;
}

/**
 * Every contract secret of this executor: the {@link GENERATED_SECRETS} created here
 * (random values, never literals) plus the ones handed in by their owners.
 *
 * Encrypted with the cluster's customer-managed key rather than `aws/secretsmanager`:
 * its key policy is ours, so access can be revoked in one place, decrypts are attributed
 * in CloudTrail to the calling role, and the node role's `kms:Decrypt` is limited to
 * calls made through Secrets Manager / SSM - with one key ARN for the whole cluster.
 */
export class ClusterSecrets extends Construct {
  /** Secret per contract key of this executor. */
  public readonly secrets: Readonly<Record<string, SecretsmanagerSecret>>;
  /** Current version per contract key; its `versionId` changes when the value does. */
  public readonly versions: Readonly<Record<string, SecretsmanagerSecretVersion>>;
  /** `arn:<partition>:secretsmanager:<region>:<account>:secret:<secretPrefix>/`, for outputs. */
  public readonly arnPrefix: string;

  public constructor(scope: Construct, id: string, props: ClusterSecretsProps) {
    super(scope, id);
    if (props.executor !== "CeleryExecutor" && props.executor !== "LocalExecutor") {
      throw new PropError(this, "executor", props.executor, '"CeleryExecutor" or "LocalExecutor"');
    }
    // Secrets Manager accepts 0 (delete at once) or 7 to 30 days.
    if (props.recoveryWindowDays !== 0) {
      assertIntIn(this, "recoveryWindowDays", props.recoveryWindowDays, 7, 30);
    }
    const keys = secretKeysFor(props.executor);
    const needed = keys.filter((k) => !GENERATED_SECRETS.includes(k));
    const missing = needed.filter((k) => !props.existing[k]);
    if (missing.length) {
      throw new PropError(
        this,
        "existing",
        Object.keys(props.existing),
        `secrets for ${needed.join(", ")}: their owners (database, broker) create them and hand them in`,
      );
    }
    const extra = Object.keys(props.existing).filter((k) => !needed.includes(k));
    if (extra.length) {
      throw new PropError(this, "existing", extra, `only ${needed.join(", ")} with ${props.executor}`);
    }

    const partition = new DataAwsPartition(this, "partition");
    const account = new DataAwsCallerIdentity(this, "account");
    this.arnPrefix =
      `arn:${partition.partition}:secretsmanager:${props.region}:${account.accountId}:` +
      `secret:${props.secretPrefix}/`;

    const secrets: Record<string, SecretsmanagerSecret> = {};
    const versions: Record<string, SecretsmanagerSecretVersion> = {};
    for (const key of keys) {
      const given = props.existing[key];
      if (given) {
        secrets[key] = given.secret;
        versions[key] = given.version;
        continue;
      }
      const description = CONTRACT.secrets.find((s) => s.key === key)?.description ?? key;
      const secret = new SecretsmanagerSecret(this, `secret-${key}`, {
        name: `${props.secretPrefix}/${key}`,
        description: `${props.resourcePrefix}: ${description}`,
        kmsKeyId: props.key.arn,
        recoveryWindowInDays: props.recoveryWindowDays,
      });
      skipCheckovAll(secret, {
        CKV2_AWS_57:
          "Rotation is a deliberate deploy, not a Lambda: `terraform apply -replace` of the random value " +
          "writes a new version whose id feeds AIRFLOW_SETTINGS_REVISION and rolls every node through " +
          "instance refresh, so fernet/JWT keys never differ between running nodes.",
      });
      secrets[key] = secret;
      versions[key] = new SecretsmanagerSecretVersion(this, `version-${key}`, {
        secretId: secret.id,
        secretString: this.generate(key),
      });
    }
    this.secrets = secrets;
    this.versions = versions;
  }

  private generate(key: string): string {
    if (key === "fernet-key") {
      // Fernet wants url-safe base64 of exactly 32 bytes, '=' padding kept. The
      // substrings are written as /regex/ so Terraform's replace() never reads a lone
      // "/" as a pattern.
      const bytes = new Bytes(this, "fernet-key-bytes", { length: 32 });
      return Fn.replace(Fn.replace(bytes.base64, "/[+]/", "-"), "/[/]/", "_");
    }
    // jwt-secret, api-secret-key (64), admin-password and flower-password (32):
    // alphanumerics only, safe in airflow.cfg, environment files, shells and URLs;
    // 190-380 bits of entropy.
    return new Password(this, `${key}-value`, {
      length: key === "admin-password" || key === "flower-password" ? 32 : 64,
      special: false,
      minUpper: 2,
      minLower: 2,
      minNumeric: 2,
    }).result;
  }
}

// --- parameters ------------------------------------------------------------------------

/** What settings need from the metadata database (satisfied by the `Database` construct). */
export interface DatabaseEndpoint {
  /** Engine; the bootstrap picks Airflow's SQLAlchemy driver by it. */
  readonly engine: DatabaseEngine;
  /** Endpoint host name (no port). */
  readonly endpoint: string;
  /** Port. */
  readonly port: number;
  /** Database name. */
  readonly dbName: string;
  /** User name. */
  readonly username: string;
}

/** What settings need from the broker (satisfied by the `Broker` construct). */
export interface BrokerEndpoint {
  /** Primary endpoint host name. */
  readonly endpoint: string;
  /** Port. */
  readonly port: number;
}

/** Airflow's `[scheduler]` tunables, stored as `scheduler/*` parameters. */
export interface SchedulerTuning {
  /** `[scheduler] max_dagruns_to_create_per_loop` */
  readonly maxDagrunsToCreatePerLoop: number;
  /** `[scheduler] max_dagruns_per_loop_to_schedule` */
  readonly maxDagrunsPerLoopToSchedule: number;
  /** `[scheduler] use_row_level_locking`; must stay true with more than one scheduler. */
  readonly useRowLevelLocking: boolean;
  /** `[scheduler] pool_metrics_interval` */
  readonly poolMetricsIntervalSeconds: number;
  /** `[scheduler] orphaned_tasks_check_interval` */
  readonly orphanedTasksCheckIntervalSeconds: number;
}

/** Properties of {@link ClusterSettings}. */
export interface ClusterSettingsProps {
  /** `/<namePrefix>/<env>`: every parameter is `<parameterPrefix>/<contract key>`. */
  readonly parameterPrefix: string;
  /** Metadata database. */
  readonly database: DatabaseEndpoint;
  /**
   * The Celery broker. Only CeleryExecutor has one, so giving it selects CeleryExecutor
   * (the `executor` parameter).
   * @default none - LocalExecutor; `broker/*` are stored as "none"
   */
  readonly broker?: BrokerEndpoint;
  /** How DAG e-mail leaves the cluster (`email/backend`). */
  readonly emailBackend: EmailBackend;
  /**
   * Recipient of DAG failure alerts (the `alert_email` variable).
   * @default none - stored as "none" and the DAGs send no alert
   */
  readonly alertEmail?: string;
  /** Scheduler tunables. */
  readonly scheduler: SchedulerTuning;
  /** `[core] parallelism`: task slots of the whole cluster. */
  readonly parallelism: number;
  /** `[celery] worker_concurrency`: task slots per Celery worker (stored with either executor). */
  readonly workerConcurrency: number;
  /** The seed's `[core] allow_trigger_in_future`; Airflow 3 ignores it, the contract still carries it. */
  readonly allowTriggerInFuture: boolean;
  /** EFS file system holding dags/ and plugins/. */
  readonly fileSystem: HasId;
  /** EFS access point for the airflow user. */
  readonly accessPoint: HasId;
  /** Bucket for remote task logs. */
  readonly logBucket: HasBucket;
  /**
   * Key prefix of remote task logs in the log bucket, no leading or trailing slash.
   * @default LOG_PREFIXES.remote ("airflow-logs")
   */
  readonly remoteLogPrefix?: string;
  /**
   * Key prefix of EMR logs in the log bucket, no leading or trailing slash.
   * @default LOG_PREFIXES.emr ("emr-logs")
   */
  readonly emrLogPrefix?: string;
  /** Data bucket (champion/data/ input, champion/output/ output). */
  readonly dataBucket: HasBucket;
  /** Artifacts bucket that deploy uploads dags/ and spark-jobs/ to. */
  readonly artifactsBucket: HasBucket;
  /** `s3://<artifacts>/dags/`. */
  readonly dagsUri: string;
  /** `s3://` URI of the content-hashed Spark sort job. */
  readonly sparkJobUri: string;
  /** Public URL of the UI, e.g. `https://<alb dns>`. */
  readonly baseUrl: string;
  /** Execution API URL that workers reach, e.g. `http://<internal alb>/execution/`. */
  readonly executionApiUrl: string;
  /** Sender address of DAG e-mails. */
  readonly fromEmail: string;
  /** SMTP host (the region's SES endpoint). */
  readonly smtpHost: string;
  /**
   * Value of the contract's `emrClusterTag` tag on this cluster's EMR clusters (the
   * `emr_cluster_tag` variable), `<namePrefix>-<env>`: the node roles control only
   * clusters carrying it.
   */
  readonly emrClusterTag: string;
  /** EMR service role. */
  readonly emrServiceRole: HasName;
  /** EMR EC2 instance profile. */
  readonly emrInstanceProfile: HasName;
  /** Private subnet the EMR cluster runs in. */
  readonly emrSubnet: HasId;
  /** EMR-managed security groups DAG_1 passes to the job flow (modules/emr-security-groups.ts). */
  readonly emrSecurityGroups: {
    readonly primary: HasId;
    readonly core: HasId;
    readonly serviceAccess: HasId;
  };
}

/**
 * One SSM `String` parameter per contract `parameters` key under `<parameterPrefix>/`
 * and one per `variables.keys` key under `<parameterPrefix>/variables/`.
 *
 * These are non-secret by design (secrets live in {@link ClusterSecrets}), hence
 * `String` rather than `SecureString`.
 */
export class ClusterSettings extends Construct {
  /** Parameter per contract key. */
  public readonly parameters: Readonly<Record<string, SsmParameter>>;
  /** Variable parameter per contract variable key. */
  public readonly variables: Readonly<Record<string, SsmParameter>>;
  /** Value (possibly a token) per contract parameter key, for the settings revision hash. */
  public readonly parameterValues: Readonly<Record<string, string>>;
  /** Value per contract variable key. */
  public readonly variableValues: Readonly<Record<string, string>>;
  /** `<parameterPrefix>` (e.g. `/airflow/dev`). */
  public readonly parameterPrefix: string;

  public constructor(scope: Construct, id: string, props: ClusterSettingsProps) {
    super(scope, id);
    if (!/^(\/[A-Za-z0-9._-]+)+$/.test(props.parameterPrefix)) {
      throw new PropError(this, "parameterPrefix", props.parameterPrefix, "an SSM path such as /airflow/dev");
    }
    const { scheduler, broker } = props;
    const counts: [string, number][] = [
      ["scheduler.maxDagrunsToCreatePerLoop", scheduler.maxDagrunsToCreatePerLoop],
      ["scheduler.maxDagrunsPerLoopToSchedule", scheduler.maxDagrunsPerLoopToSchedule],
      ["scheduler.poolMetricsIntervalSeconds", scheduler.poolMetricsIntervalSeconds],
      ["scheduler.orphanedTasksCheckIntervalSeconds", scheduler.orphanedTasksCheckIntervalSeconds],
      ["parallelism", props.parallelism],
      ["workerConcurrency", props.workerConcurrency],
    ];
    for (const [field, v] of counts) {
      if (!Number.isInteger(v) || v < 1) throw new PropError(this, field, v, "a positive integer");
    }
    const remoteLogPrefix = props.remoteLogPrefix ?? LOG_PREFIXES.remote;
    const emrLogPrefix = props.emrLogPrefix ?? LOG_PREFIXES.emr;
    assertKeyPrefix(this, "remoteLogPrefix", remoteLogPrefix);
    assertKeyPrefix(this, "emrLogPrefix", emrLogPrefix);
    // DAG_1 sets it as a tag value and the node roles' IAM conditions compare it verbatim.
    if (!/^[A-Za-z0-9-]{1,128}$/.test(props.emrClusterTag)) {
      throw new PropError(
        this,
        "emrClusterTag",
        props.emrClusterTag,
        "<namePrefix>-<env>: letters, digits and '-'",
      );
    }
    const str = (n: number): string => (Token.isUnresolved(n) ? Token.asString(n) : String(n));

    const parameterValues: Record<string, string> = {
      executor: broker ? "CeleryExecutor" : "LocalExecutor",
      "db/engine": props.database.engine,
      "db/endpoint": props.database.endpoint,
      "db/port": str(props.database.port),
      "db/name": props.database.dbName,
      "db/username": props.database.username,
      "broker/endpoint": broker ? broker.endpoint : UNSET,
      "broker/port": broker ? str(broker.port) : UNSET,
      "efs/file-system-id": props.fileSystem.id,
      "efs/access-point-id": props.accessPoint.id,
      "logs/remote-base-log-folder": `s3://${props.logBucket.bucket}/${remoteLogPrefix}`,
      "artifacts/dags-uri": props.dagsUri,
      "api/base-url": props.baseUrl,
      "api/execution-api-url": props.executionApiUrl,
      "smtp/from-email": props.fromEmail,
      "email/backend": props.emailBackend,
      "smtp/host": props.smtpHost,
      "scheduler/max-dagruns-to-create-per-loop": String(scheduler.maxDagrunsToCreatePerLoop),
      "scheduler/max-dagruns-per-loop-to-schedule": String(scheduler.maxDagrunsPerLoopToSchedule),
      "scheduler/use-row-level-locking": pyBool(scheduler.useRowLevelLocking),
      "scheduler/pool-metrics-interval": String(scheduler.poolMetricsIntervalSeconds),
      "scheduler/orphaned-tasks-check-interval": String(scheduler.orphanedTasksCheckIntervalSeconds),
      "core/allow-trigger-in-future": pyBool(props.allowTriggerInFuture),
      "core/parallelism": String(props.parallelism),
      "celery/worker-concurrency": String(props.workerConcurrency),
    };
    const variableValues: Record<string, string> = {
      data_bucket: props.dataBucket.bucket,
      artifacts_bucket: props.artifactsBucket.bucket,
      spark_job_uri: props.sparkJobUri,
      emr_service_role: props.emrServiceRole.name,
      emr_cluster_tag: props.emrClusterTag,
      emr_job_flow_role: props.emrInstanceProfile.name,
      emr_log_uri: `s3://${props.logBucket.bucket}/${emrLogPrefix}/`,
      emr_subnet_id: props.emrSubnet.id,
      emr_primary_security_group_id: props.emrSecurityGroups.primary.id,
      emr_core_security_group_id: props.emrSecurityGroups.core.id,
      emr_service_access_security_group_id: props.emrSecurityGroups.serviceAccess.id,
      alert_email: props.alertEmail ?? UNSET,
    };
    checkKeys(
      this,
      "parameters",
      CONTRACT.parameters.map((p) => p.key),
      parameterValues,
    );
    checkKeys(
      this,
      "variables",
      CONTRACT.variables.keys.map((v) => v.key),
      variableValues,
    );
    this.parameterValues = parameterValues;
    this.variableValues = variableValues;
    this.parameterPrefix = props.parameterPrefix;

    const reason =
      "Non-secret settings by design (endpoints, ids, tunables); every secret lives in Secrets " +
      "Manager under a CMK, so SecureString would add KMS calls and no confidentiality.";
    const make = (
      kind: string,
      key: string,
      name: string,
      value: string,
      description: string,
    ): SsmParameter => {
      const p = new SsmParameter(this, `${kind}-${key.replace(/[^A-Za-z0-9]/g, "-")}`, {
        name,
        type: "String",
        // insecure_value: the value is not secret, so plans show it and references to it
        // (the settings revision) are not marked sensitive.
        insecureValue: value,
        description,
      });
      skipCheckovAll(p, { CKV2_AWS_34: reason });
      return p;
    };
    const parameters: Record<string, SsmParameter> = {};
    for (const p of CONTRACT.parameters) {
      parameters[p.key] = make(
        "param",
        p.key,
        `${props.parameterPrefix}/${p.key}`,
        parameterValues[p.key],
        p.description,
      );
    }
    const variables: Record<string, SsmParameter> = {};
    for (const v of CONTRACT.variables.keys) {
      variables[v.key] = make(
        "var",
        v.key,
        `${props.parameterPrefix}/variables/${v.key}`,
        variableValues[v.key],
        `Airflow Variable ${v.key}: ${v.description}`,
      );
    }
    this.parameters = parameters;
    this.variables = variables;
  }
}

/**
 * AIRFLOW_SETTINGS_REVISION: a SHA-256, computed by Terraform at apply time, over every
 * non-secret setting value and every secret's version id. A changed setting or a rotated
 * secret changes it, which changes user-data, which makes a new launch template version,
 * which starts an instance refresh - so nodes never run with stale settings.
 *
 * Airflow Variables are left out on purpose: tasks read them through the Parameter Store
 * secrets backend at run time, so a new value (e.g. the content-hashed `spark_job_uri`
 * after a Spark script change) takes effect without replacing a single node.
 */
export function settingsRevision(settings: ClusterSettings, secrets: ClusterSecrets): string {
  // References to the stored values (not the strings that built them): plain attribute
  // references are what Terraform functions take reliably, and it hashes what nodes read.
  const inputs: Record<string, string> = {};
  for (const [k, p] of Object.entries(settings.parameters)) inputs[`parameter:${k}`] = p.insecureValue;
  for (const [k, v] of Object.entries(secrets.versions)) inputs[`secret:${k}`] = v.versionId;
  const sorted = Object.fromEntries(
    Object.keys(inputs)
      .sort()
      .map((k) => [k, inputs[k]]),
  );
  return Fn.sha256(Fn.jsonencode(sorted));
}
