/**
 * IAM: the node role holds only what nodes need, scoped to this cluster; iam:PassRole
 * names exactly the two EMR roles; the EMR roles carry the v2 service policy and the
 * data access the Spark job needs. Each AWS concern's statements are checked on their own
 * (pure functions), and the roles as their composition.
 */
import { IamInstanceProfile } from "@cdktf/provider-aws/lib/iam-instance-profile";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import {
  ClusterIam,
  ClusterIamProps,
  Statements,
  bucketKeyStatements,
  efsStatements,
  emrControlStatements,
  emrInstanceS3Statements,
  s3Statements,
  sesStatements,
  settingsReadStatements,
  workerDrainStatements,
} from "../../modules/iam";
import { Statement, policyStatements, resourcesOf, synthCompute } from "./compute-fixtures";
import { bareStack } from "./helpers";

const bySid = (statements: Statement[], sid: string): Statement => {
  const s = statements.find((x) => x.sid === sid);
  if (!s) throw new Error(`no statement ${sid}; have ${statements.map((x) => x.sid).join(", ")}`);
  return s;
};

describe("node role", () => {
  // GIVEN the default (dev, CeleryExecutor) compute plane
  const { json, parsed } = synthCompute({ notificationEmail: "team@example.com" });
  const node = policyStatements(parsed, "node-doc");

  it("GIVEN the node role WHEN synthesized THEN EC2 alone may assume it, through an instance profile", () => {
    // THEN
    const trust = policyStatements(parsed, "node-assume");
    expect(trust).toEqual([
      expect.objectContaining({
        actions: ["sts:AssumeRole"],
        principals: [{ type: "Service", identifiers: ["ec2.amazonaws.com"] }],
      }),
    ]);
    expect(json).toHaveResourceWithProperties(IamRole, { name: "airflow-dev-node" });
    expect(json).toHaveResourceWithProperties(IamInstanceProfile, { name: "airflow-dev-node" });
  });

  it.each([["AmazonSSMManagedInstanceCore"], ["CloudWatchAgentServerPolicy"]])(
    "GIVEN the node role WHEN synthesized THEN it has the managed policy %s",
    (policy) => {
      const arns = Object.values(resourcesOf(parsed, "aws_iam_role_policy_attachment"))
        .filter((a) => String(a.role).includes("node-role"))
        .map((a) => String(a.policy_arn));
      expect(arns).toContainEqual(expect.stringMatching(new RegExp(`:iam::aws:policy/${policy}$`)));
    },
  );

  it("GIVEN the node policy WHEN synthesized THEN no action is a wildcard and '*' resources are conditioned or unscopable lookups", () => {
    // elasticmapreduce:ListClusters and ec2:DescribeTags support no resource-level scoping.
    const unscopable = ["ListEmrClusters", "FindOwnAutoScalingGroup"];
    for (const s of node) {
      for (const a of s.actions ?? []) expect(a).not.toMatch(/(^\*$|:\*$)/);
      if ((s.resources ?? []).includes("*")) {
        const allowedStar = unscopable.includes(s.sid ?? "") || (s.condition ?? []).length > 0;
        expect({ sid: s.sid, allowedStar }).toEqual({ sid: s.sid, allowedStar: true });
      }
    }
  });

  it("GIVEN the node policy WHEN synthesized THEN a worker finds its group by tag and completes only this cluster's lifecycle hooks", () => {
    expect(bySid(node, "FindOwnAutoScalingGroup").actions).toEqual(["ec2:DescribeTags"]);
    const complete = bySid(node, "CompleteOwnLifecycleActions");
    expect(complete.actions).toContain("autoscaling:CompleteLifecycleAction");
    for (const r of complete.resources ?? []) expect(r).toMatch(/:autoScalingGroupName\/airflow-dev-\*$/);
  });

  it.each([
    ["ReadClusterParameters", /:parameter\/airflow\/dev(\/\*)?$/],
    ["ReadClusterSecrets", /:secret:airflow\/dev\/\*$/],
    ["ReadWriteRemoteLogs", /aws_s3_bucket\.logs\.arn\}\/airflow-logs\/\*$/],
    ["ReadArtifacts", /aws_s3_bucket\.artifacts\.arn\}\/\*$/],
    ["ReadWriteData", /aws_s3_bucket\.data\.arn\}\/\*$/],
    ["MountFileSystem", /aws_efs_file_system\.efs\.arn\}$/],
  ])(
    "GIVEN the node policy WHEN synthesized THEN %s is scoped to this cluster's resources",
    (sid, pattern) => {
      const s = bySid(node, sid);
      expect(s.resources?.length).toBeGreaterThan(0);
      for (const r of s.resources ?? []) expect(r).toMatch(pattern);
    },
  );

  it("GIVEN the node policy WHEN synthesized THEN kms:Decrypt works through Secrets Manager/SSM only", () => {
    const s = bySid(node, "DecryptSecretsViaService");
    expect(s.actions).toEqual(["kms:Decrypt"]);
    expect(s.condition).toEqual([
      {
        test: "StringEquals",
        variable: "kms:ViaService",
        values: ["secretsmanager.us-east-1.amazonaws.com", "ssm.us-east-1.amazonaws.com"],
      },
    ]);
  });

  it("GIVEN the node policy WHEN synthesized THEN iam:PassRole names exactly the EMR service role and the EMR EC2 role", () => {
    const pass = node.filter((s) => (s.actions ?? []).includes("iam:PassRole"));
    const resources = pass.flatMap((s) => s.resources ?? []).sort();
    expect(resources).toEqual([
      expect.stringMatching(/^\$\{aws_iam_role\.compute_iam_emr-ec2-role_[0-9A-F]+\.arn\}$/),
      expect.stringMatching(/^\$\{aws_iam_role\.compute_iam_emr-service-role_[0-9A-F]+\.arn\}$/),
    ]);
    for (const s of pass) expect(s.actions).toEqual(["iam:PassRole"]);
  });

  it("GIVEN the node policy WHEN synthesized THEN EMR clusters are created only with the v2 managed-policy tag and only tagged ones managed", () => {
    const create = bySid(node, "CreateTaggedEmrClusters");
    expect(create.actions).toContain("elasticmapreduce:RunJobFlow");
    expect(create.condition).toEqual([
      {
        test: "StringEquals",
        variable: "aws:RequestTag/for-use-with-amazon-emr-managed-policies",
        values: ["true"],
      },
    ]);
    const manage = bySid(node, "ManageTaggedEmrClusters");
    expect(manage.actions).toEqual(
      expect.arrayContaining([
        "elasticmapreduce:DescribeCluster",
        "elasticmapreduce:DescribeStep",
        "elasticmapreduce:ListSteps",
        "elasticmapreduce:AddJobFlowSteps",
        "elasticmapreduce:TerminateJobFlows",
      ]),
    );
    expect(manage.condition?.[0].variable).toBe("aws:ResourceTag/for-use-with-amazon-emr-managed-policies");
  });

  it("GIVEN a notification e-mail WHEN synthesized THEN nodes send mail only as the SES identity", () => {
    const s = bySid(node, "SendMailAsIdentity");
    expect(s.actions?.sort()).toEqual(["ses:SendEmail", "ses:SendRawEmail"]);
    expect(s.resources).toEqual([expect.stringMatching(/^\$\{aws_ses_email_identity\.[\w-]+\.arn\}$/)]);
  });
});

