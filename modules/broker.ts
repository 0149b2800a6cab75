/**
 * The Celery broker: an ElastiCache Valkey replication group (Redis-protocol, so
 * Celery's `redis`/`rediss` transport works unchanged) with TLS required, an AUTH token,
 * at-rest encryption under the cluster key, and automatic failover across AZs when it
 * has replicas. Sized for a broker (cache.t4g.small): Celery messages are tiny.
 *
 * `maxmemory-policy noeviction`: a broker must refuse writes rather than silently evict
 * queued task messages (the ElastiCache default, volatile-lru, is for caches).
 *
 * AUTH token rotation without downtime, in two deploys (README, Secrets and rotation):
 * 1. bump `redis.authTokenVersion` (strategy ROTATE): ElastiCache accepts BOTH the old and
 *    the new token, so nodes still holding the old one keep working while the instance
 *    refresh (driven by the secret version id in the settings revision) replaces them;
 * 2. once every refresh has finished, set `redis.authTokenUpdateStrategy: "SET"` and deploy
 *    again: the provider re-sends the same token with SET, and the old one is refused.
 * Without step 2 the old token stays valid forever.
 */
import { createHash } from "node:crypto";
import { Construct } from "constructs";
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group";
import { ElasticacheParameterGroup } from "@cdktf/provider-aws/lib/elasticache-parameter-group";
import { ElasticacheReplicationGroup } from "@cdktf/provider-aws/lib/elasticache-replication-group";
import { ElasticacheSubnetGroup } from "@cdktf/provider-aws/lib/elasticache-subnet-group";
import { SecretsmanagerSecret } from "@cdktf/provider-aws/lib/secretsmanager-secret";
import { SecretsmanagerSecretVersion } from "@cdktf/provider-aws/lib/secretsmanager-secret-version";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { Subnet } from "@cdktf/provider-aws/lib/subnet";
import { Password } from "@cdktf/provider-random/lib/password";
import { skipCheckov, skipShortLogRetention } from "./checkov";
import { PORTS, PropError, assertIntIn } from "./contract";

/** Props of {@link Broker}. */
export interface BrokerProps {
  /** `<namePrefix>-<env>`. */
  readonly resourcePrefix: string;
  /** `<namePrefix>/<env>`; the token secret is `<secretPrefix>/redis-auth-token`. */
  readonly secretPrefix: string;
  /** Private subnets. */
  readonly subnets: readonly Subnet[];
  /** The broker security group (6379 only from the Airflow nodes). */
  readonly securityGroup: SecurityGroup;
  /** Cluster KMS key ARN. */
  readonly kmsKeyArn: string;
  /**
   * Node type.
   * @default "cache.t4g.small"
   */
  readonly nodeType?: string;
  /**
   * Read replicas (0-5); with at least one, automatic failover and Multi-AZ are on.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * Days of daily snapshots kept (0 disables).
   * @default 1
   */
  readonly snapshotRetentionDays?: number;
  /**
   * Bump to generate a new AUTH token (rotated without downtime, see module comment).
   * @default 1
   */
  readonly authTokenVersion?: number;
  /**
   * ROTATE keeps the previous token valid beside the current one; SET (after every node
   * runs on the current token) revokes it. Changing only this re-applies the same token.
   * @default "ROTATE"
   */
  readonly authTokenUpdateStrategy?: "ROTATE" | "SET";
  /** Retention of the slow-log group, in days. */
  readonly logRetentionDays: number;
  /**
   * Days a deleted AUTH token secret stays recoverable (0 deletes it at once).
   * @default 7
   */
  readonly secretRecoveryWindowDays?: number;
}

/** Valkey major version and its parameter-group family. */
const ENGINE_VERSION = "8.0";
const FAMILY = "valkey8";

/** ElastiCache replication group used as the Celery broker. */
export class Broker extends Construct {
  /** The replication group. */
  public readonly replicationGroup: ElasticacheReplicationGroup;
  /** Primary endpoint host name (TLS, AUTH). */
  public readonly endpoint: string;
  /** Port. */
  public readonly port: number;
  /** Secret `<secretPrefix>/redis-auth-token` (plain string). */
  public readonly authTokenSecret: SecretsmanagerSecret;
  /** Current token version: its `versionId` belongs in the node settings revision. */
  public readonly authTokenSecretVersion: SecretsmanagerSecretVersion;

