/**
 * IAM: one role per node role, each holding only what that role does, scoped to this
 * cluster; only the worker passes roles, exactly the two EMR roles; the EMR roles carry the
 * v2 service policy and the data access the Spark job needs. Each AWS concern's statements
 * are checked on their own (pure functions), and the roles as their composition. What the
 * policies allow is evaluated in iam-evaluate.test.ts.
 */
import { IamInstanceProfile } from "@cdktf/provider-aws/lib/iam-instance-profile";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import { NodeRole, roleSecrets } from "../../modules/contract";
import {
  ClusterIam,
  ClusterIamProps,
  Statements,
  artifactsReadStatements,
  bucketKeyStatements,
  dataStatements,
  efsStatements,
  emrControlStatements,
  emrInstanceS3Statements,
  emrWatchStatements,
  remoteLogStatements,
  sesStatements,
  telemetryStatements,
  sessionManagerStatements,
  settingsReadStatements,
  workerDrainStatements,
  nodeHealthStatements,
} from "../../modules/iam";
import { Statement, policyStatements, resourcesOf, synthCompute } from "./compute-fixtures";
import { bareStack } from "./helpers";

const bySid = (statements: Statement[], sid: string): Statement => {
  const s = statements.find((x) => x.sid === sid);
  if (!s) throw new Error(`no statement ${sid}; have ${statements.map((x) => x.sid).join(", ")}`);
  return s;
};

const CELERY_ROLES = ["api-server", "scheduler", "worker"] as const;

describe("node roles", () => {
  // GIVEN the default (dev, CeleryExecutor) compute plane
  const { json, parsed } = synthCompute({ notificationEmail: "team@example.com" });
  const doc = (role: NodeRole): Statement[] => policyStatements(parsed, `_${role}-doc`);

  it.each(CELERY_ROLES.map((r) => [r]))(
    "GIVEN CeleryExecutor WHEN synthesized THEN %s has its own role and instance profile, which EC2 alone may assume",
    (role) => {
      expect(json).toHaveResourceWithProperties(IamRole, { name: `airflow-dev-us-east-1-${role}` });
      expect(json).toHaveResourceWithProperties(IamInstanceProfile, {
        name: `airflow-dev-us-east-1-${role}`,
      });
      expect(policyStatements(parsed, "node-assume")).toEqual([
        expect.objectContaining({
          actions: ["sts:AssumeRole"],
          principals: [{ type: "Service", identifiers: ["ec2.amazonaws.com"] }],
        }),
      ]);
    },
  );

  it("GIVEN CeleryExecutor WHEN synthesized THEN there is no shared node role and no standalone role", () => {
    const names = Object.values(resourcesOf(parsed, "aws_iam_role")).map((r) => String(r.name));
    expect(names.sort()).toEqual([
      "airflow-dev-us-east-1-api-server",
      "airflow-dev-us-east-1-emr-ec2",
      "airflow-dev-us-east-1-emr-service",
      "airflow-dev-us-east-1-scheduler",
      "airflow-dev-us-east-1-worker",
    ]);
  });

  it("GIVEN any node role WHEN synthesized THEN no AWS managed policy is attached to it (only the EMR service role has one)", () => {
    const attached = Object.values(resourcesOf(parsed, "aws_iam_role_policy_attachment")).map((a) =>
      String(a.role),
    );
    expect(attached).toEqual([expect.stringMatching(/emr-service-role/)]);
  });

  it.each(CELERY_ROLES.map((r) => [r]))(
    "GIVEN the %s policy WHEN synthesized THEN no action is a wildcard and '*' resources are conditioned or unscopable",
    (role) => {
      // ssmmessages (Session Manager channels) supports no resource-level scoping.
      const unscopable = ["OpenSessionChannels"];
      for (const s of doc(role)) {
        for (const a of s.actions ?? []) expect(a).not.toMatch(/(^\*$|:\*$)/);
        if ((s.resources ?? []).includes("*")) {
          const allowedStar = unscopable.includes(s.sid ?? "") || (s.condition ?? []).length > 0;
          expect({ sid: s.sid, allowedStar }).toEqual({ sid: s.sid, allowedStar: true });
        }
      }
    },
  );

  it.each(CELERY_ROLES.map((r) => [r]))(
    "GIVEN the %s policy WHEN synthesized THEN it reads exactly its contract secrets, by full name",
    (role) => {
      const s = bySid(doc(role), "ReadRoleSecrets");
      expect(s.actions).toEqual(["secretsmanager:GetSecretValue"]);
      const keys = (s.resources ?? []).map((r) => /:secret:airflow\/dev\/([a-z-]+)-\?{6}$/.exec(r)?.[1]);
      expect(keys.sort()).toEqual([...roleSecrets(role)].sort());
    },
  );

  it.each(CELERY_ROLES.map((r) => [r]))(
    "GIVEN the %s policy WHEN synthesized THEN kms:Decrypt of the secrets key works through Secrets Manager/SSM only",
    (role) => {
      const s = bySid(doc(role), "DecryptSecretsViaService");
      expect(s.actions).toEqual(["kms:Decrypt"]);
      expect(s.condition).toEqual([
        {
          test: "StringEquals",
          variable: "kms:ViaService",
          values: ["secretsmanager.us-east-1.amazonaws.com", "ssm.us-east-1.amazonaws.com"],
        },
      ]);
    },
  );

  it("GIVEN the node policies WHEN synthesized THEN only the worker may pass roles, exactly the EMR service and EC2 roles", () => {
    for (const role of ["api-server", "scheduler"] as const) {
      expect(
        doc(role)
          .flatMap((s) => s.actions ?? [])
          .filter((a) => a.startsWith("iam:")),
      ).toEqual([]);
    }
    const pass = doc("worker").filter((s) => (s.actions ?? []).includes("iam:PassRole"));
    expect(pass.flatMap((s) => s.resources ?? []).sort()).toEqual([
      expect.stringMatching(/^\$\{aws_iam_role\.compute_iam_emr-ec2-role_[0-9A-F]+\.arn\}$/),
      expect.stringMatching(/^\$\{aws_iam_role\.compute_iam_emr-service-role_[0-9A-F]+\.arn\}$/),
    ]);
    for (const s of pass) expect(s.actions).toEqual(["iam:PassRole"]);
  });

  it("GIVEN the worker policy WHEN synthesized THEN it completes hooks and sets scale-in protection on its own group only, with no ec2:DescribeTags", () => {
    const complete = bySid(doc("worker"), "CompleteOwnLaunchAndReportOwnHealth");
    expect(complete.actions).toContain("autoscaling:CompleteLifecycleAction");
    expect(bySid(doc("worker"), "ProtectWhileBusy").actions).toEqual(["autoscaling:SetInstanceProtection"]);
    for (const s of [complete, bySid(doc("worker"), "ProtectWhileBusy")]) {
      expect(s.resources).toEqual([
        expect.stringMatching(/:autoScalingGroup:\*:autoScalingGroupName\/airflow-dev-worker$/),
      ]);
    }
    // the group name comes from the instance metadata tags
    for (const role of CELERY_ROLES) {
      expect(doc(role).flatMap((s) => s.actions ?? [])).not.toContain("ec2:DescribeTags");
    }
  });

  it("GIVEN a notification e-mail WHEN synthesized THEN the roles that run tasks and callbacks send only as the SES identity", () => {
    for (const role of ["scheduler", "worker"] as const) {
      const s = bySid(doc(role), "SendMailAsIdentity");
      expect(s.actions?.sort()).toEqual(["ses:SendEmail", "ses:SendRawEmail"]);
      expect(s.resources).toEqual([expect.stringMatching(/^\$\{aws_ses_email_identity\.[\w-]+\.arn\}$/)]);
    }
    expect(
      doc("api-server")
        .flatMap((s) => s.actions ?? [])
        .filter((a) => a.startsWith("ses:")),
    ).toEqual([]);
  });
});

