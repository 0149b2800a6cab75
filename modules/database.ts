/**
 * The Airflow metadata database: RDS MySQL 8.4 (default) or PostgreSQL 17 in the
 * private subnets, encrypted with the cluster key, TLS enforced by the parameter group,
 * automated backups, deletion protection and a final snapshot outside dev.
 *
 * Password and rotation. The password is a `random_password` (letters and digits only,
 * so it is safe inside a SQLAlchemy URL) stored as the plain-string secret
 * `<namePrefix>/<env>/db-password`. There is deliberately NO automatic Secrets Manager
 * rotation: a rotation Lambda would change the password under running schedulers and
 * workers, which read it at boot, and they would fail until restarted. Rotation is
 * instead a deploy: bump `database.passwordVersion` in `config/<env>.json` and run
 * `cdktf deploy`. Terraform generates a new password, updates RDS and writes a new
 * secret version; the secret's version id is part of the node settings revision
 * (`AIRFLOW_SETTINGS_REVISION` in user-data), so every launch template changes and the
 * Auto Scaling instance refresh replaces every node with one that reads the new
 * password. Nodes not yet replaced lose DB access from the moment RDS applies the
 * change until they are replaced, so rotate in a quiet window.
 */
import { Construct } from "constructs";
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group";
import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { DbInstance } from "@cdktf/provider-aws/lib/db-instance";
import { DbParameterGroup, DbParameterGroupParameter } from "@cdktf/provider-aws/lib/db-parameter-group";
import { DbSubnetGroup } from "@cdktf/provider-aws/lib/db-subnet-group";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import { IamRolePolicyAttachment } from "@cdktf/provider-aws/lib/iam-role-policy-attachment";
import { SecretsmanagerSecret } from "@cdktf/provider-aws/lib/secretsmanager-secret";
import { SecretsmanagerSecretVersion } from "@cdktf/provider-aws/lib/secretsmanager-secret-version";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { Subnet } from "@cdktf/provider-aws/lib/subnet";
import { Password } from "@cdktf/provider-random/lib/password";
import { Id as RandomId } from "@cdktf/provider-random/lib/id";
import { skipCheckov, skipShortLogRetention } from "./checkov";
import { DatabaseEngine, PORTS, PropError, assertIntIn, iamName } from "./contract";

/** Metadata DB engines Airflow 3 supports here. */

/** Props of {@link Database}. */
export interface DatabaseProps {
  /** `<namePrefix>-<env>`. */
  readonly resourcePrefix: string;
  /** `<namePrefix>/<env>`; the password secret is `<secretPrefix>/db-password`. */
  readonly secretPrefix: string;
  /** Region of the cluster: part of the monitoring role's (global) IAM name. */
  readonly region: string;
  /** Private subnets (at least two AZs, as RDS requires). */
  readonly subnets: readonly Subnet[];
  /** The database security group (ingress only from the Airflow nodes). */
  readonly securityGroup: SecurityGroup;
  /** Cluster KMS key ARN: storage, Performance Insights, log groups and the secret. */
  readonly kmsKeyArn: string;
  /**
   * Engine.
   * @default "mysql"
   */
  readonly engine?: DatabaseEngine;
  /**
   * Engine version.
   * @default "8.4" for mysql, "17" for postgres
   */
  readonly engineVersion?: string;
  /**
   * Instance class.
   * @default "db.t4g.medium"
   */
  readonly instanceClass?: string;
  /**
   * Standby in a second AZ.
   * @default false
   */
  readonly multiAz?: boolean;
  /**
   * Initial storage in GiB; storage autoscaling may grow it to 5x.
   * @default 20
   */
  readonly allocatedStorageGb?: number;
  /**
   * Automated backup retention in days (1-35).
   * @default 7
   */
  readonly backupRetentionDays?: number;
  /**
   * Deletion protection (and, unless `finalSnapshot` says otherwise, a final snapshot on destroy).
   * @default true
   */
  readonly deletionProtection?: boolean;
  /**
   * Take a final snapshot when the instance is destroyed.
   * @default deletionProtection
   */
  readonly finalSnapshot?: boolean;
  /**
   * Days a deleted password secret stays recoverable (0 deletes it at once).
   * @default 7
   */
  readonly secretRecoveryWindowDays?: number;
  /**
   * Bump to generate a new password (see the module comment on rotation).
   * @default 1
   */
  readonly passwordVersion?: number;
  /** Retention of the exported DB log groups, in days. */
  readonly logRetentionDays: number;
}

const DEFAULT_VERSION: Record<DatabaseEngine, string> = { mysql: "8.4", postgres: "17" };

