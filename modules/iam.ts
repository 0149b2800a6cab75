/**
 * IAM for the cluster: the node role + instance profile (least privilege, scoped to this
 * cluster's parameters, secrets, buckets, file system and EMR roles), the EMR service
 * role and the EMR EC2 role + instance profile.
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
import type { AirflowConfig } from "./config";
import { clusterNames } from "./config";
import { BucketRef, EMR_MANAGED_TAG, HasArn, LOG_PREFIXES, assertKeyPrefix } from "./contract";

/** Properties of {@link ClusterIam}. */
export interface ClusterIamProps {
  /** The validated deployment config (names, region). */
  readonly config: AirflowConfig;
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
    const { config } = props;
    const names = clusterNames(config);
    const remoteLogPrefix = props.remoteLogPrefix ?? LOG_PREFIXES.remote;
    const emrLogPrefix = props.emrLogPrefix ?? LOG_PREFIXES.emr;
    assertKeyPrefix(this, "remoteLogPrefix", remoteLogPrefix);
    assertKeyPrefix(this, "emrLogPrefix", emrLogPrefix);
    const p = new DataAwsPartition(this, "partition").partition;
    const account = new DataAwsCallerIdentity(this, "account").accountId;
    const region = config.region;
    const prefix = names.resourcePrefix;
    const doc = (docId: string, statement: DataAwsIamPolicyDocumentStatement[]): string =>
      new DataAwsIamPolicyDocument(this, docId, { statement }).json;
    const assume = (docId: string, service: string): string =>
      doc(docId, [
        {
          actions: ["sts:AssumeRole"],
          principals: [{ type: "Service", identifiers: [service] }],
          // Confused-deputy guard: only this account's use of the service may assume.
          condition: [{ test: "StringEquals", variable: "aws:SourceAccount", values: [account] }],
        },
      ]);
    const managed = (name: string): string => `arn:${p}:iam::aws:policy/${name}`;

    // --- EMR roles (first: the node policy names them in iam:PassRole) --------------
    this.emrServiceRole = new IamRole(this, "emr-service-role", {
      name: `${prefix}-emr-service`,
      description: "EMR service role (AmazonEMRServicePolicy_v2) for the Airflow pipeline",
      assumeRolePolicy: assume("emr-service-assume", "elasticmapreduce.amazonaws.com"),
    });
    new IamRolePolicyAttachment(this, "emr-service-managed", {
      role: this.emrServiceRole.name,
      policyArn: managed("service-role/AmazonEMRServicePolicy_v2"),
    });

