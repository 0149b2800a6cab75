/**
 * The compute plane in one construct, so the cluster stack wires it in a few lines and
 * the tests build exactly what the stack builds: e-mail, secrets, IAM, load balancers,
 * artifacts, the settings for nodes, the node groups and the stack outputs.
 *
 * This is the one place where the config turns into props: every construct below takes
 * only the fields it uses, so none of them reads (or needs to be tested with) a config.
 */
import { existsSync } from "node:fs";
import * as path from "node:path";
import type { ITerraformDependable } from "cdktf";
import { Construct } from "constructs";
import { ClusterArtifacts } from "./artifacts";
import { type AirflowConfig, UI_PORT_FORWARD_URL, clusterNames } from "./config";
import {
  ALARMED_TARGET_GROUPS,
  BucketRef,
  EXECUTOR_ROLES,
  HasArn,
  HasId,
  LOG_PREFIXES,
  PropError,
  repoRoot,
  unhealthyTargetsAlarmName,
} from "./contract";
import { ClusterEmail } from "./email";
import { ClusterIam } from "./iam";
import { ClusterLoadBalancers } from "./load-balancer";
import { AirflowNodeGroups } from "./node-group";
import { ComputeOutputs } from "./outputs";
import {
  BrokerEndpoint,
  ClusterSecrets,
  ClusterSettings,
  DatabaseEndpoint,
  ExistingSecret,
  settingsRevision,
} from "./settings";

/** The Spark job DAG_2 runs (spark-jobs/<name>); its URI becomes the `spark_job_uri` variable. */
export const SPARK_SORT_JOB = "sort_customers.py";

/** Properties of {@link ComputePlane}. */
export interface ComputePlaneProps {
  /** The validated deployment config. */
  readonly config: AirflowConfig;
  /** VPC and subnets (the `Network` construct). */
  readonly network: {
    readonly vpc: HasId;
    readonly publicSubnets: readonly HasId[];
    readonly privateSubnets: readonly HasId[];
    /** The public subnets' IGW route: the public ALB waits for it. @default none - no ordering */
    readonly internetRoute?: ITerraformDependable;
  };
  /** Security groups (the `SecurityGroups` construct). */
  readonly securityGroups: {
    /** Absent without the public load balancer (`config.publicLoadBalancer`). */
    readonly albPublic?: HasId;
    /** Absent with LocalExecutor. */
    readonly albInternal?: HasId;
    readonly apiServer: HasId;
    readonly scheduler: HasId;
    /** Absent with LocalExecutor. */
    readonly worker?: HasId;
  };
  /** EMR-managed security groups (the `EmrSecurityGroups` construct) for DAG_1's clusters. */
  readonly emrSecurityGroups: {
    readonly primary: HasId;
    readonly core: HasId;
    readonly serviceAccess: HasId;
  };
  /** Metadata DB (the `Database` construct) and its password secret. */
  readonly database: DatabaseEndpoint & {
    readonly passwordSecret: ExistingSecret["secret"];
    readonly passwordSecretVersion: ExistingSecret["version"];
  };
  /**
   * Celery broker (the `Broker` construct) and its AUTH token secret.
   * @default none - required with CeleryExecutor (the cluster stack builds one exactly then)
   */
  readonly broker?: BrokerEndpoint & {
    readonly authTokenSecret: ExistingSecret["secret"];
    readonly authTokenSecretVersion: ExistingSecret["version"];
  };
  /** EFS (the `SharedStorage` construct); the node groups launch in its client subnets. */
  readonly storage: {
    readonly fileSystem: HasId & HasArn;
    readonly accessPoint: HasId;
    readonly clientSubnets: readonly HasId[];
  };
  /** Buckets (the `Buckets` construct). */
  readonly buckets: {
    readonly logs: BucketRef;
    readonly data: BucketRef;
    readonly artifacts: BucketRef;
    /** SSE-S3 sink that grants ELB log delivery under `alb/`. @default none - no ALB access logs */
    readonly accessLogs?: BucketRef;
    /** The access-log bucket's policy: both ALBs wait for it. @default none - no ordering */
    readonly accessLogsPolicy?: ITerraformDependable;
  };
  /** The cluster's customer-managed KMS key (secrets, SSE-KMS buckets). */
  readonly key: HasArn;
  /**
   * Directory uploaded under `dags/`.
   * @default "<repo>/dags"
   */
  readonly dagsDir?: string;
  /**
   * Directory uploaded under `spark-jobs/<hash>/`.
   * @default "<repo>/spark-jobs"
   */
  readonly sparkJobsDir?: string;
}