describe("without a notification e-mail", () => {
  it("GIVEN no notification e-mail WHEN synthesized THEN no SES permission is granted", () => {
    // GIVEN no notificationEmail WHEN synthesized
    const { parsed } = synthCompute();
    // THEN
    const actions = policyStatements(parsed, "node-doc").flatMap((s) => s.actions ?? []);
    expect(actions.filter((a) => a.startsWith("ses:"))).toEqual([]);
  });
});

describe("EMR roles", () => {
  const { json, parsed } = synthCompute();

  it("GIVEN the EMR service role WHEN synthesized THEN it has AmazonEMRServicePolicy_v2 and trusts EMR of this account only", () => {
    const attached = Object.values(resourcesOf(parsed, "aws_iam_role_policy_attachment"))
      .filter((a) => String(a.role).includes("emr-service-role"))
      .map((a) => String(a.policy_arn));
    expect(attached).toEqual([
      expect.stringMatching(/:iam::aws:policy\/service-role\/AmazonEMRServicePolicy_v2$/),
    ]);
    const trust = policyStatements(parsed, "emr-service-assume")[0];
    expect(trust.principals).toEqual([{ type: "Service", identifiers: ["elasticmapreduce.amazonaws.com"] }]);
    expect(trust.condition?.[0].variable).toBe("aws:SourceAccount");
  });

  it("GIVEN the EMR service role WHEN synthesized THEN it may pass exactly the EMR EC2 role to EC2 (the v2 policy only knows EMR_EC2_DefaultRole)", () => {
    const [s] = policyStatements(parsed, "emr-service-pass-doc");
    expect(s.actions).toEqual(["iam:PassRole"]);
    expect(s.resources).toEqual([
      expect.stringMatching(/^\$\{aws_iam_role\.compute_iam_emr-ec2-role_[0-9A-F]+\.arn\}$/),
    ]);
    expect(s.condition?.[0]).toEqual({
      test: "StringLike",
      variable: "iam:PassedToService",
      values: ["ec2.amazonaws.com*"],
    });
  });

  it("GIVEN the EMR EC2 role WHEN synthesized THEN it has data r/w, artifacts read-only and EMR log writes under emr-logs/", () => {
    const st = policyStatements(parsed, "emr-ec2-doc");
    expect(bySid(st, "ReadWriteData").resources).toEqual(["${aws_s3_bucket.data.arn}/*"]);
    expect(bySid(st, "ReadArtifacts").actions).toEqual(["s3:GetObject"]);
    expect(bySid(st, "WriteEmrLogs").resources).toEqual(["${aws_s3_bucket.logs.arn}/emr-logs/*"]);
    expect(json).toHaveResourceWithProperties(IamInstanceProfile, { name: "airflow-dev-emr-ec2" });
  });
});

