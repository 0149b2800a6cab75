/**
 * IAM for the cluster: one role + instance profile per node role (api-server, scheduler,
 * worker; or standalone), each holding only what that role does, scoped to this cluster's
 * parameters, its own secrets, buckets, file system and EMR clusters; the EMR service
 * role and the EMR EC2 role + instance profile.
 *
 * Policy statements come from small pure functions, one per AWS concern, that take the
 * ARNs and prefixes they scope to and nothing else (no construct, no config). A role's
 * policy is the concatenation of the concerns {@link NODE_ROLE_ACCESS} gives it, so each
 * concern can be tested on its own and each role as its composition.
 */
import { DataAwsCallerIdentity } from "@cdktf/provider-aws/lib/data-aws-caller-identity";
import {
  DataAwsIamPolicyDocument,
  DataAwsIamPolicyDocumentStatement,
} from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { DataAwsPartition } from "@cdktf/provider-aws/lib/data-aws-partition";
import { IamInstanceProfile } from "@cdktf/provider-aws/lib/iam-instance-profile";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy";
import { IamRolePolicyAttachment } from "@cdktf/provider-aws/lib/iam-role-policy-attachment";
import { Construct } from "constructs";
import {
  BucketRef,
  EMR_CLUSTER_TAG,
  EMR_MANAGED_TAG,
  HasArn,
  LOG_PREFIXES,
  NodeRole,
  PropError,
  airflowMetricsNamespace,
  assertKeyPrefix,
  iamName,
  componentLogGroupName,
  logComponents,
  nodeGroupName,
  roleSecrets,
} from "./contract";

/** A list of IAM policy statements, as a policy document takes them. */
export type Statements = DataAwsIamPolicyDocumentStatement[];

/** Where this cluster's ARNs live; values may be Terraform expressions. */
export interface AwsLocation {
  /** `aws`, `aws-cn` or `aws-us-gov`. */
  readonly partition: string;
  /** Region of the cluster. */
  readonly region: string;
  /** Account id of the cluster. */
  readonly account: string;
}

/** Objects under `keyPrefix` (a '/'-terminated prefix, or "" for the whole bucket). */
function objectsArn(bucketArn: string, keyPrefix = ""): string {
  return `${bucketArn}/${keyPrefix}*`;
}

/**
 * Trust policy of a role that `service` assumes. With `sourceAccount`, only that
 * account's use of the service may assume it: the confused-deputy guard for services
 * that act on a caller's behalf (EMR). EC2 instance roles need none.
 */
export function trustStatements(service: string, sourceAccount?: string): Statements {
  return [
    {
      actions: ["sts:AssumeRole"],
      principals: [{ type: "Service", identifiers: [service] }],
      ...(sourceAccount !== undefined && {
        condition: [{ test: "StringEquals", variable: "aws:SourceAccount", values: [sourceAccount] }],
      }),
    },
  ];
}

/**
 * iam:PassRole on exactly one role, and only to `service`: whoever starts an EMR cluster
 * hands it roles, and the condition stops the same permission from putting the role on
 * anything else.
 */
export function passRoleStatement(
  sid: string,
  roleArn: string,
  service: string,
): DataAwsIamPolicyDocumentStatement {
  return {
    sid,
    actions: ["iam:PassRole"],
    resources: [roleArn],
    condition: [{ test: "StringLike", variable: "iam:PassedToService", values: [`${service}*`] }],
  };
}

/** Inputs of {@link settingsReadStatements}. */
export interface SettingsReadInputs {
  /** Where the parameters and secrets live. */
  readonly aws: AwsLocation;
  /** SSM path of this cluster's parameters, `/<namePrefix>/<env>`. */
  readonly parameterPrefix: string;
  /** Name prefix of this cluster's secrets, `<namePrefix>/<env>`. */
  readonly secretPrefix: string;
  /** The contract secret keys this role reads (`roleSecrets`); none gives no secret grant. */
  readonly secretKeys: readonly string[];
  /** CMK of the secrets and SecureString parameters. */
  readonly secretsKeyArn: string;
}

/**
 * Nodes bootstrap from SSM parameters and Secrets Manager secrets: read this cluster's
 * path (every role needs its settings, and tasks read Variables and Connections under
 * it), exactly the secrets of the role, and decrypt the CMK only through those two
 * services, so the key opens nothing else.
 *
 * A secret's ARN ends in `-` and six random characters, hence `<key>-??????`: `<key>*`
 * would also match `<key>-old` or any longer name sharing the prefix.
 */
