/**
 * IAM for the cluster: the node role + instance profile (least privilege, scoped to this
 * cluster's parameters, secrets, buckets, file system and EMR roles), the EMR service
 * role and the EMR EC2 role + instance profile.
 *
 * Policy statements come from small pure functions, one per AWS concern, that take the
 * ARNs and prefixes they scope to and nothing else (no construct, no config). A role's
 * policy is the concatenation of the concerns it needs, so giving one node role less is
 * a matter of leaving a function out, and each concern can be tested on its own.
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
import { BucketRef, EMR_MANAGED_TAG, HasArn, LOG_PREFIXES, PropError, assertKeyPrefix } from "./contract";

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
  /** CMK of the secrets and SecureString parameters. */
  readonly secretsKeyArn: string;
}

/**
 * Nodes bootstrap from SSM parameters and Secrets Manager secrets: read only this
 * cluster's path and name prefix, and decrypt the CMK only through those two services,
 * so the key opens nothing else.
 */
export function settingsReadStatements(i: SettingsReadInputs): Statements {
  const { partition, region, account } = i.aws;
  const parameterArn = `arn:${partition}:ssm:${region}:${account}:parameter${i.parameterPrefix}`;
  return [
    {
      sid: "ReadClusterParameters",
      actions: ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
      // The path itself (GetParametersByPath) and everything under it - no other cluster's.
      resources: [parameterArn, `${parameterArn}/*`],
    },
    {
      sid: "ReadClusterSecrets",
      actions: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
      resources: [`arn:${partition}:secretsmanager:${region}:${account}:secret:${i.secretPrefix}/*`],
    },
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

/** Inputs of {@link s3Statements}. */
export interface S3Inputs {
  /** Artifacts bucket (DAGs, Spark jobs). */
  readonly artifactsBucketArn: string;
  /** Data bucket. */
  readonly dataBucketArn: string;
  /** Log bucket. */
  readonly logBucketArn: string;
  /** Key prefix of remote task logs in the log bucket, no slashes at either end. */
  readonly remoteLogPrefix: string;
}

/**
 * What Airflow nodes do in S3: read the artifacts, read/write the data the DAGs move,
 * and read/write remote task logs under their prefix only (the log bucket also holds
 * EMR and load-balancer logs, which nodes have no business with).
 */
export function s3Statements(i: S3Inputs): Statements {
  return [
    {
      sid: "ListOwnBuckets",
      actions: ["s3:ListBucket", "s3:GetBucketLocation"],
      resources: [i.artifactsBucketArn, i.dataBucketArn],
    },
    {
      // Airflow's S3 task handler lists the task's log prefix before reading it back.
      sid: "ListRemoteLogPrefix",
      actions: ["s3:ListBucket"],
      resources: [i.logBucketArn],
      condition: [{ test: "StringLike", variable: "s3:prefix", values: [`${i.remoteLogPrefix}/*`] }],
    },
    {
      // Read too: the UI shows task logs from S3, and the handler appends by read+write.
      sid: "ReadWriteRemoteLogs",
      actions: ["s3:GetObject", "s3:PutObject"],
      resources: [objectsArn(i.logBucketArn, `${i.remoteLogPrefix}/`)],
    },
    { sid: "ReadArtifacts", actions: ["s3:GetObject"], resources: [objectsArn(i.artifactsBucketArn)] },
    {
      sid: "ReadWriteData",
      actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
      resources: [objectsArn(i.dataBucketArn)],
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
 * With SSE-KMS buckets under a customer key, reading and writing objects needs the key
 * too; only through S3, so the grant cannot decrypt anything else. None without a key.
 */
export function bucketKeyStatements(region: string, bucketKeyArn?: string): Statements {
  if (bucketKeyArn === undefined) return [];
  return [
    {
      sid: "UseBucketKeyThroughS3",
      actions: ["kms:Decrypt", "kms:GenerateDataKey"],
      resources: [bucketKeyArn],
      condition: [
        { test: "StringEquals", variable: "kms:ViaService", values: [`s3.${region}.amazonaws.com`] },
      ],
    },
  ];
}

/**
 * DAGs and plugins live on EFS, mounted with IAM authorisation (`mount -t efs -o
 * tls,iam`): mount and write this one file system, without ClientRootAccess.
 */
export function efsStatements(fileSystemArn: string): Statements {
  return [
    {
      sid: "MountFileSystem",
      actions: ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
      resources: [fileSystemArn],
    },
  ];
}

/** Inputs of {@link emrControlStatements}. */
export interface EmrControlInputs {
  /** Where the EMR clusters run. */
  readonly aws: AwsLocation;
  /** The EMR service role (`ServiceRole` of RunJobFlow). */
  readonly serviceRoleArn: string;
  /** The EMR EC2 role (behind `JobFlowRole` of RunJobFlow). */
  readonly ec2RoleArn: string;
}

/**
 * DAG_1 creates, steps and terminates EMR clusters. Only clusters carrying the tag the
 * EMR v2 managed policies require, so nodes cannot touch other EMR clusters of the
 * account, and only with this cluster's two EMR roles.
 */
export function emrControlStatements(i: EmrControlInputs): Statements {
  const { partition, region, account } = i.aws;
  return [
    {
      // A new cluster has no ARN yet: require the tag the v2 policies depend on instead.
      sid: "CreateTaggedEmrClusters",
      actions: ["elasticmapreduce:RunJobFlow", "elasticmapreduce:AddTags"],
      resources: ["*"],
      condition: [
        {
          test: "StringEquals",
          variable: `aws:RequestTag/${EMR_MANAGED_TAG.key}`,
          values: [EMR_MANAGED_TAG.value],
        },
      ],
    },
    {
      sid: "ManageTaggedEmrClusters",
      actions: [
        "elasticmapreduce:DescribeCluster",
        "elasticmapreduce:DescribeStep",
        "elasticmapreduce:ListSteps",
        "elasticmapreduce:ListInstanceGroups",
        "elasticmapreduce:AddJobFlowSteps",
        "elasticmapreduce:CancelSteps",
        "elasticmapreduce:TerminateJobFlows",
        "elasticmapreduce:SetTerminationProtection",
      ],
      resources: [`arn:${partition}:elasticmapreduce:${region}:${account}:cluster/*`],
      condition: [
        {
          test: "StringEquals",
          variable: `aws:ResourceTag/${EMR_MANAGED_TAG.key}`,
          values: [EMR_MANAGED_TAG.value],
        },
      ],
    },
    {
      // ListClusters has no resource-level permissions; EmrAddStepsOperator(job_flow_name=)
      // needs it to resolve a name to an id.
      sid: "ListEmrClusters",
      actions: ["elasticmapreduce:ListClusters"],
      resources: ["*"],
    },
    passRoleStatement("PassEmrServiceRole", i.serviceRoleArn, "elasticmapreduce.amazonaws.com"),
    passRoleStatement("PassEmrEc2Role", i.ec2RoleArn, "ec2.amazonaws.com"),
  ];
}

/** Inputs of {@link workerDrainStatements}. */
export interface WorkerDrainInputs {
  /** Where the Auto Scaling groups live. */
  readonly aws: AwsLocation;
  /** `<namePrefix>-<env>`: this cluster's group names start with it. */
  readonly resourcePrefix: string;
}

/**
 * Worker scale-in: the node completes its own termination lifecycle hook after a warm
 * Celery shutdown (see node-group.ts), on this cluster's groups only, and finds its
 * group name from the aws:autoscaling:groupName tag.
 */
export function workerDrainStatements(i: WorkerDrainInputs): Statements {
  const { partition, region, account } = i.aws;
  return [
    {
      sid: "CompleteOwnLifecycleActions",
      actions: ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"],
      resources: [
        `arn:${partition}:autoscaling:${region}:${account}:autoScalingGroup:*:autoScalingGroupName/${i.resourcePrefix}-*`,
      ],
    },
    {
      // ec2:DescribeTags supports no resource-level scoping, hence "*" (read-only).
      sid: "FindOwnAutoScalingGroup",
      actions: ["ec2:DescribeTags"],
      resources: ["*"],
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

/** Properties of {@link ClusterIam}. */
export interface ClusterIamProps {
  /** `<namePrefix>-<env>`: role and profile names, and the worker groups the drain may complete. */
  readonly resourcePrefix: string;
  /** SSM path of this cluster's parameters, `/<namePrefix>/<env>`. */
  readonly parameterPrefix: string;
  /** Name prefix of this cluster's Secrets Manager secrets, `<namePrefix>/<env>`. */
  readonly secretPrefix: string;
  /** Region of the cluster (ARNs and kms:ViaService conditions). */
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
  /** Data bucket: read/write for nodes and EMR. */
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

/** The node role, EMR service role and EMR EC2 role of one cluster. */
export class ClusterIam extends Construct {
  /** Role of every Airflow node. */
  public readonly nodeRole: IamRole;
  /** Instance profile of every Airflow node. */
  public readonly nodeInstanceProfile: IamInstanceProfile;
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
    const aws: AwsLocation = {
      partition: new DataAwsPartition(this, "partition").partition,
      region,
      account: new DataAwsCallerIdentity(this, "account").accountId,
    };
    const doc = (docId: string, statement: Statements): string =>
      new DataAwsIamPolicyDocument(this, docId, { statement }).json;
    const managed = (name: string): string => `arn:${aws.partition}:iam::aws:policy/${name}`;
    const bucketKey = bucketKeyStatements(region, props.bucketKey?.arn);

    // --- EMR roles (first: the node policy names them in iam:PassRole) --------------
    this.emrServiceRole = new IamRole(this, "emr-service-role", {
      name: `${prefix}-emr-service`,
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
      name: `${prefix}-emr-ec2`,
      description: "Role of the EMR cluster's EC2 instances: data bucket r/w, artifacts read, EMR logs write",
      assumeRolePolicy: doc("emr-ec2-assume", trustStatements("ec2.amazonaws.com")),
    });
    this.emrInstanceProfile = new IamInstanceProfile(this, "emr-ec2-profile", {
      name: `${prefix}-emr-ec2`,
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
        ...bucketKey,
      ]),
    });

    // --- node role ---------------------------------------------------------------------
    this.nodeRole = new IamRole(this, "node-role", {
      name: `${prefix}-node`,
      description: "Airflow nodes: SSM, CloudWatch agent, this cluster's settings/secrets/buckets, EMR, SES",
      assumeRolePolicy: doc("node-assume", trustStatements("ec2.amazonaws.com")),
    });
    this.nodeInstanceProfile = new IamInstanceProfile(this, "node-profile", {
      name: `${prefix}-node`,
      role: this.nodeRole.name,
    });
    // Session Manager replaces SSH; the CloudWatch agent ships logs and metrics.
    for (const [attachId, policy] of [
      ["node-ssm-core", "AmazonSSMManagedInstanceCore"],
      ["node-cloudwatch-agent", "CloudWatchAgentServerPolicy"],
    ] as const) {
      new IamRolePolicyAttachment(this, attachId, { role: this.nodeRole.name, policyArn: managed(policy) });
    }

    // One role serves every node group, so it composes every concern; this order is the
    // order of the rendered policy document.
    new IamRolePolicy(this, "node-policy", {
      name: "airflow-node",
      role: this.nodeRole.id,
      policy: doc("node-doc", [
        ...settingsReadStatements({
          aws,
          parameterPrefix: props.parameterPrefix,
          secretPrefix: props.secretPrefix,
          secretsKeyArn: props.secretsKey.arn,
        }),
        ...s3Statements({
          artifactsBucketArn: props.artifactsBucket.arn,
          dataBucketArn: props.dataBucket.arn,
          logBucketArn: props.logBucket.arn,
          remoteLogPrefix,
        }),
        ...efsStatements(props.fileSystem.arn),
        ...emrControlStatements({
          aws,
          serviceRoleArn: this.emrServiceRole.arn,
          ec2RoleArn: this.emrEc2Role.arn,
        }),
        ...workerDrainStatements({ aws, resourcePrefix: prefix }),
        ...bucketKey,
        ...sesStatements(props.sesIdentity?.arn),
      ]),
    });
  }
}