// Marker inputs: every resource a concern grants must be built from one of them.
const aws = { partition: "PARTITION", region: "REGION", account: "ACCOUNT" };
const bucketArns = { artifactsBucketArn: "ARTIFACTS", dataBucketArn: "DATA", logBucketArn: "LOGS" };

/** Each concern with the services whose actions it may grant (the concern's definition). */
const concerns: readonly (readonly [string, () => Statements, readonly string[]])[] = [
  [
    "settingsReadStatements",
    () =>
      settingsReadStatements({
        aws,
        parameterPrefix: "/PARAMS",
        secretPrefix: "SECRETS",
        secretsKeyArn: "SECRETS-KEY",
      }),
    ["kms", "secretsmanager", "ssm"],
  ],
  ["s3Statements", () => s3Statements({ ...bucketArns, remoteLogPrefix: "REMOTE-LOGS" }), ["s3"]],
  [
    "emrInstanceS3Statements",
    () => emrInstanceS3Statements({ ...bucketArns, emrLogPrefix: "EMR-LOGS" }),
    ["s3"],
  ],
  ["bucketKeyStatements", () => bucketKeyStatements("REGION", "BUCKET-KEY"), ["kms"]],
  ["efsStatements", () => efsStatements("FILE-SYSTEM"), ["elasticfilesystem"]],
  [
    "emrControlStatements",
    () => emrControlStatements({ aws, serviceRoleArn: "EMR-SERVICE-ROLE", ec2RoleArn: "EMR-EC2-ROLE" }),
    ["elasticmapreduce", "iam"],
  ],
  [
    "workerDrainStatements",
    () => workerDrainStatements({ aws, resourcePrefix: "PREFIX" }),
    ["autoscaling", "ec2"],
  ],
  ["sesStatements", () => sesStatements("SES-IDENTITY"), ["ses"]],
];
const concern = (name: string): Statements => {
  const c = concerns.find(([n]) => n === name);
  if (!c) throw new Error(`no concern ${name}`);
  return c[1]();
};
const sids = (statements: readonly { sid?: string }[]): string[] => statements.map((x) => x.sid ?? "").sort();
/** Every marker the concerns above are called with. */
const MARKERS = [
  ...Object.values(aws),
  ...Object.values(bucketArns),
  "PARAMS",
  "SECRETS",
  "SECRETS-KEY",
  "REMOTE-LOGS",
  "EMR-LOGS",
  "BUCKET-KEY",
  "FILE-SYSTEM",
  "EMR-SERVICE-ROLE",
  "EMR-EC2-ROLE",
  "PREFIX",
  "SES-IDENTITY",
];