describe("LocalExecutor", () => {
  const { parsed } = synthCompute({ executor: "LocalExecutor" });

  it("GIVEN LocalExecutor WHEN synthesized THEN the standalone node has the one node role, with the standalone secrets", () => {
    const names = Object.values(resourcesOf(parsed, "aws_iam_role")).map((r) => String(r.name));
    expect(names.filter((n) => !n.includes("-emr-"))).toEqual(["airflow-dev-us-east-1-standalone"]);
    const s = bySid(policyStatements(parsed, "_standalone-doc"), "ReadRoleSecrets");
    expect(s.resources?.length).toBe(roleSecrets("standalone").length);
  });
});

describe("without a notification e-mail", () => {
  it("GIVEN no notification e-mail WHEN synthesized THEN no SES permission is granted", () => {
    // GIVEN no notificationEmail WHEN synthesized
    const { parsed } = synthCompute();
    // THEN
    for (const role of CELERY_ROLES) {
      const actions = policyStatements(parsed, `_${role}-doc`).flatMap((s) => s.actions ?? []);
      expect(actions.filter((a) => a.startsWith("ses:"))).toEqual([]);
    }
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
    expect(json).toHaveResourceWithProperties(IamInstanceProfile, { name: "airflow-dev-us-east-1-emr-ec2" });
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
        secretKeys: ["db-password"],
        secretsKeyArn: "SECRETS-KEY",
      }),
    ["kms", "secretsmanager", "ssm"],
  ],
  ["sessionManagerStatements", () => sessionManagerStatements(aws), ["ssm", "ssmmessages"]],
  [
    "remoteLogStatements",
    () => remoteLogStatements({ logBucketArn: "LOGS", remoteLogPrefix: "REMOTE-LOGS", write: true }),
    ["s3"],
  ],
  [
    "remoteLogStatements (read-only)",
    () => remoteLogStatements({ logBucketArn: "LOGS", remoteLogPrefix: "REMOTE-LOGS", write: false }),
    ["s3"],
  ],
  ["artifactsReadStatements", () => artifactsReadStatements("ARTIFACTS"), ["s3"]],
  ["dataStatements", () => dataStatements("DATA"), ["s3"]],
  [
    "emrInstanceS3Statements",
    () => emrInstanceS3Statements({ ...bucketArns, emrLogPrefix: "EMR-LOGS" }),
    ["s3"],
  ],
  ["bucketKeyStatements", () => bucketKeyStatements("REGION", "BUCKET-KEY"), ["kms"]],
  ["efsStatements", () => efsStatements("FILE-SYSTEM", true), ["elasticfilesystem"]],
  ["emrWatchStatements", () => emrWatchStatements({ aws, clusterTag: "PREFIX" }), ["elasticmapreduce"]],
  [
    "emrControlStatements",
    () =>
      emrControlStatements({
        aws,
        clusterTag: "PREFIX",
        serviceRoleArn: "EMR-SERVICE-ROLE",
        ec2RoleArn: "EMR-EC2-ROLE",
      }),
    ["elasticmapreduce", "iam"],
  ],
  ["workerDrainStatements", () => workerDrainStatements({ aws, resourcePrefix: "PREFIX" }), ["autoscaling"]],
  ["sesStatements", () => sesStatements("SES-IDENTITY"), ["ses"]],
  ["nodeHealthStatements", () => nodeHealthStatements(aws, "PREFIX", "scheduler"), ["autoscaling"]],
  [
    "telemetryStatements",
    () =>
      telemetryStatements({ aws, role: "scheduler", parameterPrefix: "/PARAMS", resourcePrefix: "PREFIX" }),
    ["cloudwatch", "logs"],
  ],
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

  it.each<[NodeRole, string[]]>([
    [
      "api-server",
      [
        "sessionManagerStatements",
        "settingsReadStatements",
        "remoteLogStatements (read-only)",
        "bucketKeyStatements",
        "efsStatements",
        "nodeHealthStatements",
        "telemetryStatements",
      ],
    ],
    [
      "scheduler",
      [
        "sessionManagerStatements",
        "settingsReadStatements",
        "remoteLogStatements",
        "artifactsReadStatements",
        "bucketKeyStatements",
        "efsStatements",
        "emrWatchStatements",
        "nodeHealthStatements",
        "sesStatements",
        "telemetryStatements",
      ],
    ],
    [
      "worker",
      [
        "sessionManagerStatements",
        "settingsReadStatements",
        "remoteLogStatements",
        "artifactsReadStatements",
        "dataStatements",
        "bucketKeyStatements",
        "efsStatements",
        "emrWatchStatements",
        "emrControlStatements",
        "workerDrainStatements",
        "nodeHealthStatements",
        "sesStatements",
        "telemetryStatements",
      ],
    ],
  ])("GIVEN the %s role WHEN synthesized THEN its policy is exactly the statements of %j", (role, names) => {
    expect(sids(policyStatements(parsed, `_${role}-doc`))).toEqual(sids(names.flatMap(concern)));
  });

  it.each<[NodeRole, boolean, string]>([
    ["api-server", false, "s3:GetObject"],
    ["scheduler", true, "s3:PutObject"],
    ["worker", true, "s3:PutObject"],
  ])(
    "GIVEN the %s role WHEN synthesized THEN it writes remote logs: %s, and the bucket key follows",
    (role, write, lastAction) => {
      const st = policyStatements(parsed, `_${role}-doc`);
      expect(bySid(st, write ? "ReadWriteRemoteLogs" : "ReadRemoteLogs").actions?.at(-1)).toBe(lastAction);
      expect(bySid(st, "UseBucketKeyThroughS3").actions).toEqual(
        write ? ["kms:Decrypt", "kms:GenerateDataKey"] : ["kms:Decrypt"],
      );
    },
  );

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
    nodeRoles: ["api-server", "scheduler", "worker"],
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

  it.each<[keyof ClusterIamProps, unknown]>([
    ["parameterPrefix", ""],
    ["parameterPrefix", "/airflow/dev/"],
    ["parameterPrefix", "airflow/dev"],
    ["secretPrefix", ""],
    ["secretPrefix", "airflow/dev/"],
    ["secretPrefix", "/airflow/dev"],
    ["nodeRoles", []],
    ["nodeRoles", ["worker", "worker"]],
    ["nodeRoles", ["flower"]],
  ])(
    "GIVEN %s %j, which would widen or break the grants, WHEN constructed THEN one line names it",
    (field, got) => {
      expect(() => new ClusterIam(bareStack(), "iam", { ...props, [field]: got })).toThrow(
        new RegExp(`^test/iam: ${field}: got ${JSON.stringify(got).replace(/[[\]]/g, "\\$&")}; allowed: `),
      );
    },
  );
});
