/**
 * The cluster's S3 buckets:
 *
 * - `logs`      remote task logs (`[logging] remote_base_log_folder`) and EMR logs;
 *               expire after the configured log retention.
 * - `data`      pipeline input (`champion/data/Mall_Customers.csv`) and output.
 * - `artifacts` DAG files and Spark jobs uploaded by deploy.
 * - `accessLogs` the sink for S3 server access logs of the three above and for the
 *               load balancers' access logs.
 *
 * All four block public access, disable ACLs (bucket-owner-enforced), deny non-TLS
 * requests, are versioned (old versions expire after 30 days) and abort stale multipart
 * uploads. The first three use SSE-KMS with the cluster key and S3 Bucket Keys;
 * `accessLogs` must use SSE-S3 because neither S3 server access logging nor ELB log
 * delivery can write to SSE-KMS buckets.
 *
 * Names are `<resourcePrefix>-<role>-<account id>-<region>`: globally unique without
 * random suffixes, so they are stable across re-creations.
 */
import { Construct } from "constructs";
import { DataAwsElbServiceAccount } from "@cdktf/provider-aws/lib/data-aws-elb-service-account";
import {
  DataAwsIamPolicyDocument,
  DataAwsIamPolicyDocumentStatement,
  DataAwsIamPolicyDocumentStatementPrincipals,
} from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { S3Bucket } from "@cdktf/provider-aws/lib/s3-bucket";
import {
  S3BucketLifecycleConfiguration,
  S3BucketLifecycleConfigurationRule,
} from "@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration";
import { S3BucketLoggingA } from "@cdktf/provider-aws/lib/s3-bucket-logging";
import { S3BucketOwnershipControls } from "@cdktf/provider-aws/lib/s3-bucket-ownership-controls";
import { S3BucketPolicy } from "@cdktf/provider-aws/lib/s3-bucket-policy";
import { S3BucketPublicAccessBlock } from "@cdktf/provider-aws/lib/s3-bucket-public-access-block";
import { S3BucketServerSideEncryptionConfigurationA } from "@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration";
import { S3BucketVersioningA } from "@cdktf/provider-aws/lib/s3-bucket-versioning";
import { skipCheckov } from "./checkov";
import { LOG_PREFIXES, PropError } from "./contract";

/**
 * Regions with a legacy ELB log-delivery account (every region available before August
 * 2022, per "Enable access logs for your Application Load Balancer"). ALBs there deliver
 * access logs as that account; regions opened later (eu-central-2, ap-southeast-4,
 * me-central-1, il-central-1, ca-west-1, ...) deliver as {@link ELB_LOG_DELIVERY_SERVICE}.
 */
export const LEGACY_ELB_ACCOUNT_REGIONS: ReadonlySet<string> = new Set([
  "us-east-1",
  "us-east-2",
  "us-west-1",
  "us-west-2",
  "af-south-1",
  "ap-east-1",
  "ap-south-1",
  "ap-northeast-1",
  "ap-northeast-2",
  "ap-northeast-3",
  "ap-southeast-1",
  "ap-southeast-2",
  "ap-southeast-3",
  "ca-central-1",
  "eu-central-1",
  "eu-west-1",
  "eu-west-2",
  "eu-west-3",
  "eu-south-1",
  "eu-north-1",
  "me-south-1",
  "sa-east-1",
  "us-gov-west-1",
  "us-gov-east-1",
  "cn-north-1",
  "cn-northwest-1",
]);

/** The service principal ELB delivers access logs as in regions without a legacy ELB account. */
export const ELB_LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com";

/** A literal region name: the principal is chosen at synth, so a token cannot decide it. */
const REGION_NAME = /^[a-z]{2}(-[a-z]+)+-\d$/;