export function settingsReadStatements(i: SettingsReadInputs): Statements {
  const { partition, region, account } = i.aws;
  for (const key of i.secretKeys) {
    if (!/^[A-Za-z0-9_.-]+$/.test(key)) {
      throw new PropError(
        "settingsReadStatements",
        "secretKeys",
        key,
        "secret keys of letters, digits, '_', '.', '-'",
      );
    }
  }
  const parameterArn = `arn:${partition}:ssm:${region}:${account}:parameter${i.parameterPrefix}`;
  const secretArn = (key: string): string =>
    `arn:${partition}:secretsmanager:${region}:${account}:secret:${i.secretPrefix}/${key}-??????`;
  return [
    {
      sid: "ReadClusterParameters",
      actions: ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
      // The path itself (GetParametersByPath) and everything under it - no other cluster's.
      resources: [parameterArn, `${parameterArn}/*`],
    },
    ...(i.secretKeys.length
      ? [
          {
            sid: "ReadRoleSecrets",
            actions: ["secretsmanager:GetSecretValue"],
            resources: i.secretKeys.map(secretArn),
          },
        ]
      : []),
    {
      sid: "DecryptSecretsViaService",
      actions: ["kms:Decrypt"],
      resources: [i.secretsKeyArn],
      condition: [
        {
          test: "StringEquals",
          variable: "kms:ViaService",
          values: [`secretsmanager.${region}.amazonaws.com`, `ssm.${region}.amazonaws.com`],
        },
      ],
    },
  ];
}

/**
 * Session Manager (operators' shell and port forwarding; there is no SSH) without the
 * AmazonSSMManagedInstanceCore managed policy, whose `ssm:GetParameter*` on `*` would let
 * every task read every parameter of the account. This is AWS's minimal Session Manager
 * policy: the agent registers its own instance and opens its message channels (the
 * `ssmmessages` actions have no resource type). Run Command, State Manager and Inventory
 * are not granted; the agent logs AccessDenied for them and sessions still work.
 */
export function sessionManagerStatements(aws: AwsLocation): Statements {
  return [
    {
      sid: "RegisterManagedInstance",
      actions: ["ssm:UpdateInstanceInformation"],
      resources: [`arn:${aws.partition}:ec2:${aws.region}:${aws.account}:instance/*`],
    },
    {
      sid: "OpenSessionChannels",
      actions: [
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
      ],
      resources: ["*"],
    },
  ];
}

/** Inputs of {@link remoteLogStatements}. */
export interface RemoteLogInputs {
  /** Log bucket. */
  readonly logBucketArn: string;
  /** Key prefix of remote task logs in the log bucket, no slashes at either end. */
  readonly remoteLogPrefix: string;
  /** Whether the role uploads logs (it runs tasks or triggers) or only shows them (the UI). */
  readonly write: boolean;
}

/**
 * Remote task logs, under their prefix only (the log bucket also holds EMR and
 * load-balancer logs, which nodes have no business with). Airflow's S3 handler lists
 * the task's prefix and reads the object back before it writes, because it appends;
 * the UI only lists and reads.
 */
export function remoteLogStatements(i: RemoteLogInputs): Statements {
  return [
    {
      sid: "ListRemoteLogPrefix",
      actions: ["s3:ListBucket"],
      resources: [i.logBucketArn],
      condition: [{ test: "StringLike", variable: "s3:prefix", values: [`${i.remoteLogPrefix}/*`] }],
    },
    {
      sid: i.write ? "ReadWriteRemoteLogs" : "ReadRemoteLogs",
      actions: i.write ? ["s3:GetObject", "s3:PutObject"] : ["s3:GetObject"],
      resources: [objectsArn(i.logBucketArn, `${i.remoteLogPrefix}/`)],
    },
  ];
}

/** The artifacts bucket (DAGs, Spark jobs), read-only: the DAG sync lists and copies it. */
export function artifactsReadStatements(artifactsBucketArn: string): Statements {
  return [
    {
      sid: "ListArtifacts",
      actions: ["s3:ListBucket", "s3:GetBucketLocation"],
      resources: [artifactsBucketArn],
    },
    { sid: "ReadArtifacts", actions: ["s3:GetObject"], resources: [objectsArn(artifactsBucketArn)] },
  ];
}

/** The data bucket the DAGs' tasks read and write. */
export function dataStatements(dataBucketArn: string): Statements {
  return [
    { sid: "ListData", actions: ["s3:ListBucket", "s3:GetBucketLocation"], resources: [dataBucketArn] },
    {
      sid: "ReadWriteData",
      actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
      resources: [objectsArn(dataBucketArn)],
    },
  ];
}

/** Inputs of {@link emrInstanceS3Statements}. */
export interface EmrInstanceS3Inputs {
  /** Data bucket. */
  readonly dataBucketArn: string;
  /** Artifacts bucket (the Spark job). */
  readonly artifactsBucketArn: string;
  /** Log bucket. */
  readonly logBucketArn: string;
  /** Key prefix of EMR logs in the log bucket, no slashes at either end. */
  readonly emrLogPrefix: string;
}

