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
 *
 * The state holds every generated secret in plaintext JSON, so the bucket is encrypted
 * with a customer-managed key of this stack (the cluster stacks' backend names it by
 * alias, so every state write uses it) and its policy limits each env's state to that
 * env's deployers (see modules/state-access.ts). Key and bucket are `prevent_destroy`:
 * losing either loses every env's state.
 */
import { Construct } from "constructs";
import * as path from "node:path";
import { App, Aspects, LocalBackend, TerraformOutput, TerraformStack } from "cdktf";
import { DataAwsCallerIdentity } from "@cdktf/provider-aws/lib/data-aws-caller-identity";
import { DataAwsIamPolicyDocumentStatement } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { DataAwsPartition } from "@cdktf/provider-aws/lib/data-aws-partition";
import { KmsAlias } from "@cdktf/provider-aws/lib/kms-alias";
import { KmsKey } from "@cdktf/provider-aws/lib/kms-key";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { AirflowConfig, clusterNames } from "./config";
import { SecureBucket } from "./buckets";
import { StateAccess, stateAccessOf, stateKeyAlias } from "./state-access";
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
  /**
   * Every env sharing the state bucket (`envsSharingStateBucket`), whose
   * `stateAccessPrincipalArns` shape the bucket and key policies.
   * @default [config]
   */
  readonly envs?: readonly AirflowConfig[];
}

/** KMS actions of a key administrator: everything but using the key. */
const KEY_ADMIN_ACTIONS = [
  "kms:Create*",
  "kms:Describe*",
  "kms:Enable*",
  "kms:List*",
  "kms:Put*",
  "kms:Update*",
  "kms:Revoke*",
  "kms:Disable*",
  "kms:Get*",
  "kms:Delete*",
  "kms:TagResource",
  "kms:UntagResource",
  "kms:ScheduleKeyDeletion",
  "kms:CancelKeyDeletion",
  "kms:RotateKeyOnDemand",
];

/** KMS actions S3 performs for a reader or writer of an SSE-KMS object. */
const KEY_USE_ACTIONS = [
  "kms:Encrypt",
  "kms:Decrypt",
  "kms:ReEncrypt*",
  "kms:GenerateDataKey*",
  "kms:DescribeKey",
];

/**
 * The state key's policy. Without a complete deployer list it is AWS's default (the
 * account delegates to IAM). With one, the account still administers the key through
 * IAM, but only the deployers may use it, and only through S3.
 */
function stateKeyPolicy(access: StateAccess, root: string, region: string): string {
  const statements: object[] = access.bucketPrincipals
    ? [
        {
          Sid: "AccountAdministersThroughIam",
          Effect: "Allow",
          Principal: { AWS: root },
          Action: KEY_ADMIN_ACTIONS,
          Resource: "*",
        },
        {
          // Principal root + aws:PrincipalArn (not the deployer ARNs as principals): a key
          // policy may name neither wildcards nor roles that do not exist yet.
          Sid: "DeployersUseThroughS3",
          Effect: "Allow",
          Principal: { AWS: root },
          Action: KEY_USE_ACTIONS,
          Resource: "*",
          Condition: {
            ArnLike: { "aws:PrincipalArn": access.bucketPrincipals },
            StringEquals: { "kms:ViaService": `s3.${region}.amazonaws.com` },
          },
        },
      ]
    : [
        {
          Sid: "AccountAdministersThroughIam",
          Effect: "Allow",
          Principal: { AWS: root },
          Action: "kms:*",
          Resource: "*",
        },
      ];
  return JSON.stringify({ Version: "2012-10-17", Statement: statements });
}

/** Bucket policy statements that deny state to everyone outside its deployers (and the root user). */
function stateDenyStatements(
  access: StateAccess,
  bucketArn: string,
  root: string,
): DataAwsIamPolicyDocumentStatement[] {
  const deny = (sid: string, resources: string[], principals: readonly string[]) => ({
    sid,
    effect: "Deny",
    principals: [{ type: "*", identifiers: ["*"] }],
    actions: ["s3:*"],
    resources,
    condition: [{ test: "ArnNotLike", variable: "aws:PrincipalArn", values: [root, ...principals] }],
  });
  const statements = access.envs.map((e) =>
    deny(
      `DenyStateOf${e.env[0].toUpperCase()}${e.env.slice(1)}ToOthers`,
      [`${bucketArn}/${e.prefix}*`],
      e.principals,
    ),
  );
  if (access.bucketPrincipals) {
    statements.push(deny("DenyBucketToNonDeployers", [bucketArn, `${bucketArn}/*`], access.bucketPrincipals));
  }
  return statements;
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
    new AwsProvider(this, "aws", {
      region: config.region,
      // A deploy with another account's credentials stops before touching anything.
      allowedAccountIds: config.accountId ? [config.accountId] : undefined,
      defaultTags: [{ tags }],
    });
    const accountId = new DataAwsCallerIdentity(this, "account").accountId;
    const partition = new DataAwsPartition(this, "partition").partition;
    const root = `arn:${partition}:iam::${accountId}:root`;
    const access = stateAccessOf(props.envs ?? [config]);

    const key = new KmsKey(this, "state-key", {
      description: `${config.namePrefix}: encrypts the Terraform state of every env (it holds their generated secrets)`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: stateKeyPolicy(access, root, config.region),
      // Without this key no env's state can be read: Terraform refuses to destroy it.
      lifecycle: { preventDestroy: true },
    });
    new KmsAlias(this, "state-key-alias", { name: stateKeyAlias(config.namePrefix), targetKeyId: key.keyId });

    const bucketArn = `arn:${partition}:s3:::${names.stateBucket}`;
    this.bucket = new SecureBucket(this, "state", {
      bucketName: names.stateBucket,
      kmsKeyArn: key.arn,
      extraPolicyStatements: stateDenyStatements(access, bucketArn, root),
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