/** Props of {@link SecureBucket}. */
export interface SecureBucketProps {
  /** Full bucket name. */
  readonly bucketName: string;
  /**
   * KMS key ARN for SSE-KMS.
   * @default undefined - SSE-S3 (AES256)
   */
  readonly kmsKeyArn?: string;
  /**
   * Bucket receiving this bucket's server access logs.
   * @default undefined - no access logging (the caller must skip CKV_AWS_18 with a reason)
   */
  readonly accessLogBucket?: S3Bucket;
  /**
   * Days after which current objects expire.
   * @default undefined - never
   */
  readonly expireAfterDays?: number;
  /** Extra statements for the bucket policy (the TLS-only deny is always added). */
  readonly extraPolicyStatements?: DataAwsIamPolicyDocumentStatement[];
  /**
   * Why the bucket needs no cross-region replication (checkov CKV_AWS_144).
   * @default objects are reproducible or re-uploaded by deploy
   */
  readonly noReplicationReason?: string;
  /**
   * Allow `terraform destroy` to delete a non-empty bucket.
   * @default false
   */
  readonly forceDestroy?: boolean;
}

/** One private, encrypted, versioned, TLS-only bucket with lifecycle and logging. */
export class SecureBucket extends Construct {
  /** The bucket. */
  public readonly bucket: S3Bucket;
  /** The bucket policy (depends on the public access block). */
  public readonly policy: S3BucketPolicy;

  public constructor(scope: Construct, id: string, props: SecureBucketProps) {
    super(scope, id);
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(props.bucketName) && !props.bucketName.includes("${")) {
      throw new PropError(
        this,
        "bucketName",
        props.bucketName,
        "an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-'",
      );
    }
    this.bucket = new S3Bucket(this, "bucket", {
      bucket: props.bucketName,
      forceDestroy: props.forceDestroy ?? false,
    });
    // Neither region-replication nor event notifications earn their cost here.
    skipCheckov(
      this.bucket,
      "CKV_AWS_144",
      props.noReplicationReason ??
        "single-region cluster: logs expire, data is re-derivable and artifacts are re-uploaded by deploy; versioning covers mistakes",
    );
    skipCheckov(
      this.bucket,
      "CKV2_AWS_62",
      "no consumer for S3 event notifications; nothing reacts to object creation",
    );

    const pab = new S3BucketPublicAccessBlock(this, "public-access-block", {
      bucket: this.bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    new S3BucketOwnershipControls(this, "ownership", {
      bucket: this.bucket.id,
      rule: { objectOwnership: "BucketOwnerEnforced" },
    });
    new S3BucketServerSideEncryptionConfigurationA(this, "encryption", {
      bucket: this.bucket.id,
      rule: [
        props.kmsKeyArn
          ? {
              applyServerSideEncryptionByDefault: {
                sseAlgorithm: "aws:kms",
                kmsMasterKeyId: props.kmsKeyArn,
              },
              bucketKeyEnabled: true,
            }
          : { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } },
      ],
    });
    new S3BucketVersioningA(this, "versioning", {
      bucket: this.bucket.id,
      versioningConfiguration: { status: "Enabled" },
    });

    const rules: S3BucketLifecycleConfigurationRule[] = [
      {
        id: "housekeeping",
        status: "Enabled",
        filter: [{ prefix: "" }],
        abortIncompleteMultipartUpload: [{ daysAfterInitiation: 7 }],
        noncurrentVersionExpiration: [{ noncurrentDays: 30 }],
      },
    ];
    if (props.expireAfterDays !== undefined) {
      rules.push({
        id: "expire",
        status: "Enabled",
        filter: [{ prefix: "" }],
        expiration: [{ days: props.expireAfterDays }],
      });
    }
    new S3BucketLifecycleConfiguration(this, "lifecycle", { bucket: this.bucket.id, rule: rules });

    if (props.accessLogBucket) {
      new S3BucketLoggingA(this, "logging", {
        bucket: this.bucket.id,
        targetBucket: props.accessLogBucket.id,
        targetPrefix: `s3/${props.bucketName}/`,
      });
    }

    const doc = new DataAwsIamPolicyDocument(this, "policy-doc", {
      statement: [
        {
          sid: "DenyInsecureTransport",
          effect: "Deny",
          principals: [{ type: "*", identifiers: ["*"] }],
          actions: ["s3:*"],
          resources: [this.bucket.arn, `${this.bucket.arn}/*`],
          condition: [{ test: "Bool", variable: "aws:SecureTransport", values: ["false"] }],
        },
        ...(props.extraPolicyStatements ?? []),
      ],
    });
    this.policy = new S3BucketPolicy(this, "policy", {
      bucket: this.bucket.id,
      policy: doc.json,
      // S3 rejects a policy while the public access block is still being applied.
      dependsOn: [pab],
    });
  }
}

