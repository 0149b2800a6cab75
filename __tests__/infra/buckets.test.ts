import { Testing } from "cdktf";
import { S3BucketPublicAccessBlock } from "@cdktf/provider-aws/lib/s3-bucket-public-access-block";
import { Buckets, ELB_LOG_DELIVERY_SERVICE } from "../../modules/buckets";
import { checkovSkips } from "../../modules/checkov";
import * as path from "node:path";
import { StateStack, stateStackStatePath } from "../../modules/state-stack";
import { Block, bareStack, config, list, resources } from "./helpers";

const KEY = "arn:aws:kms:us-east-1:123456789012:key/test";

interface PolicyDoc {
  statement: {
    sid?: string;
    effect?: string;
    actions?: string[];
    condition?: unknown;
    resources?: string[];
  }[];
}

function synthBuckets(region = "us-east-1"): { synth: string; buckets: Buckets } {
  const stack = bareStack();
  const buckets = new Buckets(stack, "buckets", {
    resourcePrefix: "airflow-dev",
    accountId: "123456789012",
    partition: "aws",
    region,
    kmsKeyArn: KEY,
    logRetentionDays: 30,
  });
  return { synth: Testing.synth(stack), buckets };
}

/** The policy document of the only bucket in a synthesized stack. */
function policyOf(synth: string): PolicyDoc {
  return Object.values(JSON.parse(synth).data.aws_iam_policy_document as Record<string, PolicyDoc>)[0];
}

/** The key policy of the only KMS key in a synthesized stack. */
function keyPolicyOf(synth: string): { Statement: { Sid: string; Action: unknown; Condition?: unknown }[] } {
  return JSON.parse(list(synth, "aws_kms_key")[0].policy as string);
}

/** Encryption rule of the bucket whose logical name contains `role`. */
function encryptionOf(synth: string, role: string): Block {
  const entry = Object.entries(
    JSON.parse(synth).resource.aws_s3_bucket_server_side_encryption_configuration as Record<
      string,
      { rule: Block[] }
    >,
  ).find(([name]) => name.includes(`_${role}_`));
  if (!entry) throw new Error(`no encryption config for ${role}`);
  return entry[1].rule[0];
}

