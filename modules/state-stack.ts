/**
 * Bootstrap stack `<namePrefix>-state`: the S3 bucket that holds the cluster stacks'
 * Terraform state. Deployed once per account/region, before any cluster stack, with a
 * LOCAL backend (the bucket cannot hold the state of its own creation). The local state
 * file lives outside the synth output, in `<repo>/.terraform-state/` (or
 * `AIRFLOW_STATE_DIR`), so `npm run synth` (which deletes `cdktf.out/`) never touches it.
 * The backend names it relative to the stack's directory, so the synthesized JSON is the
 * same on every machine. `npm run deploy` also copies it into the bucket it describes and
 * restores it from there on a machine that lacks it.
 *
 * Locking needs no DynamoDB table: the cluster stack's S3 backend sets
 * `use_lockfile = true` (Terraform >= 1.10 native S3 locking via a conditional-write
 * `.tflock` object next to the state), and the DynamoDB locking option is deprecated.
 */
import { Construct } from "constructs";
import * as path from "node:path";
import { App, Aspects, LocalBackend, TerraformOutput, TerraformStack } from "cdktf";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { AirflowConfig, clusterNames } from "./config";
import { SecureBucket } from "./buckets";
import { skipCheckov } from "./checkov";
import { REQUIRED_TERRAFORM_VERSION, repoRoot } from "./contract";
import { ClusterPolicyAspect, clusterTags } from "./policy-aspect";

/** S3 key under which `npm run deploy` keeps a copy of the state stack's own local state. */
export const STATE_STACK_BACKUP_KEY = "_state-stack/terraform.tfstate";

/**
 * Absolute path of a state stack's local state file: `AIRFLOW_STATE_DIR`, default
 * `<repo>/.terraform-state` (gitignored), never under the synth output directory.
 * `scripts/deploy.sh` finds the file through this function.
 * @param stackId the state stack's id, e.g. "airflow-state"
 */
export function stateStackStatePath(stackId: string): string {
  const dir = process.env.AIRFLOW_STATE_DIR ?? path.join(repoRoot(), ".terraform-state");
  return path.join(path.resolve(dir), `${stackId}.tfstate`);
}

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

    // Terraform runs in `<outdir>/stacks/<id>/` and resolves a relative path from there.
    const stackDir = path.join(App.of(this).outdir, "stacks", id);
    new LocalBackend(this, { path: path.relative(stackDir, stateStackStatePath(id)) });
    this.addOverride("terraform.required_version", REQUIRED_TERRAFORM_VERSION);
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