/**
 * What the EMR cluster's instances do in S3: the Spark job reads the artifacts and
 * reads/writes the data; EMR ships its logs under its own prefix of the log bucket.
 */
export function emrInstanceS3Statements(i: EmrInstanceS3Inputs): Statements {
  return [
    {
      sid: "ListBuckets",
      actions: ["s3:ListBucket", "s3:GetBucketLocation"],
      resources: [i.dataBucketArn, i.artifactsBucketArn, i.logBucketArn],
    },
    {
      sid: "ReadWriteData",
      actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
      resources: [objectsArn(i.dataBucketArn)],
    },
    { sid: "ReadArtifacts", actions: ["s3:GetObject"], resources: [objectsArn(i.artifactsBucketArn)] },
    {
      sid: "WriteEmrLogs",
      actions: ["s3:PutObject", "s3:GetObject"],
      resources: [objectsArn(i.logBucketArn, `${i.emrLogPrefix}/`)],
    },
  ];
}

/**
 * With SSE-KMS buckets under a customer key, reading objects needs kms:Decrypt and
 * writing them kms:GenerateDataKey; only through S3, so the grant cannot decrypt anything
 * else. None without a key.
 */
export function bucketKeyStatements(region: string, bucketKeyArn?: string, write = true): Statements {
  if (bucketKeyArn === undefined) return [];
  return [
    {
      sid: "UseBucketKeyThroughS3",
      actions: write ? ["kms:Decrypt", "kms:GenerateDataKey"] : ["kms:Decrypt"],
      resources: [bucketKeyArn],
      condition: [
        { test: "StringEquals", variable: "kms:ViaService", values: [`s3.${region}.amazonaws.com`] },
      ],
    },
  ];
}

/**
 * DAGs and plugins live on EFS, mounted with IAM authorisation (`mount -t efs -o
 * tls,iam`): mount this one file system, never with ClientRootAccess, and write it only
 * where `write` (the nodes that sync DAGs into it). `plugins/` is code the api-server and
 * schedulers load, so a node that only mounts cannot plant any.
 */
export function efsStatements(fileSystemArn: string, write: boolean): Statements {
  return [
    {
      sid: "MountFileSystem",
      actions: write
        ? ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
        : ["elasticfilesystem:ClientMount"],
      resources: [fileSystemArn],
    },
  ];
}

/** Inputs of {@link emrWatchStatements}. */
export interface EmrWatchInputs {
  /** Where the EMR clusters run. */
  readonly aws: AwsLocation;
  /** `<namePrefix>-<env>`: the value of this cluster's {@link EMR_CLUSTER_TAG} on its EMR clusters. */
  readonly clusterTag: string;
}

/** ARN of EMR clusters matching `idPattern` (`*` at create time, `j-*` for existing ones). */
function emrClusterArn(aws: AwsLocation, idPattern: string): string {
  return `arn:${aws.partition}:elasticmapreduce:${aws.region}:${aws.account}:cluster/${idPattern}`;
}

/** EMR clusters of this Airflow cluster: `cluster/*` whose {@link EMR_CLUSTER_TAG} is ours. */
function ownEmrClusters(i: EmrWatchInputs): DataAwsIamPolicyDocumentStatement {
  return {
    resources: [emrClusterArn(i.aws, "*")],
    condition: [
      { test: "StringEquals", variable: `aws:ResourceTag/${EMR_CLUSTER_TAG}`, values: [i.clusterTag] },
    ],
  };
}

/**
 * What the EMR sensors poll, on this cluster's EMR clusters only: the deferrable step
 * sensor's trigger runs in the triggerer, so the scheduler nodes need these and nothing
 * that changes a cluster.
 */
export function emrWatchStatements(i: EmrWatchInputs): Statements {
  return [
    {
      sid: "WatchOwnEmrClusters",
      actions: [
        "elasticmapreduce:DescribeCluster",
        "elasticmapreduce:DescribeStep",
        "elasticmapreduce:ListSteps",
        "elasticmapreduce:ListInstanceGroups",
      ],
      ...ownEmrClusters(i),
    },
  ];
}

/** Inputs of {@link emrControlStatements}. */
export interface EmrControlInputs extends EmrWatchInputs {
  /** The EMR service role (`ServiceRole` of RunJobFlow). */
  readonly serviceRoleArn: string;
  /** The EMR EC2 role (behind `JobFlowRole` of RunJobFlow). */
  readonly ec2RoleArn: string;
}