describe("Buckets", () => {
  const { synth, buckets } = synthBuckets();

  it("GIVEN the cluster buckets WHEN synthesized THEN names are account- and region-scoped", () => {
    expect(
      list(synth, "aws_s3_bucket")
        .map((b) => b.bucket)
        .sort(),
    ).toEqual([
      "airflow-dev-access-logs-123456789012-us-east-1",
      "airflow-dev-artifacts-123456789012-us-east-1",
      "airflow-dev-data-123456789012-us-east-1",
      "airflow-dev-logs-123456789012-us-east-1",
    ]);
  });

  it("GIVEN every bucket WHEN synthesized THEN public access is fully blocked, ACLs off and versioning on", () => {
    expect(list(synth, "aws_s3_bucket_public_access_block")).toHaveLength(4);
    expect(synth).toHaveResourceWithProperties(S3BucketPublicAccessBlock, {
      block_public_acls: true,
      block_public_policy: true,
      ignore_public_acls: true,
      restrict_public_buckets: true,
    });
    for (const pab of list(synth, "aws_s3_bucket_public_access_block")) {
      expect(pab).toMatchObject({
        block_public_acls: true,
        block_public_policy: true,
        ignore_public_acls: true,
        restrict_public_buckets: true,
      });
    }
    expect(list(synth, "aws_s3_bucket_ownership_controls").map((o) => o.rule)).toEqual(
      Array(4).fill({ object_ownership: "BucketOwnerEnforced" }),
    );
    expect(list(synth, "aws_s3_bucket_versioning").map((v) => v.versioning_configuration)).toEqual(
      Array(4).fill({ status: "Enabled" }),
    );
  });

  it.each([
    ["logs", "aws:kms"],
    ["data", "aws:kms"],
    ["artifacts", "aws:kms"],
    ["access-logs", "AES256"],
  ])("GIVEN the %s bucket WHEN synthesized THEN SSE is %s", (role, algorithm) => {
    const rule = encryptionOf(synth, role);
    expect(rule.apply_server_side_encryption_by_default).toMatchObject({ sse_algorithm: algorithm });
    if (algorithm === "aws:kms") {
      expect(rule).toMatchObject({
        bucket_key_enabled: true,
        apply_server_side_encryption_by_default: { kms_master_key_id: KEY },
      });
    }
  });

  it("GIVEN every bucket policy WHEN synthesized THEN it denies non-TLS requests", () => {
    const docs = Object.values(JSON.parse(synth).data.aws_iam_policy_document as Record<string, PolicyDoc>);
    expect(docs).toHaveLength(4);
    for (const doc of docs) {
      expect(doc.statement[0]).toMatchObject({
        sid: "DenyInsecureTransport",
        effect: "Deny",
        actions: ["s3:*"],
        condition: [{ test: "Bool", variable: "aws:SecureTransport", values: ["false"] }],
      });
    }
  });

  it("GIVEN the logs bucket WHEN synthesized THEN task logs expire after the log retention and stale uploads are aborted", () => {
    const lifecycles = Object.entries(
      JSON.parse(synth).resource.aws_s3_bucket_lifecycle_configuration as Record<string, { rule: Block[] }>,
    );
    const logs = lifecycles.find(([name]) => name.includes("_logs_") && !name.includes("access-logs"));
    expect(logs?.[1].rule).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: "expire", expiration: [{ days: 30 }] }),
        expect.objectContaining({ abort_incomplete_multipart_upload: [{ days_after_initiation: 7 }] }),
      ]),
    );
  });

  it("GIVEN the KMS buckets WHEN synthesized THEN their access logs go to the access-log bucket", () => {
    const logging = list(synth, "aws_s3_bucket_logging");
    expect(logging).toHaveLength(3);
    for (const l of logging) expect(l.target_bucket).toMatch(/access-logs_bucket/);
  });

  it("GIVEN the access-log bucket WHEN synthesized THEN only S3 logging (under s3/) and ELB (under alb/) may write", () => {
    const docs = Object.entries(JSON.parse(synth).data.aws_iam_policy_document as Record<string, PolicyDoc>);
    const [, doc] = docs.find(([name]) => name.includes("access-logs")) ?? [];
    expect(doc?.statement.map((s) => [s.sid, s.resources])).toEqual([
      ["DenyInsecureTransport", expect.any(Array)],
      ["S3ServerAccessLogs", ["arn:aws:s3:::airflow-dev-access-logs-123456789012-us-east-1/s3/*"]],
      ["LoadBalancerAccessLogs", ["arn:aws:s3:::airflow-dev-access-logs-123456789012-us-east-1/alb/*"]],
    ]);
  });

  it("GIVEN the access-log bucket WHEN checked THEN its KMS exception carries a reason", () => {
    expect(checkovSkips(buckets.accessLogs).map((s) => s.id)).toEqual([
      "CKV2_AWS_62",
      "CKV_AWS_144",
      "CKV_AWS_145",
    ]);
    expect(checkovSkips(buckets.logs).map((s) => s.id)).toEqual(["CKV2_AWS_62", "CKV_AWS_144"]);
  });
});