    const emrEc2Assume = doc("emr-ec2-assume", [
      { actions: ["sts:AssumeRole"], principals: [{ type: "Service", identifiers: ["ec2.amazonaws.com"] }] },
    ]);
    this.emrEc2Role = new IamRole(this, "emr-ec2-role", {
      name: `${prefix}-emr-ec2`,
      description: "Role of the EMR cluster's EC2 instances: data bucket r/w, artifacts read, EMR logs write",
      assumeRolePolicy: emrEc2Assume,
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
        {
          sid: "PassEmrEc2Role",
          actions: ["iam:PassRole"],
          resources: [this.emrEc2Role.arn],
          condition: [
            { test: "StringLike", variable: "iam:PassedToService", values: ["ec2.amazonaws.com*"] },
          ],
        },
      ]),
    });

    const bucketObjects = (b: BucketRef, keyPrefix = ""): string => `${b.arn}/${keyPrefix}*`;
    const kmsForS3: DataAwsIamPolicyDocumentStatement[] = props.bucketKey
      ? [
          {
            sid: "UseBucketKeyThroughS3",
            actions: ["kms:Decrypt", "kms:GenerateDataKey"],
            resources: [props.bucketKey.arn],
            condition: [
              { test: "StringEquals", variable: "kms:ViaService", values: [`s3.${region}.amazonaws.com`] },
            ],
          },
        ]
      : [];
    new IamRolePolicy(this, "emr-ec2-policy", {
      name: "emr-ec2-data-access",
      role: this.emrEc2Role.id,
      policy: doc("emr-ec2-doc", [
        {
          sid: "ListBuckets",
          actions: ["s3:ListBucket", "s3:GetBucketLocation"],
          resources: [props.dataBucket.arn, props.artifactsBucket.arn, props.logBucket.arn],
        },
        {
          sid: "ReadWriteData",
          actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
          resources: [bucketObjects(props.dataBucket)],
        },
        {
          sid: "ReadArtifacts",
          actions: ["s3:GetObject"],
          resources: [bucketObjects(props.artifactsBucket)],
        },
        {
          sid: "WriteEmrLogs",
          actions: ["s3:PutObject", "s3:GetObject"],
          resources: [bucketObjects(props.logBucket, `${emrLogPrefix}/`)],
        },
        ...kmsForS3,
      ]),
    });

    // --- node role ---------------------------------------------------------------------
    this.nodeRole = new IamRole(this, "node-role", {
      name: `${prefix}-node`,
      description: "Airflow nodes: SSM, CloudWatch agent, this cluster's settings/secrets/buckets, EMR, SES",
      assumeRolePolicy: doc("node-assume", [
        {
          actions: ["sts:AssumeRole"],
          principals: [{ type: "Service", identifiers: ["ec2.amazonaws.com"] }],
        },
      ]),
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

    const parameterArn = `arn:${p}:ssm:${region}:${account}:parameter${names.parameterPrefix}`;
    const secretArn = `arn:${p}:secretsmanager:${region}:${account}:secret:${names.secretPrefix}/*`;
    const emrTag = `aws:ResourceTag/${EMR_MANAGED_TAG.key}`;
    const statements: DataAwsIamPolicyDocumentStatement[] = [
      {
        sid: "ReadClusterParameters",
        actions: ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
        // The path itself (GetParametersByPath) and everything under it - no other cluster's.
        resources: [parameterArn, `${parameterArn}/*`],
      },
      {
        sid: "ReadClusterSecrets",
        actions: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
        resources: [secretArn],
      },
      {
        sid: "DecryptSecretsViaService",
        actions: ["kms:Decrypt"],
        resources: [props.secretsKey.arn],
        condition: [
          {
            test: "StringEquals",
            variable: "kms:ViaService",
            values: [`secretsmanager.${region}.amazonaws.com`, `ssm.${region}.amazonaws.com`],
          },
        ],
      },
      {
        sid: "ListOwnBuckets",
        actions: ["s3:ListBucket", "s3:GetBucketLocation"],
        resources: [props.artifactsBucket.arn, props.dataBucket.arn],
      },
      {
        // Airflow's S3 task handler lists the task's log prefix before reading it back.
        sid: "ListRemoteLogPrefix",
        actions: ["s3:ListBucket"],
        resources: [props.logBucket.arn],
        condition: [{ test: "StringLike", variable: "s3:prefix", values: [`${remoteLogPrefix}/*`] }],
      },
      {
        // Read too: the UI shows task logs from S3, and the handler appends by read+write.
        sid: "ReadWriteRemoteLogs",
        actions: ["s3:GetObject", "s3:PutObject"],
        resources: [bucketObjects(props.logBucket, `${remoteLogPrefix}/`)],
      },
      { sid: "ReadArtifacts", actions: ["s3:GetObject"], resources: [bucketObjects(props.artifactsBucket)] },
      {
        sid: "ReadWriteData",
        actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
        resources: [bucketObjects(props.dataBucket)],
      },
      {
        // IAM-authorised NFS mounts (`mount -t efs -o tls,iam`); no ClientRootAccess.
        sid: "MountFileSystem",
        actions: ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
        resources: [props.fileSystem.arn],
      },
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
        resources: [`arn:${p}:elasticmapreduce:${region}:${account}:cluster/*`],
        condition: [{ test: "StringEquals", variable: emrTag, values: [EMR_MANAGED_TAG.value] }],
      },
      {
        // ListClusters has no resource-level permissions; EmrAddStepsOperator(job_flow_name=)
        // needs it to resolve a name to an id.
        sid: "ListEmrClusters",
        actions: ["elasticmapreduce:ListClusters"],
        resources: ["*"],
      },
      {
        sid: "PassEmrServiceRole",
        actions: ["iam:PassRole"],
        resources: [this.emrServiceRole.arn],
        condition: [
          {
            test: "StringLike",
            variable: "iam:PassedToService",
            values: ["elasticmapreduce.amazonaws.com*"],
          },
        ],
      },
      {
        sid: "PassEmrEc2Role",
        actions: ["iam:PassRole"],
        resources: [this.emrEc2Role.arn],
        condition: [{ test: "StringLike", variable: "iam:PassedToService", values: ["ec2.amazonaws.com*"] }],
      },
      {
        // Worker scale-in: the node completes its own termination lifecycle hook after a
        // warm Celery shutdown (see node-group.ts). Only this cluster's groups.
        sid: "CompleteOwnLifecycleActions",
        actions: ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"],
        resources: [
          `arn:${p}:autoscaling:${region}:${account}:autoScalingGroup:*:autoScalingGroupName/${prefix}-*`,
        ],
      },
      {
        // The drain script finds its group name from the aws:autoscaling:groupName tag.
        // ec2:DescribeTags supports no resource-level scoping, hence "*" (read-only).
        sid: "FindOwnAutoScalingGroup",
        actions: ["ec2:DescribeTags"],
        resources: ["*"],
      },
      ...kmsForS3,
    ];
    if (props.sesIdentity) {
      statements.push({
        sid: "SendMailAsIdentity",
        actions: ["ses:SendRawEmail", "ses:SendEmail"],
        resources: [props.sesIdentity.arn],
      });
    }
    new IamRolePolicy(this, "node-policy", {
      name: "airflow-node",
      role: this.nodeRole.id,
      policy: doc("node-doc", statements),
    });
  }
}
