/**
 * The cluster stack `<namePrefix>-<env>`: composition only. Each concern lives in its
 * own module and documents what it hands on; this file builds them in dependency order
 * and passes each construct the fields it uses. The policy aspect runs last, over
 * everything (tags, IMDSv2, encryption defaults).
 */
import { Construct } from "constructs";
import { Aspects, S3Backend, TerraformStack } from "cdktf";
import { DataAwsCallerIdentity } from "@cdktf/provider-aws/lib/data-aws-caller-identity";
import { DataAwsPartition } from "@cdktf/provider-aws/lib/data-aws-partition";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { RandomProvider } from "@cdktf/provider-random/lib/provider";
import { ClusterAlarms } from "./alarms";
import { Broker } from "./broker";
import { Buckets } from "./buckets";
import { ComputePlane } from "./compute-plane";
import { AirflowConfig, ClusterNames, clusterNames } from "./config";
import { Database } from "./database";
import { EmrSecurityGroups } from "./emr-security-groups";
import { ALARMED_TARGET_GROUPS, EXECUTOR_ROLES, REQUIRED_TERRAFORM_VERSION } from "./contract";
import { ClusterKey } from "./encryption";
import { Network } from "./network";
import { ClusterPolicyAspect, clusterTags } from "./policy-aspect";
import { SecurityGroups } from "./security-groups";
import { stateKeyAlias } from "./state-access";
import { SharedStorage } from "./storage";
import { ClusterTelemetry } from "./telemetry";

/** Props of {@link AirflowClusterStack}. */
export interface AirflowClusterStackProps {
  /** The validated configuration. */
  readonly config: AirflowConfig;
}

/** One Airflow cluster (one env). */
export class AirflowClusterStack extends TerraformStack {
  /** The validated configuration. */
  public readonly config: AirflowConfig;
  /** Derived names (prefixes, stack and state names). */
  public readonly names: ClusterNames;
  /** AWS account id (token). */
  public readonly accountId: string;
  /** AWS partition (token). */
  public readonly partition: string;
  /** Cluster KMS key. */
  public readonly key: ClusterKey;
  /** VPC and subnets. */
  public readonly network: Network;
  /** Security groups per role. */
  public readonly securityGroups: SecurityGroups;
  /** EMR-managed security groups of DAG_1's clusters. */
  public readonly emrSecurityGroups: EmrSecurityGroups;
  /** Metadata database. */
  public readonly database: Database;
  /** Celery broker; undefined with LocalExecutor. */
  public readonly broker?: Broker;
  /** EFS for DAGs and plugins. */
  public readonly storage: SharedStorage;
  /** S3 buckets. */
  public readonly buckets: Buckets;
  /** Compute plane: load balancers, node groups and what they need. */
  public readonly compute: ComputePlane;
  /** Alarm topic and alarms. */
  public readonly alarms: ClusterAlarms;
  /** Component log groups and the CloudWatch agent's configuration. */
  public readonly telemetry: ClusterTelemetry;