/** Parameters Airflow needs (or that harden the instance), per engine. */
function parameters(engine: DatabaseEngine): DbParameterGroupParameter[] {
  if (engine === "mysql") {
    return [
      // Required by Airflow on MySQL: TIMESTAMP columns without implicit defaults.
      { name: "explicit_defaults_for_timestamp", value: "1" },
      // Airflow stores DAG code, rendered fields and log text: full Unicode.
      { name: "character_set_server", value: "utf8mb4" },
      { name: "collation_server", value: "utf8mb4_unicode_ci" },
      // Clients must use TLS (encryption in transit).
      { name: "require_secure_transport", value: "1" },
      // Slow queries to the log file that RDS exports to CloudWatch (TABLE would not export).
      { name: "slow_query_log", value: "1" },
      { name: "long_query_time", value: "2" },
      { name: "log_output", value: "FILE" },
    ];
  }
  return [
    { name: "rds.force_ssl", value: "1" },
    // Slow statements and connection churn in the exported log, for troubleshooting.
    { name: "log_min_duration_statement", value: "2000" },
    { name: "log_connections", value: "1" },
    { name: "log_disconnections", value: "1" },
    { name: "log_statement", value: "ddl" },
  ];
}

/** RDS metadata database with a generated password in Secrets Manager. */
export class Database extends Construct {
  /** The RDS instance. */
  public readonly instance: DbInstance;
  /** Engine ("mysql" | "postgres"). */
  public readonly engine: DatabaseEngine;
  /** Endpoint host name (no port). */
  public readonly endpoint: string;
  /** Port. */
  public readonly port: number;
  /** Database name. */
  public readonly dbName: string;
  /** Master user name (Airflow connects as this user). */
  public readonly username: string;
  /** Secret `<secretPrefix>/db-password` (plain string). */
  public readonly passwordSecret: SecretsmanagerSecret;
  /** Current secret version: its `versionId` belongs in the node settings revision. */
  public readonly passwordSecretVersion: SecretsmanagerSecretVersion;

  public constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const engine = props.engine ?? "mysql";
    const version = props.engineVersion ?? DEFAULT_VERSION[engine];
    const backupDays = props.backupRetentionDays ?? 7;
    const storage = props.allocatedStorageGb ?? 20;
    const passwordVersion = props.passwordVersion ?? 1;
    const recoveryDays = props.secretRecoveryWindowDays ?? 7;
    if (props.subnets.length < 2) {
      throw new PropError(this, "subnets", props.subnets.length, "2 or more subnets in different AZs (RDS)");
    }
    assertIntIn(this, "backupRetentionDays", backupDays, 1, 35);
    assertIntIn(this, "allocatedStorageGb", storage, 20, 65536);
    assertIntIn(this, "passwordVersion", passwordVersion, 1, 1000000);
    // Secrets Manager takes 0 (delete at once) or 7 to 30 days.
    if (recoveryDays !== 0) assertIntIn(this, "secretRecoveryWindowDays", recoveryDays, 7, 30);
    const major = version
      .split(".")
      .slice(0, engine === "mysql" ? 2 : 1)
      .join(".");
    const protect = props.deletionProtection ?? true;
    const finalSnapshot = props.finalSnapshot ?? protect;
    const p = props.resourcePrefix;
    const identifier = `${p}-metadata`;
    this.engine = engine;
    this.port = engine === "mysql" ? PORTS.mysql : PORTS.postgres;
    this.dbName = "airflow";
    this.username = "airflow";

    const password = new Password(this, "password", {
      length: 40,
      // Letters and digits only: RDS forbids / @ " and space, and anything else would
      // need URL-escaping in [database] sql_alchemy_conn.
      special: false,
      minUpper: 2,
      minLower: 2,
      minNumeric: 2,
      keepers: { version: String(passwordVersion) },
    });

    this.passwordSecret = new SecretsmanagerSecret(this, "password-secret", {
      name: `${props.secretPrefix}/db-password`,
      description: `${p}: password of the Airflow metadata DB user '${this.username}'`,
      kmsKeyId: props.kmsKeyArn,
      recoveryWindowInDays: recoveryDays,
    });
    skipCheckov(
      this.passwordSecret,
      "CKV2_AWS_57",
      "no automatic rotation on purpose: running nodes read the password at boot; rotation is a deploy that bumps database.passwordVersion and rolls every node (see modules/database.ts)",
    );
    this.passwordSecretVersion = new SecretsmanagerSecretVersion(this, "password-version", {
      secretId: this.passwordSecret.id,
      secretString: password.result,
    });