/**
 * DAG_1 creates and terminates EMR clusters, DAG_2 adds steps: only clusters tagged
 * {@link EMR_CLUSTER_TAG} = this Airflow cluster, and only with this cluster's two EMR
 * roles. The managed-policy tag cannot scope anything (it marks every v2 cluster of the
 * account); it is still required, because the EMR v2 service policy needs it.
 *
 * - RunJobFlow has no resource: the request must carry our tag, and only `airflow:*` and
 *   the managed-policy tag keys.
 * - Tagging at create time is an AddTags authorised on the literal `cluster/*` (the
 *   cluster has no id yet), with the same conditions.
 * - Everything else requires our tag on the cluster itself.
 * - An explicit deny stops tagging, untagging or setting auto-termination on any existing
 *   cluster without our tag: putting our tag on someone else's cluster would make it
 *   ours. It names `cluster/j-*`, which never matches the create-time `cluster/*`.
 * - No ListClusters (it has no resource scoping): the DAGs pass cluster ids, never names.
 * - PutAutoTerminationPolicy (DAG_1 sets an idle timeout at create) is allowed on
 *   `cluster/*` and denied by the same statement on foreign clusters, so it works
 *   whether or not EMR checks it at create time, when the cluster has no tags yet.
 */
export function emrControlStatements(i: EmrControlInputs): Statements {
  const own = ownEmrClusters(i);
  const clusterArns = [emrClusterArn(i.aws, "*")];
  const requestTags = [
    { test: "StringEquals", variable: `aws:RequestTag/${EMR_CLUSTER_TAG}`, values: [i.clusterTag] },
    {
      test: "StringEquals",
      variable: `aws:RequestTag/${EMR_MANAGED_TAG.key}`,
      values: [EMR_MANAGED_TAG.value],
    },
    { test: "ForAllValues:StringLike", variable: "aws:TagKeys", values: ["airflow:*", EMR_MANAGED_TAG.key] },
  ];
  return [
    {
      sid: "CreateOwnEmrClusters",
      actions: ["elasticmapreduce:RunJobFlow"],
      resources: ["*"],
      condition: requestTags,
    },
    {
      sid: "TagOwnEmrClustersOnCreate",
      actions: ["elasticmapreduce:AddTags"],
      resources: clusterArns,
      condition: requestTags,
    },
    {
      sid: "ControlOwnEmrClusters",
      actions: [
        "elasticmapreduce:AddJobFlowSteps",
        "elasticmapreduce:CancelSteps",
        "elasticmapreduce:TerminateJobFlows",
        "elasticmapreduce:SetTerminationProtection",
      ],
      ...own,
    },
    {
      sid: "SetAutoTermination",
      actions: ["elasticmapreduce:PutAutoTerminationPolicy"],
      resources: clusterArns,
    },
    {
      sid: "DenyForeignEmrClusterTagging",
      effect: "Deny",
      actions: [
        "elasticmapreduce:AddTags",
        "elasticmapreduce:RemoveTags",
        "elasticmapreduce:PutAutoTerminationPolicy",
      ],
      resources: [emrClusterArn(i.aws, "j-*")],
      condition: [
        { test: "StringNotEquals", variable: `aws:ResourceTag/${EMR_CLUSTER_TAG}`, values: [i.clusterTag] },
      ],
    },
    passRoleStatement("PassEmrServiceRole", i.serviceRoleArn, "elasticmapreduce.amazonaws.com"),
    passRoleStatement("PassEmrEc2Role", i.ec2RoleArn, "ec2.amazonaws.com"),
  ];
}

/**
 * ARN of one node role's Auto Scaling group ({@link nodeGroupName}), for actions a node
 * takes on its own group only. The group id part is unknown before the group exists,
 * hence `*` there.
 */
export function ownGroupArn(aws: AwsLocation, resourcePrefix: string, role: NodeRole): string {
  const { partition, region, account } = aws;
  const group = nodeGroupName(resourcePrefix, role);
  return `arn:${partition}:autoscaling:${region}:${account}:autoScalingGroup:*:autoScalingGroupName/${group}`;
}

/** Inputs of {@link workerDrainStatements}. */
export interface WorkerDrainInputs {
  /** Where the Auto Scaling groups live. */
  readonly aws: AwsLocation;
  /** `<namePrefix>-<env>`: the worker group is `<resourcePrefix>-worker`. */
  readonly resourcePrefix: string;
}

/**
 * Worker scale-in, on the worker group only: the node protects itself from scale-in while it
 * runs tasks (airflow_node/worker_protect.py). It completes its termination lifecycle hook
 * after a warm Celery shutdown with the grant every node has on its own group
 * ({@link nodeHealthStatements}), finding the group name in the instance metadata tags.
 */