  public constructor(scope: Construct, id: string, props: AirflowClusterStackProps) {
    super(scope, id);
    const config = props.config;
    const names = clusterNames(config);
    const tags = clusterTags(config);
    const durability = config.durability;
    this.config = config;
    this.names = names;

    new S3Backend(this, {
      bucket: names.stateBucket,
      key: names.stateKey,
      region: config.region,
      encrypt: true,
      // The state key of the state stack; without it the backend writes SSE-S3 (AES256).
      kmsKeyId: stateKeyAlias(config.namePrefix),
    });
    // Native S3 locking (Terraform >= 1.10); cdktf 0.21's S3Backend has no typed field.
    this.addOverride("terraform.backend.s3.use_lockfile", true);
    this.addOverride("terraform.required_version", REQUIRED_TERRAFORM_VERSION);

    new AwsProvider(this, "aws", {
      region: config.region,
      // A deploy with another account's credentials stops before touching anything.
      allowedAccountIds: config.accountId ? [config.accountId] : undefined,
      defaultTags: [{ tags }],
    });
    new RandomProvider(this, "random");
    this.accountId = new DataAwsCallerIdentity(this, "account").accountId;
    this.partition = new DataAwsPartition(this, "partition").partition;

    // --- data plane: key, network, security groups, DB, broker, EFS, buckets
    this.key = new ClusterKey(this, "key", {
      resourcePrefix: names.resourcePrefix,
      accountId: this.accountId,
      partition: this.partition,
      region: config.region,
      deletionWindowDays: durability.kmsDeletionWindowDays,
    });
    const kmsKeyArn = this.key.arn;

    this.network = new Network(this, "network", {
      resourcePrefix: names.resourcePrefix,
      region: config.region,
      cidr: config.vpcCidr,
      azCount: config.azCount,
      availabilityZones: config.availabilityZones,
      natPerAz: durability.natPerAz,
      natInstance: durability.natInstance,
      flowLogRetentionDays: config.logRetentionDays,
      kmsKeyArn,
    });

    this.securityGroups = new SecurityGroups(this, "security-groups", {
      resourcePrefix: names.resourcePrefix,
      vpc: this.network.vpc,
      dbEngine: config.database.engine,
      uiAllowedCidrs: config.uiAllowedCidrs,
      https: config.certificateArn !== undefined,
      celery: config.executor === "CeleryExecutor",
      publicLoadBalancer: config.publicLoadBalancer,
    });

    // Created by Terraform, not by EMR, so `destroy` can delete the VPC after DAG_1 ran.
    this.emrSecurityGroups = new EmrSecurityGroups(this, "emr-security-groups", {
      resourcePrefix: names.resourcePrefix,
      vpc: this.network.vpc,
    });

    this.database = new Database(this, "database", {
      resourcePrefix: names.resourcePrefix,
      secretPrefix: names.secretPrefix,
      region: config.region,
      subnets: this.network.privateSubnets,
      securityGroup: this.securityGroups.database,
      kmsKeyArn,
      engine: config.database.engine,
      engineVersion: config.database.engineVersion,
      instanceClass: config.database.instanceClass,
      multiAz: config.database.multiAz,
      allocatedStorageGb: config.database.allocatedStorageGb,
      backupRetentionDays: config.database.backupRetentionDays,
      deletionProtection: durability.deletionProtection,
      finalSnapshot: durability.finalSnapshot,
      secretRecoveryWindowDays: durability.secretRecoveryWindowDays,
      passwordVersion: config.database.passwordVersion,
      logRetentionDays: config.logRetentionDays,
    });

    const redisGroup = this.securityGroups.redis;
    if (redisGroup) {
      this.broker = new Broker(this, "broker", {
        resourcePrefix: names.resourcePrefix,
        secretPrefix: names.secretPrefix,
        subnets: this.network.privateSubnets,
        securityGroup: redisGroup,
        kmsKeyArn,
        nodeType: config.redis.nodeType,
        replicas: config.redis.replicas,
        snapshotRetentionDays: durability.cacheSnapshotRetentionDays,
        authTokenVersion: config.redis.authTokenVersion,
        authTokenUpdateStrategy: config.redis.authTokenUpdateStrategy,
        logRetentionDays: config.logRetentionDays,
        secretRecoveryWindowDays: durability.secretRecoveryWindowDays,
      });
    }

    this.storage = new SharedStorage(this, "storage", {
      resourcePrefix: names.resourcePrefix,
      subnets: this.network.privateSubnets,
      securityGroup: this.securityGroups.efs,
      kmsKeyArn,
      oneZone: config.efs.oneZone,
      // config.ts admits efs.availabilityZone only as one of the pinned availabilityZones.
      oneZoneSubnet: config.efs.availabilityZone
        ? config.availabilityZones?.indexOf(config.efs.availabilityZone)
        : undefined,
    });

    this.buckets = new Buckets(this, "buckets", {
      resourcePrefix: names.resourcePrefix,
      accountId: this.accountId,
      partition: this.partition,
      region: config.region,
      kmsKeyArn,
      logRetentionDays: config.logRetentionDays,
      forceDestroy: durability.forceDestroyBuckets,
    });

    // --- compute plane: secrets, IAM, ALBs, DAG/Spark uploads, SSM settings, node groups,
    // outputs; it reuses the DB/broker secrets and the cluster key.
    this.compute = new ComputePlane(this, "compute", {
      config,
      network: this.network,
      securityGroups: this.securityGroups,
      emrSecurityGroups: this.emrSecurityGroups,
      database: this.database,
      broker: this.broker,
      storage: this.storage,
      buckets: this.buckets,
      key: this.key,
    });

    // --- what the nodes' CloudWatch agent reads (its configuration) and writes (logs)
    this.telemetry = new ClusterTelemetry(this, "telemetry", {
      resourcePrefix: names.resourcePrefix,
      parameterPrefix: names.parameterPrefix,
      nodeRoles: EXECUTOR_ROLES[config.executor],
      logRetentionDays: config.logRetentionDays,
      kmsKeyArn,
    });

    // --- alarms over both planes, to one SNS topic
    const lbs = this.compute.loadBalancers;
    const { ui, executionApi, flower } = ALARMED_TARGET_GROUPS;
    this.alarms = new ClusterAlarms(this, "alarms", {
      resourcePrefix: names.resourcePrefix,
      kmsKeyArn,
      notificationEmail: config.notificationEmail,
      database: this.database.instance,
      broker: this.broker
        ? {
            replicationGroupId: this.broker.replicationGroup.replicationGroupId,
            nodeCount: 1 + config.redis.replicas,
          }
        : undefined,
      loadBalancers: [
        ...(lbs.publicLb && lbs.uiTargetGroup
          ? [
              {
                name: ui.lb,
                loadBalancer: lbs.publicLb,
                targetGroups: { [ui.targetGroup]: lbs.uiTargetGroup },
              },
            ]
          : []),
        ...(lbs.internalLb && lbs.executionApiTargetGroup && lbs.flowerTargetGroup
          ? [
              {
                name: executionApi.lb,
                loadBalancer: lbs.internalLb,
                targetGroups: {
                  [executionApi.targetGroup]: lbs.executionApiTargetGroup,
                  [flower.targetGroup]: lbs.flowerTargetGroup,
                },
              },
            ]
          : []),
      ],
      autoScalingGroups: Object.fromEntries(
        Object.entries(this.compute.nodes.groups).map(([role, group]) => [role, group.autoScalingGroup]),
      ),
      emrMaxRuntimeMinutes: config.emrMaxRuntimeMinutes,
    });

    // --- policy: one aspect for tags, IMDSv2 and encryption defaults over everything above
    Aspects.of(this).add(new ClusterPolicyAspect({ tags, kmsKeyArn }));
  }
}
