/**
 * Bootstrap stack `<namePrefix>-state`: the S3 bucket that holds the cluster stacks'
 * Terraform state. Deployed once per account/region, before any cluster stack, with a
 * LOCAL backend (the bucket cannot hold the state of its own creation); keep the local
 * `terraform.<namePrefix>-state.tfstate` safe or re-import the bucket if it is lost.
 *
 * Locking needs no DynamoDB table: the cluster stack's S3 backend sets
 * `use_lockfile = true` (Terraform >= 1.10 native S3 locking via a conditional-write
 * `.tflock` object next to the state), and the DynamoDB locking option is deprecated.
 */
import { Construct } from "constructs";
import { Aspects, LocalBackend, TerraformOutput, TerraformStack } from "cdktf";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { AirflowConfig, clusterNames } from "./config";
import { SecureBucket } from "./buckets";
import { skipCheckov } from "./checkov";
import { ClusterPolicyAspect, clusterTags } from "./policy-aspect";

/** Props of {@link StateStack}. */
export interface StateStackProps {
  /** The validated configuration (region, namePrefix, stateBucketName, tags). */
  readonly config: AirflowConfig;
}

/** The Terraform state bucket: versioned, encrypted, private, TLS-only, undeletable. */
export class StateStack extends TerraformStack {
  /** The state bucket (shared by every env of this namePrefix in the region). */
  public readonly bucket: SecureBucket;

  public constructor(scope: Construct, id: string, props: StateStackProps) {
    super(scope, id);
    const { config } = props;
    const names = clusterNames(config);
    const tags = clusterTags({ ...config, env: "shared" });

    new LocalBackend(this, { path: `terraform.${id}.tfstate` });
    new AwsProvider(this, "aws", { region: config.region, defaultTags: [{ tags }] });

    this.bucket = new SecureBucket(this, "state", {
      bucketName: names.stateBucket,
      // aws:kms with the AWS-managed aws/s3 key: a customer key here would be one more
      // thing whose deletion could lock every environment out of its state.
      kmsKeyArn: "alias/aws/s3",
      noReplicationReason:
        "state is versioned and small; a regional S3 outage blocks deploys, not the running cluster; replicate if your DR policy covers deploys",
    });
    // Losing this bucket loses every environment's state: Terraform refuses to destroy it.
    this.bucket.bucket.lifecycle = { preventDestroy: true };
    skipCheckov(
      this.bucket.bucket,
      "CKV_AWS_18",
      "state bucket is bootstrapped before any log bucket exists; S3 data events in CloudTrail are the audit trail for state access",
    );

    new TerraformOutput(this, "state_bucket", {
      value: this.bucket.bucket.bucket,
      description: "Terraform state bucket used by the cluster stacks' S3 backend",
    });
    Aspects.of(this).add(new ClusterPolicyAspect({ tags }));
  }
}