export function workerDrainStatements(i: WorkerDrainInputs): Statements {
  return [
    {
      sid: "ProtectWhileBusy",
      actions: ["autoscaling:SetInstanceProtection"],
      resources: [ownGroupArn(i.aws, i.resourcePrefix, "worker")],
    },
  ];
}

/**
 * Self-healing, for every node: complete its group's launch lifecycle hook (the bootstrap:
 * CONTINUE once healthy, ABANDON on failure) and mark itself Unhealthy (airflow-health.timer),
 * on its own role's group only, so one node cannot stop or replace another role's nodes.
 */
export function nodeHealthStatements(aws: AwsLocation, resourcePrefix: string, role: NodeRole): Statements {
  return [
    {
      sid: "CompleteOwnLaunchAndReportOwnHealth",
      actions: ["autoscaling:CompleteLifecycleAction", "autoscaling:SetInstanceHealth"],
      resources: [ownGroupArn(aws, resourcePrefix, role)],
    },
  ];
}

/**
 * DAG e-mail goes through SES with the instance role: send only as the cluster's
 * verified identity. None without an identity (no notification e-mail configured).
 */
export function sesStatements(identityArn?: string): Statements {
  if (identityArn === undefined) return [];
  return [
    {
      sid: "SendMailAsIdentity",
      actions: ["ses:SendRawEmail", "ses:SendEmail"],
      resources: [identityArn],
    },
  ];
}

/** Inputs of {@link telemetryStatements}. */
export interface TelemetryInputs {
  /** Where the log groups live. */
  readonly aws: AwsLocation;
  /** The node role: it writes to its own components' log groups only. */
  readonly role: NodeRole;
  /** `/<namePrefix>/<env>`: the log groups' prefix. */
  readonly parameterPrefix: string;
  /** `<namePrefix>-<env>`: the metrics namespace. */
  readonly resourcePrefix: string;
}

/**
 * The CloudWatch agent (modules/telemetry.ts): ship the role's own component logs into
 * their existing groups (no CreateLogGroup: Terraform owns them, with retention and key),
 * and put metrics into the cluster's Airflow namespace only. The agent reads its
 * configuration parameter through the cluster path grant of {@link settingsReadStatements}.
 * A worker runs DAG authors' code, so it can neither forge a scheduler's log stream nor
 * write metrics into another namespace. PutMetricData has no resource type, hence "*"
 * narrowed by the namespace condition.
 */
export function telemetryStatements(i: TelemetryInputs): Statements {
  const { partition, region, account } = i.aws;
  const groups = logComponents(i.role).map(
    (c) =>
      `arn:${partition}:logs:${region}:${account}:log-group:${componentLogGroupName(i.parameterPrefix, c)}`,
  );
  return [
    {
      sid: "ShipOwnComponentLogs",
      actions: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
      // the group itself (DescribeLogStreams) and its streams
      resources: groups.flatMap((g) => [g, `${g}:*`]),
    },
    {
      sid: "PutAirflowMetrics",
      actions: ["cloudwatch:PutMetricData"],
      resources: ["*"],
      condition: [
        {
          test: "StringEquals",
          variable: "cloudwatch:namespace",
          values: [airflowMetricsNamespace(i.resourcePrefix)],
        },
      ],
    },
  ];
}

/** What one node role may do, beyond reading its settings and secrets and Session Manager. */
export interface NodeRoleAccess {
  /** Remote task logs: the UI only reads them; nodes that run tasks or triggers also write. */
  readonly remoteLogs: "read" | "read-write";
  /** Read the artifacts bucket (the DAG sync, and tasks). */
  readonly artifacts: boolean;
  /** Read and write the data bucket (tasks). */
  readonly data: boolean;
  /** Write EFS (the DAG sync); every node mounts it. */
  readonly efsWrite: boolean;
  /** EMR: poll this cluster's EMR clusters (triggers), or also create, step and terminate them (tasks). */
  readonly emr: "none" | "watch" | "control";
  /** Complete its own termination lifecycle hook after draining (Celery workers). */
  readonly drain: boolean;
  /** Send DAG e-mail through SES (tasks and callbacks), when an identity exists. */
  readonly mail: boolean;
}

/**
 * Each node role's access, from what it runs (config/settings-contract.json `roles`):
 * - api-server (+ Flower): the UI and the Execution API; it shows task logs and runs no
 *   DAG code, so it reads logs and nothing else.
 * - scheduler: scheduler, dag-processor, triggerer and the DAG sync timer. It syncs DAGs
 *   from the artifacts bucket onto EFS, uploads trigger logs, polls EMR for deferred
 *   sensors and sends callback e-mail. Tasks never run here, so there is no data access
 *   (a deferrable S3 sensor would need data read here).
 * - worker: runs the tasks: data, artifacts, logs, EMR control, e-mail, and the drain.
 * - standalone (LocalExecutor): everything but the drain; it holds every secret anyway.
 */