describe("ELB log delivery principal by region", () => {
  /** The principals of the access-log bucket's LoadBalancerAccessLogs statement. */
  const elbPrincipals = (synth: string) => {
    const docs = JSON.parse(synth).data.aws_iam_policy_document as Record<
      string,
      { statement: { sid?: string; principals?: unknown }[] }
    >;
    const statements = Object.values(docs).flatMap((d) => d.statement);
    return statements.find((s) => s.sid === "LoadBalancerAccessLogs")?.principals;
  };
  const elbAccountData = (synth: string) => JSON.parse(synth).data.aws_elb_service_account ?? {};

  it.each(["us-east-1", "eu-central-1", "ap-southeast-3", "me-south-1", "us-gov-west-1"])(
    "GIVEN %s, which has a legacy ELB account, WHEN synthesized THEN the bucket grants that account (aws_elb_service_account)",
    (region) => {
      const { synth } = synthBuckets(region);
      const data = elbAccountData(synth);
      expect(Object.keys(data)).toHaveLength(1);
      const [name] = Object.keys(data);
      expect(elbPrincipals(synth)).toEqual([
        { type: "AWS", identifiers: [`\${data.aws_elb_service_account.${name}.arn}`] },
      ]);
    },
  );

  it.each([
    "eu-central-2",
    "eu-south-2",
    "ap-southeast-4",
    "ap-south-2",
    "me-central-1",
    "il-central-1",
    "ca-west-1",
    "mx-central-1",
  ])(
    "GIVEN %s, opened after the legacy ELB accounts, WHEN synthesized THEN the bucket grants the log-delivery service and never reads aws_elb_service_account (it fails plan there)",
    (region) => {
      const { synth } = synthBuckets(region);
      expect(elbAccountData(synth)).toEqual({});
      expect(elbPrincipals(synth)).toEqual([{ type: "Service", identifiers: [ELB_LOG_DELIVERY_SERVICE] }]);
    },
  );

  it("GIVEN a region that is not a literal name WHEN built THEN one line names the field and what is allowed", () => {
    expect(() => synthBuckets("${var.region}")).toThrow(
      /buckets: region: got "\$\{var.region\}"; allowed: an AWS region name such as eu-central-1$/,
    );
  });
});

describe("StateStack", () => {
  const app = Testing.app();
  const stack = new StateStack(app, "airflow-state", { config: config() });
  const synth = Testing.synth(stack);
  const json = JSON.parse(synth);

  it("GIVEN the bootstrap stack WHEN synthesized THEN it keeps its own state locally, outside the synth output", () => {
    // Terraform resolves the path from the stack's directory, <outdir>/stacks/<id>/.
    const stackDir = path.join(app.outdir, "stacks", "airflow-state");
    const resolved = path.resolve(stackDir, json.terraform.backend.local.path);
    expect(resolved).toBe(stateStackStatePath("airflow-state"));
    expect(path.relative(app.outdir, resolved).startsWith("..")).toBe(true);
    expect(json.terraform.required_version).toBe(">= 1.10");
  });

  it("GIVEN the state bucket WHEN synthesized THEN it is the configured name, versioned, encrypted with the state key and undeletable", () => {
    const [bucket] = list(synth, "aws_s3_bucket");
    expect(bucket).toMatchObject({ bucket: config().stateBucketName, lifecycle: { prevent_destroy: true } });
    expect(list(synth, "aws_s3_bucket_versioning")[0].versioning_configuration).toEqual({
      status: "Enabled",
    });
    const [keyName] = Object.keys(resources(synth, "aws_kms_key"));
    expect(list(synth, "aws_s3_bucket_server_side_encryption_configuration")[0].rule).toEqual([
      {
        apply_server_side_encryption_by_default: {
          sse_algorithm: "aws:kms",
          kms_master_key_id: `\${aws_kms_key.${keyName}.arn}`,
        },
        bucket_key_enabled: true,
      },
    ]);
  });

  it("GIVEN the state key WHEN synthesized THEN it rotates, is undeletable and carries the alias the cluster backend names", () => {
    expect(list(synth, "aws_kms_key")).toEqual([
      expect.objectContaining({
        enable_key_rotation: true,
        deletion_window_in_days: 30,
        lifecycle: { prevent_destroy: true },
      }),
    ]);
    expect(list(synth, "aws_kms_alias").map((a) => a.name)).toEqual(["alias/airflow/terraform-state"]);
  });

  it("GIVEN no env lists its deployers WHEN synthesized THEN IAM alone decides who reads state (no deny, default key policy)", () => {
    expect(policyOf(synth).statement.map((st) => st.sid)).toEqual(["DenyInsecureTransport"]);
    expect(keyPolicyOf(synth).Statement).toEqual([
      expect.objectContaining({ Sid: "AccountAdministersThroughIam", Action: "kms:*" }),
    ]);
    expect(json.provider.aws[0].allowed_account_ids).toBeUndefined();
  });

  it("GIVEN S3 native locking WHEN synthesized THEN no DynamoDB lock table exists", () => {
    expect(json.resource.aws_dynamodb_table).toBeUndefined();
  });

  it("GIVEN an account id WHEN synthesized THEN the provider refuses credentials of any other account", () => {
    const c = config({ accountId: "123456789012" });
    const s = JSON.parse(Testing.synth(new StateStack(Testing.app(), "airflow-state", { config: c })));
    expect(s.provider.aws[0].allowed_account_ids).toEqual(["123456789012"]);
  });
});