/** E-mail, secrets, IAM, load balancers, artifacts, settings, node groups, outputs. */
export class ComputePlane extends Construct {
  /** SES identity and SMTP settings. */
  public readonly email: ClusterEmail;
  /** Contract secrets. */
  public readonly secrets: ClusterSecrets;
  /** Node roles (one per node role), EMR service and EMR EC2 roles. */
  public readonly iam: ClusterIam;
  /** Public (+ internal) ALB. */
  public readonly loadBalancers: ClusterLoadBalancers;
  /**
   * Where users open the UI, and so `[api] base_url`: the public load balancer's URL, or
   * the SSM port-forwarded local address when `config.uiAccess` is "port-forward".
   */
  public readonly uiUrl: string;
  /** Uploaded DAGs and Spark jobs. */
  public readonly artifacts: ClusterArtifacts;
  /** SSM parameters for nodes. */
  public readonly settings: ClusterSettings;
  /** AIRFLOW_SETTINGS_REVISION (Terraform expression). */
  public readonly settingsRevision: string;
  /** Node groups. */
  public readonly nodes: AirflowNodeGroups;

  public constructor(scope: Construct, id: string, props: ComputePlaneProps) {
    super(scope, id);
    const { config } = props;
    const names = clusterNames(config);
    const sgs = props.securityGroups;
    // The Celery-only pieces, all present or all absent; each construct below then takes
    // its optional Celery part, and its type says what LocalExecutor leaves out.
    const celery =
      config.executor === "CeleryExecutor"
        ? {
            broker: required(this, "broker", props.broker, "the Broker construct with CeleryExecutor"),
            albInternal: required(
              this,
              "securityGroups.albInternal",
              sgs.albInternal,
              "a security group with CeleryExecutor",
            ),
            worker: required(
              this,
              "securityGroups.worker",
              sgs.worker,
              "a security group with CeleryExecutor",
            ),
          }
        : undefined;
    const repo = repoRoot();

    this.email = new ClusterEmail(this, "email", {
      resourcePrefix: names.resourcePrefix,
      parameterPrefix: names.parameterPrefix,
      region: config.region,
      notificationEmail: config.notificationEmail,
      backend: config.emailBackend,
      key: props.key,
    });

    const existing: Record<string, ExistingSecret> = {
      "db-password": { secret: props.database.passwordSecret, version: props.database.passwordSecretVersion },
    };
    if (celery) {
      existing["redis-auth-token"] = {
        secret: celery.broker.authTokenSecret,
        version: celery.broker.authTokenSecretVersion,
      };
    }
    this.secrets = new ClusterSecrets(this, "secrets", {
      resourcePrefix: names.resourcePrefix,
      secretPrefix: names.secretPrefix,
      region: config.region,
      executor: config.executor,
      recoveryWindowDays: config.durability.secretRecoveryWindowDays,
      key: props.key,
      existing,
    });

    const { resourcePrefix, parameterPrefix, secretPrefix } = clusterNames(config);
    this.iam = new ClusterIam(this, "iam", {
      resourcePrefix,
      nodeRoles: EXECUTOR_ROLES[config.executor],
      parameterPrefix,
      secretPrefix,
      region: config.region,
      logBucket: props.buckets.logs,
      artifactsBucket: props.buckets.artifacts,
      dataBucket: props.buckets.data,
      fileSystem: props.storage.fileSystem,
      secretsKey: props.key,
      bucketKey: props.key,
      sesIdentity: this.email.identity,
    });

    this.loadBalancers = new ClusterLoadBalancers(this, "load-balancers", {
      resourcePrefix: names.resourcePrefix,
      env: config.env,
      deletionProtection: config.durability.deletionProtection,
      vpc: props.network.vpc,
      publicSubnets: props.network.publicSubnets,
      publicLoadBalancer: config.publicLoadBalancer,
      publicSecurityGroup: sgs.albPublic,
      internetRoute: props.network.internetRoute,
      certificateArn: config.certificateArn,
      uiDomainName: config.uiDomainName,
      internal: celery
        ? { securityGroup: celery.albInternal, subnets: props.network.privateSubnets }
        : undefined,
      accessLogs: props.buckets.accessLogs
        ? {
            bucket: props.buckets.accessLogs,
            prefix: LOG_PREFIXES.alb,
            policy: props.buckets.accessLogsPolicy,
          }
        : undefined,
    });

    this.uiUrl =
      config.uiAccess === "port-forward"
        ? UI_PORT_FORWARD_URL
        : required(this, "loadBalancers.uiUrl", this.loadBalancers.uiUrl, "the public load balancer's URL");

    const sparkJobsDir = props.sparkJobsDir ?? path.join(repo, "spark-jobs");
    this.artifacts = new ClusterArtifacts(this, "artifacts", {
      bucket: props.buckets.artifacts,
      dagsDir: props.dagsDir ?? path.join(repo, "dags"),
      sparkJobsDir,
      // The pipeline's job by name, so a helper module added next to it cannot make
      // the choice ambiguous; other folders (tests) fall back to the only script.
      sparkJob: existsSync(path.join(sparkJobsDir, SPARK_SORT_JOB)) ? SPARK_SORT_JOB : undefined,
      kmsKey: props.key,
    });

    this.settings = new ClusterSettings(this, "settings", {
      parameterPrefix: names.parameterPrefix,
      database: props.database,
      broker: celery?.broker,
      emailBackend: config.emailBackend,
      alertEmail: config.notificationEmail,
      scheduler: config.scheduler,
      parallelism: config.parallelism,
      workerConcurrency: config.workerConcurrency,
      allowTriggerInFuture: config.allowTriggerInFuture,
      fileSystem: props.storage.fileSystem,
      accessPoint: props.storage.accessPoint,
      logBucket: props.buckets.logs,
      dataBucket: props.buckets.data,
      artifactsBucket: props.buckets.artifacts,
      dagsUri: this.artifacts.dagsUri,
      sparkJobUri: this.artifacts.sparkJobUri,
      baseUrl: this.uiUrl,
      executionApiUrl: this.loadBalancers.executionApiUrl,
      fromEmail: this.email.fromEmail,
      smtpHost: this.email.smtpHost,
      emrClusterTag: names.resourcePrefix,
      emrServiceRole: this.iam.emrServiceRole,
      emrInstanceProfile: this.iam.emrInstanceProfile,
      // EMR runs in the first private subnet (single-AZ cluster, like the seed).
      emrSubnet: props.network.privateSubnets[0],
      emrSecurityGroups: props.emrSecurityGroups,
    });
    this.settingsRevision = settingsRevision(this.settings, this.secrets);

    const types = config.instanceTypes;
    const { ui, executionApi } = ALARMED_TARGET_GROUPS;
    this.nodes = new AirflowNodeGroups(this, "nodes", {
      resourcePrefix: names.resourcePrefix,
      parameterPrefix: names.parameterPrefix,
      secretPrefix: names.secretPrefix,
      region: config.region,
      tags: config.tags,
      image: { architecture: config.architecture, ...config.ami },
      layout: celery
        ? {
            executor: "CeleryExecutor",
            apiServer: {
              instanceType: types.apiServer,
              securityGroups: [sgs.apiServer],
              count: config.durability.apiServerCount,
            },
            scheduler: {
              instanceType: types.scheduler,
              securityGroups: [sgs.scheduler],
              count: config.schedulerCount,
              useRowLevelLocking: config.scheduler.useRowLevelLocking,
            },
            worker: {
              instanceType: types.worker,
              securityGroups: [celery.worker],
              min: config.workers.min,
              max: config.workers.max,
              spot: config.workers.spot,
            },
          }
        : {
            executor: "LocalExecutor",
            // One node does everything: it needs both the api-server's and the scheduler's paths.
            standalone: {
              instanceType: types.standalone,
              securityGroups: [sgs.apiServer, sgs.scheduler],
              useRowLevelLocking: config.scheduler.useRowLevelLocking,
            },
          },
      // Every node mounts EFS: only where a mount target is (one AZ with One Zone EFS).
      subnets: props.storage.clientSubnets,
      instanceProfiles: this.iam.nodeInstanceProfiles,
      loadBalancers: this.loadBalancers,
      settingsRevision: this.settingsRevision,
      // the unhealthy-target alarms cluster-stack.ts sets on the UI and Execution API target groups
      apiServerRollbackAlarmNames: [
        ...(this.loadBalancers.uiTargetGroup
          ? [unhealthyTargetsAlarmName(names.resourcePrefix, ui.lb, ui.targetGroup)]
          : []),
        ...(celery
          ? [unhealthyTargetsAlarmName(names.resourcePrefix, executionApi.lb, executionApi.targetGroup)]
          : []),
      ],
      detailedMonitoring: config.durability.detailedMonitoring,
      rootVolumeGb: config.rootVolumeGb,
    });

    new ComputeOutputs(this, "outputs", {
      parameterPrefix: names.parameterPrefix,
      uiUrl: this.uiUrl,
      uiAccess: config.uiAccess,
      loadBalancers: this.loadBalancers,
      buckets: props.buckets,
      iam: this.iam,
      secretArnPrefix: this.secrets.arnPrefix,
      artifacts: this.artifacts,
    });
  }
}

/** A prop the config needs, or one PropError line naming it. */
function required<T>(scope: Construct, field: string, value: T | undefined, what: string): T {
  if (value === undefined) throw new PropError(scope, field, undefined, what);
  return value;
}