describe("policy statements by AWS concern", () => {
  it.each(concerns)(
    "GIVEN %s WHEN called THEN it grants actions of exactly its own services",
    (_n, make, services) => {
      const granted = new Set(make().flatMap((st) => (st.actions ?? []).map((a) => a.split(":")[0])));
      expect([...granted].sort()).toEqual([...services].sort());
    },
  );

  it.each(concerns)(
    "GIVEN %s WHEN called with marker inputs THEN every resource but an unscopable '*' is built from them",
    (_n, make) => {
      for (const st of make()) {
        for (const r of st.resources ?? []) {
          if (r === "*") continue;
          expect({ sid: st.sid, r, fromInputs: MARKERS.some((m) => r.includes(m)) }).toEqual({
            sid: st.sid,
            r,
            fromInputs: true,
          });
        }
      }
    },
  );

  it.each([
    ["sesStatements", () => sesStatements(undefined)],
    ["bucketKeyStatements", () => bucketKeyStatements("REGION", undefined)],
  ])("GIVEN %s WHEN its optional ARN is absent THEN it grants nothing", (_n, make) => {
    expect(make()).toEqual([]);
  });
});

describe("roles composed from the concerns", () => {
  const { parsed } = synthCompute({ notificationEmail: "team@example.com" });

  it("GIVEN the node role WHEN synthesized THEN its policy is exactly the node concerns' statements", () => {
    const node = [
      "settingsReadStatements",
      "s3Statements",
      "efsStatements",
      "emrControlStatements",
      "workerDrainStatements",
      "bucketKeyStatements",
      "sesStatements",
    ].flatMap(concern);
    expect(sids(policyStatements(parsed, "node-doc"))).toEqual(sids(node));
  });

  it("GIVEN the EMR EC2 role WHEN synthesized THEN its policy is exactly the EMR S3 and bucket-key statements", () => {
    const emr = ["emrInstanceS3Statements", "bucketKeyStatements"].flatMap(concern);
    expect(sids(policyStatements(parsed, "emr-ec2-doc"))).toEqual(sids(emr));
  });

  it("GIVEN every policy document WHEN synthesized THEN no Sid repeats within it (IAM requires unique Sids)", () => {
    for (const [name, d] of Object.entries(parsed.data?.aws_iam_policy_document ?? {})) {
      const named = sids((d.statement as Statement[]) ?? []).filter((x) => x !== "");
      expect({ name, named }).toEqual({ name, named: [...new Set(named)] });
    }
  });
});

describe("ClusterIam props", () => {
  const ref = (arn: string) => ({ arn, bucket: arn });
  const props: ClusterIamProps = {
    resourcePrefix: "airflow-dev",
    parameterPrefix: "/airflow/dev",
    secretPrefix: "airflow/dev",
    region: "us-east-1",
    logBucket: ref("logs"),
    artifactsBucket: ref("artifacts"),
    dataBucket: ref("data"),
    fileSystem: ref("efs"),
    secretsKey: ref("key"),
  };

  it("GIVEN this cluster's prefixes WHEN constructed THEN it builds", () => {
    expect(() => new ClusterIam(bareStack(), "iam", props)).not.toThrow();
  });

  it.each<[keyof ClusterIamProps, string]>([
    ["parameterPrefix", ""],
    ["parameterPrefix", "/airflow/dev/"],
    ["parameterPrefix", "airflow/dev"],
    ["secretPrefix", ""],
    ["secretPrefix", "airflow/dev/"],
    ["secretPrefix", "/airflow/dev"],
  ])(
    "GIVEN %s %j, which would widen or break the grants, WHEN constructed THEN one line names it",
    (field, got) => {
      expect(() => new ClusterIam(bareStack(), "iam", { ...props, [field]: got })).toThrow(
        new RegExp(`^test/iam: ${field}: got ${JSON.stringify(got)}; allowed: `),
      );
    },
  );
});