export const NODE_ROLE_ACCESS: Readonly<Record<NodeRole, NodeRoleAccess>> = {
  "api-server": {
    remoteLogs: "read",
    artifacts: false,
    data: false,
    efsWrite: false,
    emr: "none",
    drain: false,
    mail: false,
  },
  scheduler: {
    remoteLogs: "read-write",
    artifacts: true,
    data: false,
    efsWrite: true,
    emr: "watch",
    drain: false,
    mail: true,
  },
  worker: {
    remoteLogs: "read-write",
    artifacts: true,
    data: true,
    efsWrite: false,
    emr: "control",
    drain: true,
    mail: true,
  },
  standalone: {
    remoteLogs: "read-write",
    artifacts: true,
    data: true,
    efsWrite: true,
    emr: "control",
    drain: false,
    mail: true,
  },
};

/** Inputs of {@link nodeRoleStatements}: this cluster's ARNs and prefixes. */
export interface NodeRoleInputs {
  /** Where the cluster lives. */
  readonly aws: AwsLocation;
  /** `<namePrefix>-<env>`: the EMR cluster tag value and the worker groups' name prefix. */
  readonly resourcePrefix: string;
  /** SSM path of this cluster's parameters. */
  readonly parameterPrefix: string;
  /** Name prefix of this cluster's secrets. */
  readonly secretPrefix: string;
  /** CMK of the secrets and SecureString parameters. */
  readonly secretsKeyArn: string;
  /** Log bucket. */
  readonly logBucketArn: string;
  /** Key prefix of remote task logs. */
  readonly remoteLogPrefix: string;
  /** Artifacts bucket. */
  readonly artifactsBucketArn: string;
  /** Data bucket. */
  readonly dataBucketArn: string;
  /** CMK of SSE-KMS buckets, if any. */
  readonly bucketKeyArn?: string;
  /** EFS file system. */
  readonly fileSystemArn: string;
  /** EMR service role. */
  readonly emrServiceRoleArn: string;
  /** EMR EC2 role. */
  readonly emrEc2RoleArn: string;
  /** SES identity, if DAG e-mail goes through SES. */
  readonly sesIdentityArn?: string;
}

/**
 * The policy of one node role: Session Manager, its settings and own secrets
 * (`roleSecrets`), then the concerns {@link NODE_ROLE_ACCESS} gives it, in this order, then
 * the CloudWatch agent's logs and metrics.
 */
export function nodeRoleStatements(role: NodeRole, i: NodeRoleInputs): Statements {
  const access = NODE_ROLE_ACCESS[role];
  if (access === undefined) {
    throw new PropError("nodeRoleStatements", "role", role, Object.keys(NODE_ROLE_ACCESS).join(", "));
  }
  const writesS3 = access.remoteLogs === "read-write" || access.data;
  const emr = { aws: i.aws, clusterTag: i.resourcePrefix };
  return [
    ...sessionManagerStatements(i.aws),
    ...settingsReadStatements({
      aws: i.aws,
      parameterPrefix: i.parameterPrefix,
      secretPrefix: i.secretPrefix,
      secretKeys: roleSecrets(role),
      secretsKeyArn: i.secretsKeyArn,
    }),
    ...remoteLogStatements({
      logBucketArn: i.logBucketArn,
      remoteLogPrefix: i.remoteLogPrefix,
      write: access.remoteLogs === "read-write",
    }),
    ...(access.artifacts ? artifactsReadStatements(i.artifactsBucketArn) : []),
    ...(access.data ? dataStatements(i.dataBucketArn) : []),
    ...bucketKeyStatements(i.aws.region, i.bucketKeyArn, writesS3),
    ...efsStatements(i.fileSystemArn, access.efsWrite),
    ...(access.emr === "none" ? [] : emrWatchStatements(emr)),
    ...(access.emr === "control"
      ? emrControlStatements({ ...emr, serviceRoleArn: i.emrServiceRoleArn, ec2RoleArn: i.emrEc2RoleArn })
      : []),
    ...(access.drain ? workerDrainStatements({ aws: i.aws, resourcePrefix: i.resourcePrefix }) : []),
    ...nodeHealthStatements(i.aws, i.resourcePrefix, role),
    ...(access.mail ? sesStatements(i.sesIdentityArn) : []),
    ...telemetryStatements({
      aws: i.aws,
      role,
      parameterPrefix: i.parameterPrefix,
      resourcePrefix: i.resourcePrefix,
    }),
  ];
}