    const subnets = new DbSubnetGroup(this, "subnets", {
      name: `${p}-metadata`,
      description: `${p}: private subnets of the metadata DB`,
      subnetIds: props.subnets.map((s) => s.id),
    });
    // name_prefix: a replacement (new family on a major upgrade, a new description) is
    // created under a fresh name before the old group is deleted, so the names never clash.
    const params = new DbParameterGroup(this, "params", {
      namePrefix: `${p}-metadata-${engine}${major.replace(".", "-")}-`,
      family: `${engine}${major}`,
      description: `${p}: settings Airflow requires on ${engine} ${major}`,
      parameter: parameters(engine),
      lifecycle: { createBeforeDestroy: true },
    });

    // Enhanced monitoring: OS-level metrics every 60 s.
    const monitoringRole = new IamRole(this, "monitoring-role", {
      name: iamName(p, props.region, "rds-monitoring"),
      assumeRolePolicy: new DataAwsIamPolicyDocument(this, "monitoring-assume", {
        statement: [
          {
            actions: ["sts:AssumeRole"],
            principals: [{ type: "Service", identifiers: ["monitoring.rds.amazonaws.com"] }],
          },
        ],
      }).json,
    });
    const monitoringPolicy = new IamRolePolicyAttachment(this, "monitoring-policy", {
      role: monitoringRole.name,
      policyArn: "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
    });

    const logExports = engine === "mysql" ? ["error", "slowquery"] : ["postgresql", "upgrade"];
    // RDS would create these groups itself with no retention and no key; own them.
    const logGroups = logExports.map((name) => {
      const group = new CloudwatchLogGroup(this, `log-${name}`, {
        name: `/aws/rds/instance/${identifier}/${name}`,
        retentionInDays: props.logRetentionDays,
        kmsKeyId: props.kmsKeyArn,
      });
      skipShortLogRetention(group, props.logRetentionDays);
      return group;
    });

    this.instance = new DbInstance(this, "instance", {
      identifier,
      engine,
      engineVersion: version,
      // Refuse the paid RDS Extended Support silently kicking in at end of life.
      engineLifecycleSupport: "open-source-rds-extended-support-disabled",
      instanceClass: props.instanceClass ?? "db.t4g.medium",
      allocatedStorage: storage,
      maxAllocatedStorage: storage * 5,
      storageType: "gp3",
      storageEncrypted: true,
      kmsKeyId: props.kmsKeyArn,
      dbName: this.dbName,
      username: this.username,
      password: password.result,
      port: this.port,
      multiAz: props.multiAz ?? false,
      dbSubnetGroupName: subnets.name,
      vpcSecurityGroupIds: [props.securityGroup.id],
      parameterGroupName: params.name,
      publiclyAccessible: false,
      caCertIdentifier: "rds-ca-rsa2048-g1",
      iamDatabaseAuthenticationEnabled: true,
      backupRetentionPeriod: backupDays,
      backupWindow: "03:00-04:00",
      maintenanceWindow: "sun:04:30-sun:05:30",
      copyTagsToSnapshot: true,
      deleteAutomatedBackups: !protect,
      deletionProtection: protect,
      skipFinalSnapshot: !finalSnapshot,
      // Unique per DB lifetime, so the final snapshot of a second destroy (after a
      // redeploy) does not collide with the first one's. A random suffix, not
      // timestamp(): that would change on every plan and show a perpetual diff.
      finalSnapshotIdentifier: finalSnapshot
        ? `${identifier}-final-${new RandomId(this, "final-snapshot-suffix", { byteLength: 4, keepers: { identifier } }).hex}`
        : undefined,
      autoMinorVersionUpgrade: true,
      allowMajorVersionUpgrade: false,
      // Outside dev, changes wait for the maintenance window (password changes are
      // always immediate in RDS).
      applyImmediately: !protect,
      performanceInsightsEnabled: true,
      performanceInsightsKmsKeyId: props.kmsKeyArn,
      performanceInsightsRetentionPeriod: 7,
      monitoringInterval: 60,
      monitoringRoleArn: monitoringRole.arn,
      enabledCloudwatchLogsExports: logExports,
      // RDS checks the monitoring role when it enables enhanced monitoring and fails the
      // create if the role cannot yet publish; the log groups must exist before RDS makes its own.
      dependsOn: [...logGroups, monitoringPolicy],
    });
    if (!protect) {
      skipCheckov(
        this.instance,
        "CKV_AWS_293",
        "deletionProtection is off by config (dev default) so a disposable env can be destroyed; on by default elsewhere",
      );
    }
    if (!(props.multiAz ?? false)) {
      skipCheckov(
        this.instance,
        "CKV_AWS_157",
        "database.multiAz is off by config (dev default, halves cost); on by default elsewhere",
      );
    }
    this.endpoint = this.instance.address;
  }
}
