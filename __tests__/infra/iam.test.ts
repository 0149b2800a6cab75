/**
 * IAM: the node role holds only what nodes need, scoped to this cluster; iam:PassRole
 * names exactly the two EMR roles; the EMR roles carry the v2 service policy and the
 * data access the Spark job needs.
 */
import { IamInstanceProfile } from "@cdktf/provider-aws/lib/iam-instance-profile";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import { Statement, policyStatements, resourcesOf, synthCompute } from "./compute-fixtures";

const bySid = (statements: Statement[], sid: string): Statement => {
  const s = statements.find((x) => x.sid === sid);
  if (!s) throw new Error(`no statement ${sid}; have ${statements.map((x) => x.sid).join(", ")}`);
  return s;
};

describe("node role", () => {
  // GIVEN the default (dev, CeleryExecutor) compute plane
  const { json, parsed } = synthCompute({ notificationEmail: "team@example.com" });
  const node = policyStatements(parsed, "node-doc");

  it("is assumable by EC2 only and exposed as an instance profile", () => {
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
    "has the managed policy %s",
    (policy) => {
      const arns = Object.values(resourcesOf(parsed, "aws_iam_role_policy_attachment"))
        .filter((a) => String(a.role).includes("node-role"))
        .map((a) => String(a.policy_arn));
      expect(arns).toContainEqual(expect.stringMatching(new RegExp(`:iam::aws:policy/${policy}$`)));
    },
  );

  it("grants no wildcard action and no unconditioned '*' resource outside unscopable read-only lookups", () => {
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

  it("lets a worker find its group by tag and complete only this cluster's lifecycle hooks", () => {
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
  ])("scopes %s to this cluster's resources", (sid, pattern) => {
    const s = bySid(node, sid);
    expect(s.resources?.length).toBeGreaterThan(0);
    for (const r of s.resources ?? []) expect(r).toMatch(pattern);
  });

  it("lets kms:Decrypt through Secrets Manager/SSM only", () => {
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

  it("limits iam:PassRole to exactly the EMR service role and the EMR EC2 role", () => {
    const pass = node.filter((s) => (s.actions ?? []).includes("iam:PassRole"));
    const resources = pass.flatMap((s) => s.resources ?? []).sort();
    expect(resources).toEqual([
      expect.stringMatching(/^\$\{aws_iam_role\.compute_iam_emr-ec2-role_[0-9A-F]+\.arn\}$/),
      expect.stringMatching(/^\$\{aws_iam_role\.compute_iam_emr-service-role_[0-9A-F]+\.arn\}$/),
    ]);
    for (const s of pass) expect(s.actions).toEqual(["iam:PassRole"]);
  });

  it("may create EMR clusters only with the v2 managed-policy tag and manage only tagged ones", () => {
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

  it("sends mail only as the SES identity", () => {
    const s = bySid(node, "SendMailAsIdentity");
    expect(s.actions?.sort()).toEqual(["ses:SendEmail", "ses:SendRawEmail"]);
    expect(s.resources).toEqual([expect.stringMatching(/^\$\{aws_ses_email_identity\.[\w-]+\.arn\}$/)]);
  });
});

describe("without a notification e-mail", () => {
  it("grants no SES permission at all", () => {
    // GIVEN no notificationEmail WHEN synthesized
    const { parsed } = synthCompute();
    // THEN
    const actions = policyStatements(parsed, "node-doc").flatMap((s) => s.actions ?? []);
    expect(actions.filter((a) => a.startsWith("ses:"))).toEqual([]);
  });
});

describe("EMR roles", () => {
  const { json, parsed } = synthCompute();

  it("service role: AmazonEMRServicePolicy_v2, trusted by EMR of this account only", () => {
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

  it("service role may pass exactly the EMR EC2 role to EC2 (the v2 policy only knows EMR_EC2_DefaultRole)", () => {
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

  it("EC2 role: data r/w, artifacts read-only, EMR logs write under emr-logs/", () => {
    const st = policyStatements(parsed, "emr-ec2-doc");
    expect(bySid(st, "ReadWriteData").resources).toEqual(["${aws_s3_bucket.data.arn}/*"]);
    expect(bySid(st, "ReadArtifacts").actions).toEqual(["s3:GetObject"]);
    expect(bySid(st, "WriteEmrLogs").resources).toEqual(["${aws_s3_bucket.logs.arn}/emr-logs/*"]);
    expect(json).toHaveResourceWithProperties(IamInstanceProfile, { name: "airflow-dev-emr-ec2" });
  });
});