/** Properties of {@link ClusterIam}. */
export interface ClusterIamProps {
  /** `<namePrefix>-<env>`: role and profile names (with the region), the EMR cluster tag value, the worker groups the drain may complete. */
  readonly resourcePrefix: string;
  /** The node roles of the executor (`EXECUTOR_ROLES`): one IAM role and instance profile each. */
  readonly nodeRoles: readonly NodeRole[];
  /** SSM path of this cluster's parameters, `/<namePrefix>/<env>`. */
  readonly parameterPrefix: string;
  /** Name prefix of this cluster's Secrets Manager secrets, `<namePrefix>/<env>`. */
  readonly secretPrefix: string;
  /** Region of the cluster (ARNs, kms:ViaService conditions and the global IAM names). */
  readonly region: string;
  /** Remote-log bucket (task logs and EMR logs). */
  readonly logBucket: BucketRef;
  /**
   * Key prefix of remote task logs in the log bucket, no slashes at either end.
   * @default LOG_PREFIXES.remote ("airflow-logs")
   */
  readonly remoteLogPrefix?: string;
  /**
   * Key prefix of EMR logs in the log bucket, no slashes at either end.
   * @default LOG_PREFIXES.emr ("emr-logs")
   */
  readonly emrLogPrefix?: string;
  /** Artifacts bucket (DAGs, Spark jobs): read-only for nodes and EMR. */
  readonly artifactsBucket: BucketRef;
  /** Data bucket: read/write for the nodes that run tasks, and EMR. */
  readonly dataBucket: BucketRef;
  /** EFS file system nodes mount with IAM authorisation. */
  readonly fileSystem: HasArn;
  /** CMK of the Secrets Manager secrets. */
  readonly secretsKey: HasArn;
  /**
   * CMK that encrypts the buckets, when they use SSE-KMS with a customer key.
   * @default none - buckets use SSE-S3 or the AWS-managed key
   */
  readonly bucketKey?: HasArn;
  /**
   * SES identity nodes may send as.
   * @default none - no ses:Send* permission
   */
  readonly sesIdentity?: HasArn;
}

/** Each node role's purpose, which its IAM role's description states. */
const ROLE_PURPOSE: Readonly<Record<NodeRole, string>> = {
  "api-server": "Airflow api-server/Flower nodes: settings, own secrets, task logs read-only",
  scheduler: "Airflow scheduler nodes: settings, own secrets, DAG sync to EFS, logs, EMR polling",
  worker: "Airflow Celery workers: settings, own secrets, data, logs, EMR control of own clusters, drain",
  standalone: "Airflow standalone node (LocalExecutor): every component and its tasks",
};

/** The node roles, EMR service role and EMR EC2 role of one cluster. */
export class ClusterIam extends Construct {
  /** IAM role per node role of the executor. */
  public readonly nodeRoles: Readonly<Partial<Record<NodeRole, IamRole>>>;
  /** Instance profile per node role of the executor. */
  public readonly nodeInstanceProfiles: Readonly<Partial<Record<NodeRole, IamInstanceProfile>>>;
  /** EMR service role (`ServiceRole` of RunJobFlow). */
  public readonly emrServiceRole: IamRole;
  /** Role of the EMR cluster's EC2 instances. */
  public readonly emrEc2Role: IamRole;
  /** Instance profile of the EMR cluster (`JobFlowRole` of RunJobFlow). */
  public readonly emrInstanceProfile: IamInstanceProfile;

  public constructor(scope: Construct, id: string, props: ClusterIamProps) {
    super(scope, id);
    const { resourcePrefix: prefix, region } = props;
    const remoteLogPrefix = props.remoteLogPrefix ?? LOG_PREFIXES.remote;
    const emrLogPrefix = props.emrLogPrefix ?? LOG_PREFIXES.emr;
    assertKeyPrefix(this, "remoteLogPrefix", remoteLogPrefix);
    assertKeyPrefix(this, "emrLogPrefix", emrLogPrefix);
    // An empty or '/'-ended prefix would widen the grants to every parameter or secret.
    if (!/^(\/[A-Za-z0-9_.-]+)+$/.test(props.parameterPrefix)) {
      throw new PropError(this, "parameterPrefix", props.parameterPrefix, "an SSM path such as /airflow/dev");
    }
    if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(props.secretPrefix)) {
      throw new PropError(
        this,
        "secretPrefix",
        props.secretPrefix,
        "a secret name prefix such as airflow/dev",
      );
    }
    const known = Object.keys(NODE_ROLE_ACCESS);
    const badRole = props.nodeRoles.find((r, n) => !known.includes(r) || props.nodeRoles.indexOf(r) !== n);
    if (props.nodeRoles.length === 0 || badRole !== undefined) {
      throw new PropError(
        this,
        "nodeRoles",
        props.nodeRoles,
        `distinct roles of ${known.join(", ")}, at least one`,
      );
    }
    const aws: AwsLocation = {
      partition: new DataAwsPartition(this, "partition").partition,
      region,
      account: new DataAwsCallerIdentity(this, "account").accountId,
    };
    const doc = (docId: string, statement: Statements): string =>
      new DataAwsIamPolicyDocument(this, docId, { statement }).json;
    const managed = (name: string): string => `arn:${aws.partition}:iam::aws:policy/${name}`;

