/**
 * The cluster's customer-managed KMS key: one key for RDS, ElastiCache, EFS, the S3
 * buckets (with S3 Bucket Keys, so KMS request costs stay flat), CloudWatch log groups
 * and Secrets Manager. One key keeps the node role's policy to a single ARN; its
 * deletion window and rotation are set so a mistaken destroy is recoverable.
 *
 * The DB's final snapshot is encrypted with this key, and a destroy schedules the key's
 * deletion, after which the snapshot can never be restored. `npm run destroy` therefore
 * cancels that deletion whenever the env keeps a final snapshot: the key outlives the
 * stack, disabled and without its alias (so a redeploy creates a fresh key and alias).
 * A separate, surviving DB key was the alternative, but changing an instance's
 * `kms_key_id` replaces it, i.e. loses or blocks every existing database.
 */
import { Construct } from "constructs";
import { KmsAlias } from "@cdktf/provider-aws/lib/kms-alias";
import { KmsKey } from "@cdktf/provider-aws/lib/kms-key";
import { PropError } from "./contract";

/**
 * Alias of an env's cluster key.
 * @param resourcePrefix `<namePrefix>-<env>`
 */
export function clusterKeyAlias(resourcePrefix: string): string {
  return `alias/${resourcePrefix}`;
}

/** Props of {@link ClusterKey}. */
export interface ClusterKeyProps {
  /** `<namePrefix>-<env>`; the alias is {@link clusterKeyAlias}. */
  readonly resourcePrefix: string;
  /** AWS account id (token from `aws_caller_identity`). */
  readonly accountId: string;
  /** AWS partition (token from `aws_partition`), e.g. `aws`. */
  readonly partition: string;
  /** Region, for the CloudWatch Logs service principal. */
  readonly region: string;
  /**
   * Days before a scheduled key deletion completes.
   * @default 30
   */
  readonly deletionWindowDays?: number;
}

/** A rotating customer-managed KMS key usable by this account's IAM, CloudWatch Logs and alarms. */
export class ClusterKey extends Construct {
  /** The key. */
  public readonly key: KmsKey;
  /** The key ARN, to hand to resources and IAM policies. */
  public readonly arn: string;

  public constructor(scope: Construct, id: string, props: ClusterKeyProps) {
    super(scope, id);
    const window = props.deletionWindowDays ?? 30;
    if (!Number.isInteger(window) || window < 7 || window > 30) {
      throw new PropError(this, "deletionWindowDays", window, "an integer from 7 to 30");
    }
    const root = `arn:${props.partition}:iam::${props.accountId}:root`;
    // Written inline rather than as an aws_iam_policy_document: in a KEY policy
    // "Resource": "*" means this key only, which IAM-policy checks cannot know.
    const policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        {
          // AWS's default key policy statement: delegates key use to IAM, so principals
          // of this account with kms:* in an identity policy (the node role; RDS, EFS
          // and ElastiCache through grants) may use it.
          Sid: "AccountAdministersThroughIam",
          Effect: "Allow",
          Principal: { AWS: root },
          Action: "kms:*",
          Resource: "*",
        },
        {
          // CloudWatch Logs encrypts log groups itself and needs an explicit grant,
          // limited to log groups of this account and region.
          Sid: "CloudWatchLogsEncryptsThisAccountsLogGroups",
          Effect: "Allow",
          Principal: { Service: `logs.${props.region}.amazonaws.com` },
          Action: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
          Resource: "*",
          Condition: {
            ArnLike: {
              "kms:EncryptionContext:aws:logs:arn": `arn:${props.partition}:logs:${props.region}:${props.accountId}:*`,
            },
          },
        },
        {
          // CloudWatch alarms publish to the cluster's SNS alarm topic, which this key
          // encrypts; without the grant every notification is silently dropped.
          Sid: "CloudWatchAlarmsPublishToThisAccountsTopics",
          Effect: "Allow",
          Principal: { Service: "cloudwatch.amazonaws.com" },
          Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
          Resource: "*",
          Condition: { StringEquals: { "aws:SourceAccount": props.accountId } },
        },
      ],
    });
    this.key = new KmsKey(this, "key", {
      description: `${props.resourcePrefix}: encrypts the Airflow cluster's data at rest`,
      enableKeyRotation: true,
      deletionWindowInDays: window,
      policy,
    });
    new KmsAlias(this, "alias", { name: clusterKeyAlias(props.resourcePrefix), targetKeyId: this.key.keyId });
    this.arn = this.key.arn;
  }
}