describe("StateStack access per env", () => {
  const DEV = "arn:aws:iam::123456789012:role/dev-deployer";
  const PROD = "arn:aws:iam::123456789012:role/ci/prod-*";
  const ROOT =
    "arn:${data.aws_partition.partition.partition}:iam::${data.aws_caller_identity.account.account_id}:root";
  const synthWith = (envs: ReturnType<typeof config>[]) =>
    Testing.synth(new StateStack(Testing.app(), "airflow-state", { config: envs[0], envs }));
  const bucketArn = `arn:\${data.aws_partition.partition.partition}:s3:::${config().stateBucketName}`;

  it("GIVEN every env lists its deployers WHEN synthesized THEN each env's state and then the bucket are denied to all others", () => {
    const synth = synthWith([
      config({ stateAccessPrincipalArns: [DEV] }),
      config({ env: "prod", stateAccessPrincipalArns: [PROD] }),
    ]);
    expect(
      policyOf(synth)
        .statement.slice(1)
        .map((st) => [st.sid, st.effect, st.actions, st.resources, st.condition]),
    ).toEqual([
      [
        "DenyStateOfDevToOthers",
        "Deny",
        ["s3:*"],
        [`${bucketArn}/airflow/dev/*`],
        [{ test: "ArnNotLike", variable: "aws:PrincipalArn", values: [ROOT, DEV] }],
      ],
      [
        "DenyStateOfProdToOthers",
        "Deny",
        ["s3:*"],
        [`${bucketArn}/airflow/prod/*`],
        [{ test: "ArnNotLike", variable: "aws:PrincipalArn", values: [ROOT, PROD] }],
      ],
      [
        "DenyBucketToNonDeployers",
        "Deny",
        ["s3:*"],
        [bucketArn, `${bucketArn}/*`],
        [{ test: "ArnNotLike", variable: "aws:PrincipalArn", values: [ROOT, PROD, DEV] }],
      ],
    ]);
    const key = keyPolicyOf(synth).Statement;
    expect(key.map((st) => st.Sid)).toEqual(["AccountAdministersThroughIam", "DeployersUseThroughS3"]);
    expect(key[0].Action).not.toContain("kms:Decrypt");
    expect(key[1].Condition).toEqual({
      ArnLike: { "aws:PrincipalArn": [PROD, DEV] },
      StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" },
    });
  });

  it("GIVEN one env without a list WHEN synthesized THEN only the listed env is restricted and its deployers are never locked out", () => {
    const synth = synthWith([config({ stateAccessPrincipalArns: [DEV] }), config({ env: "prod" })]);
    expect(policyOf(synth).statement.map((st) => st.sid)).toEqual([
      "DenyInsecureTransport",
      "DenyStateOfDevToOthers",
    ]);
    expect(keyPolicyOf(synth).Statement).toEqual([expect.objectContaining({ Action: "kms:*" })]);
  });
});
