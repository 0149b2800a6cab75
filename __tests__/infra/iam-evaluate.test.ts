/**
 * What each node role may do, decided by a real IAM policy evaluator
 * (@cloud-copilot/iam-simulate) over the synthesized policy documents: the `${...}`
 * references are replaced by concrete fake ARNs (scripts/policy-documents.js), so the
 * decisions are the ones AWS would make after apply - conditions, wildcards, `??????`
 * secret suffixes and explicit denies included, not string matches.
 */
import { runSimulation } from "@cloud-copilot/iam-simulate";
import {
  CLOUDWATCH_AGENT,
  CONTRACT,
  EMR_CLUSTER_TAG,
  EMR_MANAGED_TAG,
  NodeRole,
  iamName,
  airflowMetricsNamespace,
  logComponents,
  roleSecrets,
} from "../../modules/contract";
import { SynthJson, synthCompute } from "./compute-fixtures";

/** IAM policy JSON. */
type IamPolicy = { Version: string; Statement: Record<string, unknown>[] };
interface PolicyDocumentsModule {
  FAKE_ACCOUNT: string;
  fakeValues(region: string): [RegExp, (name: string) => string][];
  substituteTokens(text: string, fakes: [RegExp, (name: string) => string][]): string;
  policyDocuments(stack: SynthJson, region: string): Record<string, IamPolicy>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const documents = require("../../scripts/policy-documents") as PolicyDocumentsModule;

const REGION = "us-east-1";
const A = documents.FAKE_ACCOUNT;
const CLUSTER = "airflow-dev";

/** The node role policies of a synthesized compute plane, plus the fake ARNs of its resources. */
function synthesized(executor: "CeleryExecutor" | "LocalExecutor") {
  const { parsed } = synthCompute({ executor, notificationEmail: "team@example.com" });
  const policies = documents.policyDocuments(parsed, REGION);
  const policyOf = (role: NodeRole): IamPolicy => {
    const names = Object.keys(policies).filter((n) => n.includes(`_${role}-doc_`));
    if (names.length !== 1) throw new Error(`expected one ${role} policy, got ${names.join(", ")}`);
    return policies[names[0]];
  };
  /** The fake ARN IAM would see for the one resource of `type` whose `attribute` is `value`. */
  const arnOf = (type: string, attribute: string, value: string): string => {
    const hits = Object.entries(parsed.resource[type] ?? {}).filter(([, r]) => r[attribute] === value);
    if (hits.length !== 1)
      throw new Error(`expected one ${type} with ${attribute} ${value}, got ${hits.length}`);
    return documents.substituteTokens(`\${${type}.${hits[0][0]}.arn}`, documents.fakeValues(REGION));
  };
  return { policyOf, arnOf, parsed };
}

const KEY_POLICY = {
  Version: "2012-10-17",
  Statement: [
    {
      Sid: "EnableIamPolicies",
      Effect: "Allow",
      Principal: { AWS: `arn:aws:iam::${A}:root` },
      Action: "kms:*",
      Resource: "*",
    },
  ],
};

type Context = Record<string, string | string[]>;
type Decision = "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied";

/** The evaluator's decision on one request of a principal holding `policy` alone. */
async function decide(
  policy: IamPolicy,
  action: string,
  resource: string,
  context: Context = {},
): Promise<Decision> {
  const out = await runSimulation(
    {
      request: {
        principal: `arn:aws:iam::${A}:role/${CLUSTER}-node`,
        action,
        resource: { resource, accountId: A },
        contextVariables: context,
      },
      identityPolicies: [{ name: "node", policy }],
      // KMS needs its key policy to allow too; the cluster key's (modules/encryption.ts)
      // delegates to IAM in this account, as AWS's default key policy does.
      ...(resource.startsWith("arn:aws:kms:") && { resourcePolicy: KEY_POLICY }),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  // A typo in an action or an ARN of the wrong shape is an error, never a quiet "denied".
  if (out.resultType === "error") throw new Error(`${action} ${resource}: ${JSON.stringify(out.errors)}`);
  return out.overallResult as Decision;
}

// --- requests ------------------------------------------------------------------------
const secret = (key: string): string =>
  `arn:aws:secretsmanager:${REGION}:${A}:secret:airflow/dev/${key}-AbCdEf`;
const parameter = (name: string): string => `arn:aws:ssm:${REGION}:${A}:parameter${name}`;
const emrCluster = (id: string): string => `arn:aws:elasticmapreduce:${REGION}:${A}:cluster/${id}`;
const object = (bucket: string, key: string): string => `arn:aws:s3:::fake-${bucket}/${key}`;
const bucket = (name: string): string => `arn:aws:s3:::fake-${name}`;
const FILE_SYSTEM = `arn:aws:elasticfilesystem:${REGION}:${A}:file-system/fs-efs`;
const KEY = `arn:aws:kms:${REGION}:${A}:key/key`;
const asg = (name: string): string =>
  `arn:aws:autoscaling:${REGION}:${A}:autoScalingGroup:0123abcd-0123-0123-0123-0123456789ab:autoScalingGroupName/${name}`;
const INSTANCE = `arn:aws:ec2:${REGION}:${A}:instance/i-0123456789abcdef0`;

const OWN = { [`aws:ResourceTag/${EMR_CLUSTER_TAG}`]: CLUSTER };
const FOREIGN = { [`aws:ResourceTag/${EMR_CLUSTER_TAG}`]: "airflow-prod" };
/** What DAG_1's RunJobFlow carries: our tag, the managed-policy tag and its airflow:* tags. */
const CREATE: Context = {
  [`aws:RequestTag/${EMR_CLUSTER_TAG}`]: CLUSTER,
  [`aws:RequestTag/${EMR_MANAGED_TAG.key}`]: EMR_MANAGED_TAG.value,
  "aws:TagKeys": [EMR_CLUSTER_TAG, EMR_MANAGED_TAG.key, "airflow:dag_id", "airflow:run_id"],
};
const VIA_SECRETS_MANAGER = { "kms:ViaService": `secretsmanager.${REGION}.amazonaws.com` };
const VIA_S3 = { "kms:ViaService": `s3.${REGION}.amazonaws.com` };

/** One request and the decision a role must get. */
type Case = readonly [string, string, Context, Decision];
const allowed = (action: string, resource: string, context: Context = {}): Case => [
  action,
  resource,
  context,
  "Allowed",
];
const denied = (action: string, resource: string, context: Context = {}): Case => [
  action,
  resource,
  context,
  "ImplicitlyDenied",
];

/** What every node role must be able to do: Session Manager, its settings, decrypting them. */
const EVERY_ROLE: readonly Case[] = [
  allowed("ssm:UpdateInstanceInformation", INSTANCE),
  allowed("ssmmessages:OpenDataChannel", "*"),
  allowed("ssm:GetParameter", parameter("/airflow/dev/db/endpoint")),
  allowed("ssm:GetParametersByPath", parameter("/airflow/dev")),
  allowed("ssm:GetParameter", parameter("/airflow/dev/variables/data_bucket")),
  allowed("kms:Decrypt", KEY, VIA_SECRETS_MANAGER),
  // ...and what none may: other clusters' parameters (a longer name sharing the prefix too),
  // the whole account's, the key outside Secrets Manager/SSM, the DB or cache directly.
  denied("ssm:GetParameter", parameter("/airflow/prod/db/endpoint")),
  denied("ssm:GetParameter", parameter("/airflow/dev2/db/endpoint")),
  denied("ssm:GetParametersByPath", parameter("/airflow")),
  denied(
    "ssm:GetParameter",
    parameter("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"),
  ),
  denied("kms:Decrypt", KEY),
  denied("ssm:SendCommand", INSTANCE),
  denied("elasticmapreduce:AddJobFlowSteps", emrCluster("j-UNTAGGED")),
  denied("elasticmapreduce:AddJobFlowSteps", emrCluster("j-FOREIGN"), FOREIGN),
  denied("elasticmapreduce:TerminateJobFlows", emrCluster("j-FOREIGN"), FOREIGN),
  denied("elasticmapreduce:RunJobFlow", "*", {
    ...CREATE,
    [`aws:RequestTag/${EMR_CLUSTER_TAG}`]: "airflow-prod",
  }),
  denied("s3:PutObject", object("logs", "emr-logs/j-1/steps/s-1/stderr.gz")),
  denied("s3:GetObject", object("logs", "alb/AWSLogs/x.log.gz")),
  denied("elasticfilesystem:ClientRootAccess", FILE_SYSTEM),
];

/** Per role: what it must be able to do and what it must not. */
const ROLE_CASES: Readonly<Record<NodeRole, readonly Case[]>> = {
  "api-server": [
    // the UI shows task logs from S3
    allowed("s3:ListBucket", bucket("logs"), { "s3:prefix": "airflow-logs/dag_id=x/" }),
    allowed("s3:GetObject", object("logs", "airflow-logs/dag_id=x/run_id=y/task_id=z/attempt=1.log")),
    allowed("kms:Decrypt", KEY, VIA_S3),
    allowed("elasticfilesystem:ClientMount", FILE_SYSTEM),
    denied("s3:PutObject", object("logs", "airflow-logs/dag_id=x/run_id=y/task_id=z/attempt=1.log")),
    denied("elasticfilesystem:ClientWrite", FILE_SYSTEM),
    denied("elasticmapreduce:RunJobFlow", "*", CREATE),
    denied("elasticmapreduce:DescribeCluster", emrCluster("j-OWN"), OWN),
    denied("s3:GetObject", object("data", "champion/data/customers.csv")),
    denied("s3:GetObject", object("artifacts", "dags/champion_dag_1_emr.py")),
    denied("autoscaling:CompleteLifecycleAction", asg(`${CLUSTER}-worker`)),
  ],
  scheduler: [
    // the DAG sync copies the artifacts bucket onto EFS; the triggerer uploads its logs
    allowed("s3:ListBucket", bucket("artifacts")),
    allowed("s3:GetObject", object("artifacts", "dags/champion_dag_1_emr.py")),
    allowed("elasticfilesystem:ClientWrite", FILE_SYSTEM),
    allowed("s3:PutObject", object("logs", "airflow-logs/dag_id=x/run_id=y/task_id=z/attempt=1.log")),
    allowed("kms:GenerateDataKey", KEY, VIA_S3),
    // deferred EMR sensors poll from the triggerer, on our clusters only
    allowed("elasticmapreduce:DescribeStep", emrCluster("j-OWN"), OWN),
    allowed("elasticmapreduce:DescribeCluster", emrCluster("j-OWN"), OWN),
    denied("elasticmapreduce:DescribeStep", emrCluster("j-FOREIGN"), FOREIGN),
    denied("elasticmapreduce:RunJobFlow", "*", CREATE),
    denied("elasticmapreduce:TerminateJobFlows", emrCluster("j-OWN"), OWN),
    denied("s3:GetObject", object("data", "champion/data/customers.csv")),
    denied("s3:PutObject", object("artifacts", "dags/evil.py")),
    denied("autoscaling:CompleteLifecycleAction", asg(`${CLUSTER}-worker`)),
  ],
  worker: [
    allowed("s3:GetObject", object("data", "champion/data/customers.csv")),
    allowed("s3:PutObject", object("data", "champion/output/part-0000.csv")),
    allowed("s3:GetObject", object("artifacts", "spark-jobs/0123/sort_customers.py")),
    allowed("s3:PutObject", object("logs", "airflow-logs/dag_id=x/run_id=y/task_id=z/attempt=1.log")),
    // the S3 task handler appends: it lists and reads the log back before writing
    allowed("s3:ListBucket", bucket("logs"), { "s3:prefix": "airflow-logs/dag_id=x/" }),
    allowed("s3:GetObject", object("logs", "airflow-logs/dag_id=x/run_id=y/task_id=z/attempt=1.log")),
    allowed("elasticfilesystem:ClientMount", FILE_SYSTEM),
    // DAG_1 and DAG_2 on our clusters
    allowed("elasticmapreduce:RunJobFlow", "*", CREATE),
    allowed("elasticmapreduce:AddTags", emrCluster("*"), CREATE),
    allowed("elasticmapreduce:PutAutoTerminationPolicy", emrCluster("*")),
    allowed("elasticmapreduce:AddJobFlowSteps", emrCluster("j-OWN"), OWN),
    allowed("elasticmapreduce:TerminateJobFlows", emrCluster("j-OWN"), OWN),
    allowed("elasticmapreduce:DescribeCluster", emrCluster("j-OWN"), OWN),
    allowed("autoscaling:CompleteLifecycleAction", asg(`${CLUSTER}-worker`)),
    allowed("autoscaling:SetInstanceProtection", asg(`${CLUSTER}-worker`)),
    // only its own group: not another role's group of the same cluster
    denied("autoscaling:CompleteLifecycleAction", asg(`${CLUSTER}-scheduler`)),
    denied("autoscaling:SetInstanceProtection", asg(`${CLUSTER}-api-server`)),
    denied("ec2:DescribeTags", "*"),
    // no cluster without our tag, with a foreign one, or with tags beyond airflow:* and the managed one
    denied("elasticmapreduce:RunJobFlow", "*", {
      [`aws:RequestTag/${EMR_MANAGED_TAG.key}`]: EMR_MANAGED_TAG.value,
      "aws:TagKeys": [EMR_MANAGED_TAG.key],
    }),
    denied("elasticmapreduce:RunJobFlow", "*", {
      ...CREATE,
      "aws:TagKeys": [...(CREATE["aws:TagKeys"] as string[]), "owner"],
    }),
    // tagging a foreign cluster as ours (to control it next), or untagging ours, is denied outright
    ["elasticmapreduce:AddTags", emrCluster("j-FOREIGN"), { ...CREATE, ...FOREIGN }, "ExplicitlyDenied"],
    ["elasticmapreduce:AddTags", emrCluster("j-UNTAGGED"), CREATE, "ExplicitlyDenied"],
    ["elasticmapreduce:PutAutoTerminationPolicy", emrCluster("j-FOREIGN"), FOREIGN, "ExplicitlyDenied"],
    denied("elasticmapreduce:RemoveTags", emrCluster("j-OWN"), OWN),
    denied("elasticfilesystem:ClientWrite", FILE_SYSTEM),
    denied("s3:PutObject", object("artifacts", "dags/evil.py")),
    denied("autoscaling:CompleteLifecycleAction", asg("airflow-prod-worker")),
    denied("s3:GetObject", object("other-bucket", "x")),
  ],
  standalone: [
    allowed("elasticfilesystem:ClientWrite", FILE_SYSTEM),
    allowed("s3:PutObject", object("data", "champion/output/part-0000.csv")),
    allowed("elasticmapreduce:RunJobFlow", "*", CREATE),
    allowed("elasticmapreduce:AddJobFlowSteps", emrCluster("j-OWN"), OWN),
    ["elasticmapreduce:AddTags", emrCluster("j-FOREIGN"), { ...CREATE, ...FOREIGN }, "ExplicitlyDenied"],
  ],
};

/**
 * Per role: its own group's launch hook and health (self-healing), and no other group's:
 * a node must not complete another role's hooks or mark another role's nodes unhealthy.
 */
const ownGroupCases = (role: NodeRole): Case[] => {
  const other = role === "scheduler" ? "api-server" : "scheduler";
  return [
    allowed("autoscaling:CompleteLifecycleAction", asg(`${CLUSTER}-${role}`)),
    allowed("autoscaling:SetInstanceHealth", asg(`${CLUSTER}-${role}`)),
    denied("autoscaling:SetInstanceHealth", asg(`${CLUSTER}-${other}`)),
    denied("autoscaling:SetInstanceHealth", asg(`airflow-prod-${role}`)),
    denied("autoscaling:CompleteLifecycleAction", asg(`${CLUSTER}-${other}`)),
    denied("autoscaling:SetDesiredCapacity", asg(`${CLUSTER}-${role}`)),
  ];
};

/** Per role: every contract secret, and whether the role may read it. */
const secretCases = (role: NodeRole, all: readonly string[]): Case[] =>
  all.flatMap((key): Case[] => [
    roleSecrets(role).includes(key)
      ? allowed("secretsmanager:GetSecretValue", secret(key))
      : denied("secretsmanager:GetSecretValue", secret(key)),
    // `<key>-??????`, not `<key>*`: a longer name sharing the prefix is another secret
    denied(
      "secretsmanager:GetSecretValue",
      `arn:aws:secretsmanager:${REGION}:${A}:secret:airflow/dev/${key}-old-AbCdEf`,
    ),
  ]);

const celery = synthesized("CeleryExecutor");
const local = synthesized("LocalExecutor");
const ALL_SECRETS = CONTRACT.secrets.map((s) => s.key);

describe.each<[NodeRole, ReturnType<typeof synthesized>]>([
  ["api-server", celery],
  ["scheduler", celery],
  ["worker", celery],
  ["standalone", local],
])("the %s role, evaluated", (role, stack) => {
  const policy = stack.policyOf(role);
  const cases = [
    ...EVERY_ROLE,
    ...ROLE_CASES[role],
    ...ownGroupCases(role),
    ...secretCases(role, ALL_SECRETS),
  ];

  it.each(cases)(
    `GIVEN the ${role} policy WHEN it requests %s on %s (%j) THEN IAM says %s`,
    async (action, resource, context, expected) => {
      expect(await decide(policy, action, resource, context)).toBe(expected);
    },
  );
});

describe("secrets a worker must never hold", () => {
  it.each([["db-password"], ["fernet-key"], ["jwt-secret"], ["admin-password"], ["flower-password"]])(
    "GIVEN the worker policy WHEN it requests the %s secret THEN IAM denies it",
    async (key) => {
      expect(await decide(celery.policyOf("worker"), "secretsmanager:GetSecretValue", secret(key))).not.toBe(
        "Allowed",
      );
    },
  );
});

describe("the EMR roles a node may pass", () => {
  it("GIVEN the worker policy WHEN it passes this cluster's EMR roles to their services THEN IAM allows exactly that", async () => {
    const worker = celery.policyOf("worker");
    const service = celery.arnOf("aws_iam_role", "name", iamName(CLUSTER, REGION, "emr-service"));
    const ec2 = celery.arnOf("aws_iam_role", "name", iamName(CLUSTER, REGION, "emr-ec2"));
    const to = (svc: string) => ({ "iam:PassedToService": svc });
    expect(await decide(worker, "iam:PassRole", service, to("elasticmapreduce.amazonaws.com"))).toBe(
      "Allowed",
    );
    expect(await decide(worker, "iam:PassRole", ec2, to("ec2.amazonaws.com"))).toBe("Allowed");
    // not to another service, and no other role (e.g. the node's own, to escalate)
    expect(await decide(worker, "iam:PassRole", service, to("lambda.amazonaws.com"))).toBe(
      "ImplicitlyDenied",
    );
    const own = celery.arnOf("aws_iam_role", "name", iamName(CLUSTER, REGION, "scheduler"));
    expect(await decide(worker, "iam:PassRole", own, to("ec2.amazonaws.com"))).toBe("ImplicitlyDenied");
  });

  it.each([["api-server"], ["scheduler"]] as const)(
    "GIVEN the %s policy WHEN it passes the EMR service role THEN IAM denies it",
    async (role) => {
      const service = celery.arnOf("aws_iam_role", "name", iamName(CLUSTER, REGION, "emr-service"));
      expect(
        await decide(celery.policyOf(role), "iam:PassRole", service, {
          "iam:PassedToService": "elasticmapreduce.amazonaws.com",
        }),
      ).toBe("ImplicitlyDenied");
    },
  );
});

describe("DAG e-mail", () => {
  const identity = celery.arnOf("aws_ses_email_identity", "email", "team@example.com");

  it.each<[NodeRole, Decision]>([
    ["api-server", "ImplicitlyDenied"],
    ["scheduler", "Allowed"],
    ["worker", "Allowed"],
  ])(
    "GIVEN the %s policy WHEN it sends as the cluster's SES identity THEN IAM says %s",
    async (role, expected) => {
      expect(await decide(celery.policyOf(role), "ses:SendRawEmail", identity)).toBe(expected);
    },
  );

  it("GIVEN the worker policy WHEN it sends as another identity THEN IAM denies it", async () => {
    const other = `arn:aws:ses:${REGION}:${A}:identity/example.org`;
    expect(await decide(celery.policyOf("worker"), "ses:SendRawEmail", other)).toBe("ImplicitlyDenied");
  });
});

describe("the CloudWatch agent", () => {
  const NAMESPACE = { "cloudwatch:namespace": airflowMetricsNamespace(CLUSTER) };
  const group = (component: string): string =>
    `arn:aws:logs:${REGION}:${A}:log-group:/airflow/dev/airflow/${component}`;
  const stream = (component: string): string => `${group(component)}:log-stream:i-0123456789abcdef0`;

  describe.each<[NodeRole, ReturnType<typeof synthesized>]>([
    ["api-server", celery],
    ["scheduler", celery],
    ["worker", celery],
    ["standalone", local],
  ])("the %s role", (role, stack) => {
    const policy = stack.policyOf(role);
    const own = logComponents(role);
    const others = ["api-server", "flower", "scheduler", "triggerer", "celery-worker"].filter(
      (c) => !own.includes(c),
    );

    it.each<Case>([
      allowed("ssm:GetParameter", parameter(`/airflow/dev/${CLOUDWATCH_AGENT.parameter}`)),
      allowed("cloudwatch:PutMetricData", "*", NAMESPACE),
      denied("cloudwatch:PutMetricData", "*", { "cloudwatch:namespace": "AWS/EC2" }),
      denied("cloudwatch:PutMetricData", "*", {
        "cloudwatch:namespace": airflowMetricsNamespace("airflow-prod"),
      }),
      denied("cloudwatch:PutMetricData", "*"),
      ...own.flatMap((c) => [
        allowed("logs:PutLogEvents", stream(c)),
        allowed("logs:CreateLogStream", stream(c)),
        allowed("logs:DescribeLogStreams", group(c)),
      ]),
      // another role's components, another cluster's groups, and new groups are not its to write
      ...others.map((c) => denied("logs:PutLogEvents", stream(c))),
      denied(
        "logs:PutLogEvents",
        `arn:aws:logs:${REGION}:${A}:log-group:/airflow/prod/airflow/scheduler:log-stream:x`,
      ),
      denied("logs:CreateLogGroup", group("evil")),
      denied("logs:PutRetentionPolicy", group("bootstrap")),
    ])(
      `GIVEN the ${role} policy WHEN it requests %s on %s (%j) THEN IAM says %s`,
      async (a, r, c, expected) => {
        expect(await decide(policy, a, r, c)).toBe(expected);
      },
    );
  });
});