  public constructor(scope: Construct, id: string, props: BrokerProps) {
    super(scope, id);
    const replicas = props.replicas ?? 1;
    const snapshots = props.snapshotRetentionDays ?? 1;
    const tokenVersion = props.authTokenVersion ?? 1;
    const recoveryDays = props.secretRecoveryWindowDays ?? 7;
    if (props.subnets.length === 0) {
      throw new PropError(this, "subnets", props.subnets.length, "1 or more private subnets");
    }
    assertIntIn(this, "replicas", replicas, 0, 5);
    assertIntIn(this, "snapshotRetentionDays", snapshots, 0, 35);
    assertIntIn(this, "authTokenVersion", tokenVersion, 1, 1000000);
    // Secrets Manager takes 0 (delete at once) or 7 to 30 days.
    if (recoveryDays !== 0) assertIntIn(this, "secretRecoveryWindowDays", recoveryDays, 7, 30);
    const p = props.resourcePrefix;
    this.port = PORTS.redis;

    // AUTH tokens: 16-128 printable characters without @ " /; letters and digits keep
    // the token safe inside a rediss:// URL.
    const token = new Password(this, "auth-token", {
      length: 64,
      special: false,
      keepers: { version: String(tokenVersion) },
    });
    this.authTokenSecret = new SecretsmanagerSecret(this, "auth-token-secret", {
      name: `${props.secretPrefix}/redis-auth-token`,
      description: `${p}: AUTH token of the Celery broker`,
      kmsKeyId: props.kmsKeyArn,
      recoveryWindowInDays: recoveryDays,
    });
    skipCheckov(
      this.authTokenSecret,
      "CKV2_AWS_57",
      "rotated by deploy (bump redis.authTokenVersion, then redis.authTokenUpdateStrategy SET): ElastiCache's ROTATE strategy keeps the old token valid while nodes roll, SET revokes it; a rotation Lambda cannot update the replication group",
    );
    this.authTokenSecretVersion = new SecretsmanagerSecretVersion(this, "auth-token-version", {
      secretId: this.authTokenSecret.id,
      secretString: token.result,
    });

    const subnets = new ElasticacheSubnetGroup(this, "subnets", {
      name: `${p}-broker`,
      description: `${p}: private subnets of the Celery broker`,
      subnetIds: props.subnets.map((s) => s.id),
    });
    // The provider has no name_prefix for ElastiCache parameter groups, so the name carries
    // a digest of the attributes that force a replacement (family, description): a
    // replacement gets a new name and can be created before the old group is deleted.
    const paramsDescription = `${p}: Celery broker settings`;
    const paramsDigest = createHash("sha256")
      .update(`${FAMILY}\n${paramsDescription}`)
      .digest("hex")
      .slice(0, 8);
    const params = new ElasticacheParameterGroup(this, "params", {
      name: `${p}-broker-${FAMILY}-${paramsDigest}`,
      family: FAMILY,
      description: paramsDescription,
      parameter: [{ name: "maxmemory-policy", value: "noeviction" }],
      lifecycle: { createBeforeDestroy: true },
    });
    const slowLog = new CloudwatchLogGroup(this, "slow-log", {
      name: `/${p}/broker/slow-log`,
      retentionInDays: props.logRetentionDays,
      kmsKeyId: props.kmsKeyArn,
    });
    skipShortLogRetention(slowLog, props.logRetentionDays);

    const failover = replicas > 0;
    this.replicationGroup = new ElasticacheReplicationGroup(this, "broker", {
      replicationGroupId: `${p}-broker`,
      description: `${p}: Celery broker`,
      engine: "valkey",
      engineVersion: ENGINE_VERSION,
      nodeType: props.nodeType ?? "cache.t4g.small",
      numCacheClusters: 1 + replicas,
      automaticFailoverEnabled: failover,
      multiAzEnabled: failover,
      port: this.port,
      parameterGroupName: params.name,
      subnetGroupName: subnets.name,
      securityGroupIds: [props.securityGroup.id],
      atRestEncryptionEnabled: "true",
      kmsKeyId: props.kmsKeyArn,
      transitEncryptionEnabled: true,
      transitEncryptionMode: "required",
      authToken: token.result,
      authTokenUpdateStrategy: props.authTokenUpdateStrategy ?? "ROTATE",
      autoMinorVersionUpgrade: "true",
      snapshotRetentionLimit: snapshots,
      snapshotWindow: "03:00-04:00",
      maintenanceWindow: "sun:05:00-sun:06:00",
      applyImmediately: true,
      logDeliveryConfiguration: [
        {
          destination: slowLog.name,
          destinationType: "cloudwatch-logs",
          logFormat: "json",
          logType: "slow-log",
        },
      ],
    });
    if (!failover) {
      skipCheckov(
        this.replicationGroup,
        "CKV2_AWS_50",
        "replicas 0 (the dev default): one node has no replica to fail over to; a lost node costs only queued Celery messages, which the scheduler re-queues after [scheduler] task_queued_timeout; set redis.replicas to 1 or more for failover",
      );
    }
    this.endpoint = this.replicationGroup.primaryEndpointAddress;
  }
}