    // --- EMR roles (first: the node policies name them in iam:PassRole) ----------------
    this.emrServiceRole = new IamRole(this, "emr-service-role", {
      name: iamName(prefix, region, "emr-service"),
      description: "EMR service role (AmazonEMRServicePolicy_v2) for the Airflow pipeline",
      assumeRolePolicy: doc(
        "emr-service-assume",
        trustStatements("elasticmapreduce.amazonaws.com", aws.account),
      ),
    });
    new IamRolePolicyAttachment(this, "emr-service-managed", {
      role: this.emrServiceRole.name,
      policyArn: managed("service-role/AmazonEMRServicePolicy_v2"),
    });

    this.emrEc2Role = new IamRole(this, "emr-ec2-role", {
      name: iamName(prefix, region, "emr-ec2"),
      description: "Role of the EMR cluster's EC2 instances: data bucket r/w, artifacts read, EMR logs write",
      assumeRolePolicy: doc("emr-ec2-assume", trustStatements("ec2.amazonaws.com")),
    });
    this.emrInstanceProfile = new IamInstanceProfile(this, "emr-ec2-profile", {
      name: iamName(prefix, region, "emr-ec2"),
      role: this.emrEc2Role.name,
    });

    // The v2 service policy can pass only roles named EMR_EC2_DefaultRole; ours has a
    // cluster-specific name, so the service role gets PassRole on exactly that role.
    new IamRolePolicy(this, "emr-service-pass-ec2-role", {
      name: "pass-emr-ec2-role",
      role: this.emrServiceRole.id,
      policy: doc("emr-service-pass-doc", [
        passRoleStatement("PassEmrEc2Role", this.emrEc2Role.arn, "ec2.amazonaws.com"),
      ]),
    });

    new IamRolePolicy(this, "emr-ec2-policy", {
      name: "emr-ec2-data-access",
      role: this.emrEc2Role.id,
      policy: doc("emr-ec2-doc", [
        ...emrInstanceS3Statements({
          dataBucketArn: props.dataBucket.arn,
          artifactsBucketArn: props.artifactsBucket.arn,
          logBucketArn: props.logBucket.arn,
          emrLogPrefix,
        }),
        ...bucketKeyStatements(region, props.bucketKey?.arn),
      ]),
    });

    // --- node roles: one per node role of the executor ------------------------------
    // No managed policies: AmazonSSMManagedInstanceCore grants ssm:GetParameter* on "*"
    // (sessionManagerStatements replaces it), and CloudWatchAgentServerPolicy grants
    // logs and metrics on "*" (telemetryStatements scopes them to this cluster).
    const inputs: NodeRoleInputs = {
      aws,
      resourcePrefix: prefix,
      parameterPrefix: props.parameterPrefix,
      secretPrefix: props.secretPrefix,
      secretsKeyArn: props.secretsKey.arn,
      logBucketArn: props.logBucket.arn,
      remoteLogPrefix,
      artifactsBucketArn: props.artifactsBucket.arn,
      dataBucketArn: props.dataBucket.arn,
      bucketKeyArn: props.bucketKey?.arn,
      fileSystemArn: props.fileSystem.arn,
      emrServiceRoleArn: this.emrServiceRole.arn,
      emrEc2RoleArn: this.emrEc2Role.arn,
      sesIdentityArn: props.sesIdentity?.arn,
    };
    const assume = doc("node-assume", trustStatements("ec2.amazonaws.com"));
    const roles: Partial<Record<NodeRole, IamRole>> = {};
    const profiles: Partial<Record<NodeRole, IamInstanceProfile>> = {};
    for (const role of props.nodeRoles) {
      const iamRole = new IamRole(this, `${role}-role`, {
        name: iamName(prefix, region, role),
        description: ROLE_PURPOSE[role],
        assumeRolePolicy: assume,
      });
      profiles[role] = new IamInstanceProfile(this, `${role}-profile`, {
        name: iamName(prefix, region, role),
        role: iamRole.name,
      });
      new IamRolePolicy(this, `${role}-policy`, {
        name: `airflow-${role}`,
        role: iamRole.id,
        policy: doc(`${role}-doc`, nodeRoleStatements(role, inputs)),
      });
      roles[role] = iamRole;
    }
    this.nodeRoles = roles;
    this.nodeInstanceProfiles = profiles;
  }
}