/** Props of {@link Buckets}. */
export interface BucketsProps {
  /** `<namePrefix>-<env>`. */
  readonly resourcePrefix: string;
  /** AWS account id (token). */
  readonly accountId: string;
  /** AWS partition (token). */
  readonly partition: string;
  /** Region: a literal name, since it picks the ELB log-delivery principal at synth. */
  readonly region: string;
  /** Cluster KMS key ARN (logs, data, artifacts). */
  readonly kmsKeyArn: string;
  /** Days task logs are kept. */
  readonly logRetentionDays: number;
  /**
   * Let `terraform destroy` empty the buckets (dev only).
   * @default false
   */
  readonly forceDestroy?: boolean;
}

/** The logs, data, artifacts and access-log buckets. */
export class Buckets extends Construct {
  /** Remote task logs and EMR logs. */
  public readonly logs: S3Bucket;
  /** Pipeline input/output. */
  public readonly data: S3Bucket;
  /** DAGs and Spark jobs uploaded by deploy. */
  public readonly artifacts: S3Bucket;
  /** S3 server access logs and load-balancer access logs (SSE-S3). Load balancers log under `alb/<name>/`. */
  public readonly accessLogs: S3Bucket;
  /**
   * The access-log bucket's policy. A load balancer that logs there depends on it: ELB
   * test-writes to the bucket when logging is switched on and fails with Access Denied
   * while the grant is missing.
   */
  public readonly accessLogsPolicy: S3BucketPolicy;

  public constructor(scope: Construct, id: string, props: BucketsProps) {
    super(scope, id);
    if (!REGION_NAME.test(props.region)) {
      throw new PropError(this, "region", props.region, "an AWS region name such as eu-central-1");
    }
    const name = (role: string) => `${props.resourcePrefix}-${role}-${props.accountId}-${props.region}`;
    const forceDestroy = props.forceDestroy ?? false;

    const accessLogsName = name("access-logs");
    const arn = `arn:${props.partition}:s3:::${accessLogsName}`;
    const accessLogs = new SecureBucket(this, "access-logs", {
      bucketName: accessLogsName,
      expireAfterDays: 90,
      forceDestroy,
      extraPolicyStatements: [
        {
          sid: "S3ServerAccessLogs",
          principals: [{ type: "Service", identifiers: ["logging.s3.amazonaws.com"] }],
          actions: ["s3:PutObject"],
          resources: [`${arn}/s3/*`],
          condition: [{ test: "StringEquals", variable: "aws:SourceAccount", values: [props.accountId] }],
        },
        {
          sid: "LoadBalancerAccessLogs",
          principals: [this.elbLogDeliveryPrincipal(props.region)],
          actions: ["s3:PutObject"],
          resources: [`${arn}/${LOG_PREFIXES.alb}/*`],
        },
      ],
    });
    skipCheckov(
      accessLogs.bucket,
      "CKV_AWS_145",
      "S3 server access logging and ELB access logs can only write to SSE-S3 buckets",
    );
    this.accessLogs = accessLogs.bucket;
    this.accessLogsPolicy = accessLogs.policy;

    const kms = { kmsKeyArn: props.kmsKeyArn, accessLogBucket: this.accessLogs, forceDestroy };
    this.logs = new SecureBucket(this, "logs", {
      ...kms,
      bucketName: name("logs"),
      expireAfterDays: props.logRetentionDays,
    }).bucket;
    this.data = new SecureBucket(this, "data", { ...kms, bucketName: name("data") }).bucket;
    this.artifacts = new SecureBucket(this, "artifacts", { ...kms, bucketName: name("artifacts") }).bucket;
  }

  /**
   * Who delivers ELB access logs in `region`: the regional ELB account where one exists
   * (the `aws_elb_service_account` data source knows only those and fails plan elsewhere),
   * the log-delivery service principal in every region opened since.
   */
  private elbLogDeliveryPrincipal(region: string): DataAwsIamPolicyDocumentStatementPrincipals {
    if (LEGACY_ELB_ACCOUNT_REGIONS.has(region)) {
      const elb = new DataAwsElbServiceAccount(this, "elb-account", {});
      return { type: "AWS", identifiers: [elb.arn] };
    }
    return { type: "Service", identifiers: [ELB_LOG_DELIVERY_SERVICE] };
  }
}
