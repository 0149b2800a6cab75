/**
 * Settings for nodes: the SSM parameters and secrets are exactly the settings contract's
 * keys (a renamed or added key fails here, not at boot), values are wired from the
 * config and the core constructs, and no secret value ever appears in synthesized JSON.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { SsmParameter } from "@cdktf/provider-aws/lib/ssm-parameter";
import { CONTRACT } from "../../modules/contract";
import { Testing } from "cdktf";
import {
  ClusterSecrets,
  ClusterSettings,
  ClusterSettingsProps,
  GENERATED_SECRETS,
  secretKeysFor,
} from "../../modules/settings";
import { resourcesOf, synthCompute } from "./compute-fixtures";

const contractFile = JSON.parse(
  readFileSync(path.join(__dirname, "..", "..", "config", "settings-contract.json"), "utf8"),
) as typeof CONTRACT;
/** Names of the settings parameters (Airflow connections under connections/ are not settings). */
const paramNames = (parsed: ReturnType<typeof synthCompute>["parsed"]): string[] =>
  Object.values(resourcesOf(parsed, "aws_ssm_parameter"))
    .map((p) => String(p.name))
    .filter((n) => !n.startsWith("/airflow/dev/connections/"))
    .sort();
/** Names of every secret in the stack (core stand-ins + generated). */
const secretNames = (parsed: ReturnType<typeof synthCompute>["parsed"]): string[] =>
  Object.values(resourcesOf(parsed, "aws_secretsmanager_secret"))
    .map((s) => String(s.name))
    .sort();

describe.each([["CeleryExecutor"], ["LocalExecutor"]] as const)(
  "GIVEN %s and a notification e-mail WHEN synthesized",
  (executor) => {
    // GIVEN a dev cluster with this executor (and e-mail, so the SMTP connection exists too)
    // WHEN the compute plane is synthesized
    const { json, parsed } = synthCompute({ executor, notificationEmail: "team@example.com" });

    it("THEN there is exactly one String parameter per contract key and variable key, nothing else", () => {
      // THEN the set of names equals the contract file's set (read from disk, not via the module)
      const expected = [
        ...contractFile.parameters.map((p) => `/airflow/dev/${p.key}`),
        ...contractFile.variables.keys.map((v) => `/airflow/dev/variables/${v.key}`),
      ].sort();
      expect(paramNames(parsed)).toEqual(expected);
      for (const p of Object.values(resourcesOf(parsed, "aws_ssm_parameter"))) {
        if (!String(p.name).includes("/connections/")) expect(p.type).toBe("String");
      }
    });

    it("THEN there is a secret for every contract secret this executor needs, nothing else", () => {
      // The broker's AUTH token and Flower's password belong to Celery's roles alone.
      const celeryOnly = ["redis-auth-token", "flower-password"];
      const expected = contractFile.secrets
        .map((s) => s.key)
        .filter((k) => executor === "CeleryExecutor" || !celeryOnly.includes(k))
        .map((k) => `airflow/dev/${k}`)
        .sort();
      expect(secretNames(parsed)).toEqual(expected);
    });

    it("THEN the executor parameter records it", () => {
      expect(json).toHaveResourceWithProperties(SsmParameter, {
        name: "/airflow/dev/executor",
        insecure_value: executor,
      });
    });
  },
);

describe("parameter values", () => {
  // GIVEN non-default tunables (the tuned config) WHEN synthesized
  const { json } = synthCompute({
    scheduler: {
      maxDagrunsToCreatePerLoop: 7,
      useRowLevelLocking: true,
      orphanedTasksCheckIntervalSeconds: 120,
    },
    allowTriggerInFuture: true,
    parallelism: 64,
    workerConcurrency: 8,
    notificationEmail: "team@example.com",
    region: "eu-west-1",
  });

  it.each([
    ["scheduler/max-dagruns-to-create-per-loop", "7"],
    ["scheduler/max-dagruns-per-loop-to-schedule", "20"],
    ["scheduler/use-row-level-locking", "True"],
    ["scheduler/orphaned-tasks-check-interval", "120"],
    ["scheduler/pool-metrics-interval", "5"],
    ["core/allow-trigger-in-future", "True"],
    ["core/parallelism", "64"],
    ["celery/worker-concurrency", "8"],
    ["db/engine", "mysql"],
    ["db/endpoint", "db.fixture.internal"],
    ["db/port", "3306"],
    ["broker/endpoint", "redis.fixture.internal"],
    ["smtp/from-email", "team@example.com"],
    ["smtp/host", "email-smtp.eu-west-1.amazonaws.com"],
    ["logs/remote-base-log-folder", "s3://${aws_s3_bucket.logs.bucket}/airflow-logs"],
    ["artifacts/dags-uri", "s3://${aws_s3_bucket.artifacts.bucket}/dags/"],
    ["efs/file-system-id", "${aws_efs_file_system.efs.id}"],
    ["efs/access-point-id", "${aws_efs_access_point.efs-ap.id}"],
  ])("GIVEN the tuned config WHEN synthesized THEN parameter %s = %s", (key, value) => {
    expect(json).toHaveResourceWithProperties(SsmParameter, {
      name: `/airflow/dev/${key}`,
      insecure_value: value,
    });
  });

  it("GIVEN CeleryExecutor WHEN synthesized THEN the execution API URL points workers at the internal ALB's /execution/ mount", () => {
    expect(json).toHaveResourceWithProperties(SsmParameter, {
      name: "/airflow/dev/api/execution-api-url",
      insecure_value: expect.stringMatching(
        /^http:\/\/\$\{aws_lb\.compute_load-balancers_internal_\w+\.dns_name\}:8080\/execution\/$/,
      ),
    });
  });

  it.each([
    [
      "uiAllowedCidrs set: the public ALB",
      ["203.0.113.0/24"],
      /^http:\/\/\$\{aws_lb\.compute_load-balancers_public_\w+\.dns_name\}$/,
    ],
    ["no uiAllowedCidrs: the SSM port-forwarded address npm run ui opens", [], /^http:\/\/localhost:8080$/],
  ])(
    "GIVEN %s WHEN synthesized THEN [api] base_url is where users open the UI",
    (_name, uiAllowedCidrs, url) => {
      const { json: synthesized } = synthCompute({ uiAllowedCidrs });
      expect(synthesized).toHaveResourceWithProperties(SsmParameter, {
        name: "/airflow/dev/api/base-url",
        insecure_value: expect.stringMatching(url),
      });
    },
  );

  it.each([
    ["data_bucket", "${aws_s3_bucket.data.bucket}"],
    ["artifacts_bucket", "${aws_s3_bucket.artifacts.bucket}"],
    ["emr_log_uri", "s3://${aws_s3_bucket.logs.bucket}/emr-logs/"],
    ["emr_subnet_id", "${aws_subnet.priv-a.id}"],
    ["emr_cluster_tag", "airflow-dev"],
    ["alert_email", "team@example.com"],
  ])("GIVEN the tuned config WHEN synthesized THEN variable %s = %s", (key, value) => {
    expect(json).toHaveResourceWithProperties(SsmParameter, {
      name: `/airflow/dev/variables/${key}`,
      insecure_value: value,
    });
  });

  it("GIVEN the tuned config WHEN synthesized THEN variables name the EMR roles and the content-hashed Spark job", () => {
    // THEN the role variables reference the IAM constructs and the job URI carries its content hash
    expect(json).toHaveResourceWithProperties(SsmParameter, {
      name: "/airflow/dev/variables/emr_service_role",
      insecure_value: expect.stringMatching(/^\$\{aws_iam_role\.compute_iam_emr-service-role_\w+\.name\}$/),
    });
    expect(json).toHaveResourceWithProperties(SsmParameter, {
      name: "/airflow/dev/variables/emr_job_flow_role",
      insecure_value: expect.stringMatching(
        /^\$\{aws_iam_instance_profile\.compute_iam_emr-ec2-profile_\w+\.name\}$/,
      ),
    });
    expect(json).toHaveResourceWithProperties(SsmParameter, {
      name: "/airflow/dev/variables/spark_job_uri",
      insecure_value: expect.stringMatching(
        /^s3:\/\/\$\{aws_s3_bucket\.artifacts\.bucket\}\/spark-jobs\/[0-9a-f]{16}\/sort_job\.py$/,
      ),
    });
  });

  it("GIVEN LocalExecutor WHEN synthesized THEN the broker is stored as 'none' and tasks run against the local api-server", () => {
    // GIVEN LocalExecutor WHEN synthesized
    const local = synthCompute({ executor: "LocalExecutor" }).json;
    // THEN
    expect(local).toHaveResourceWithProperties(SsmParameter, {
      name: "/airflow/dev/broker/endpoint",
      insecure_value: "none",
    });
    expect(local).toHaveResourceWithProperties(SsmParameter, {
      name: "/airflow/dev/api/execution-api-url",
      insecure_value: "http://localhost:8080/execution/",
    });
  });
});

describe("secrets never appear as values", () => {
  // GIVEN the whole compute plane (both executors) WHEN synthesized
  const plans = [
    synthCompute({ notificationEmail: "team@example.com" }),
    synthCompute({ executor: "LocalExecutor" }),
  ];

  it("GIVEN either executor WHEN synthesized THEN every secret_string is a single reference to a random resource, never a literal", () => {
    for (const { parsed } of plans) {
      const versions = Object.values(resourcesOf(parsed, "aws_secretsmanager_secret_version"));
      expect(versions.length).toBeGreaterThan(0);
      for (const v of versions) {
        expect(v.secret_string).toMatch(/^\$\{.*random_(password|bytes)\.[\w-]+\.(result|base64).*\}$/);
      }
    }
  });

  it("GIVEN either executor WHEN synthesized THEN no random value or secret value reference leaks into user-data or parameters", () => {
    // THEN neither launch templates nor parameters mention a random value or a secret's value
    for (const { parsed } of plans) {
      const suspicious =
        /random_(password|bytes)|secret_string|aws_secretsmanager_secret_version\.[\w-]+\.secret/;
      for (const lt of Object.values(resourcesOf(parsed, "aws_launch_template"))) {
        // version_id (an opaque id) may feed the revision hash; the value may not.
        expect(String(lt.user_data)).not.toMatch(suspicious);
      }
      for (const p of Object.values(resourcesOf(parsed, "aws_ssm_parameter"))) {
        expect(String(p.insecure_value)).not.toMatch(suspicious);
        // The only SecureString is the SMTP connection, and its secret parts are references.
        if (p.type === "SecureString") {
          expect(p.value).toMatch(/"password" = aws_iam_access_key\.[\w-]+\.ses_smtp_password_v4/);
          expect(p.insecure_value).toBeUndefined();
        } else {
          expect(p.value).toBeUndefined();
        }
      }
    }
  });

  it("GIVEN CeleryExecutor WHEN synthesized THEN the fernet key is url-safe base64 of 32 random bytes", () => {
    const { parsed } = plans[0];
    // THEN one random_bytes of 32, and the fernet secret is its base64 made url-safe
    const bytes = Object.values(resourcesOf(parsed, "random_bytes"));
    expect(bytes).toEqual([{ length: 32 }]);
    const fernet = Object.entries(resourcesOf(parsed, "aws_secretsmanager_secret_version")).find(([k]) =>
      k.includes("fernet"),
    );
    expect(fernet?.[1].secret_string).toMatch(
      /^\$\{replace\(replace\(random_bytes\.[\w-]+\.base64, "\/\[\+\]\/", "-"\), "\/\[\/\]\/", "_"\)\}$/,
    );
  });

  it.each(GENERATED_SECRETS.filter((k) => k !== "fernet-key").map((k) => [k]))(
    "GIVEN CeleryExecutor WHEN synthesized THEN %s comes from a random_password of 32+ characters without special characters",
    (key) => {
      const { parsed } = plans[0];
      const passwords = resourcesOf(parsed, "random_password");
      const name = Object.keys(passwords).find((n) => n.includes(`${key}-value`));
      expect(name).toBeDefined();
      expect(passwords[name as string]).toMatchObject({ special: false });
      expect(Number(passwords[name as string].length)).toBeGreaterThanOrEqual(32);
    },
  );
});

describe("the contract is the one source of truth", () => {
  afterEach(() => jest.resetModules());

  it("GIVEN a contract key without a wired value WHEN synthesized THEN the error names the key", () => {
    // GIVEN a contract with one more parameter than the infra wires
    jest.isolateModules(() => {
      jest.doMock("../../config/settings-contract.json", () => ({
        ...contractFile,
        parameters: [...contractFile.parameters, { key: "core/new-setting", description: "new" }],
      }));
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const fixtures = require("./compute-fixtures") as typeof import("./compute-fixtures");
      // WHEN synthesized THEN the error names the missing key
      expect(() => fixtures.synthCompute()).toThrow(
        /parameters: got \["core\/new-setting"\]; allowed: a non-empty value/,
      );
    });
  });

  it("GIVEN no existing core secrets WHEN ClusterSecrets is synthesized THEN the error names the missing keys", () => {
    // GIVEN CeleryExecutor secrets with no existing core secret
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { ClusterSecrets } = require("../../modules/settings") as typeof import("../../modules/settings");
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Testing } = require("cdktf") as typeof import("cdktf");
      // WHEN synthesized THEN the error names db-password and redis-auth-token
      expect(() =>
        Testing.synthScope((scope) => {
          new ClusterSecrets(scope, "secrets", {
            resourcePrefix: "airflow-dev",
            secretPrefix: "airflow/dev",
            region: "us-east-1",
            executor: "CeleryExecutor",
            recoveryWindowDays: 0,
            key: { arn: "arn:aws:kms:x" },
            existing: {},
          });
        }),
      ).toThrow(/existing: got \[\]; allowed: secrets for db-password, redis-auth-token/);
    });
  });
});

describe("secrets per node role", () => {
  it("GIVEN the contract's roleSecrets WHEN read THEN each names contract secrets only, and every secret is some role's", () => {
    // A secret no role reads would never be created (secretKeysFor), one unknown to the
    // contract would be granted but never exist.
    const secrets = contractFile.secrets.map((s) => s.key).sort();
    const roles = Object.keys(contractFile.roles).sort();
    expect(
      Object.keys(contractFile.roleSecrets)
        .filter((k) => k !== "$comment")
        .sort(),
    ).toEqual(roles);
    const read = new Set<string>();
    for (const role of roles) {
      for (const key of contractFile.roleSecrets[role as keyof typeof contractFile.roles]) {
        expect({ role, key, known: secrets.includes(key) }).toEqual({ role, key, known: true });
        read.add(key);
      }
    }
    expect([...read].sort()).toEqual(secrets);
  });

  it.each([["CeleryExecutor"], ["LocalExecutor"]] as const)(
    "GIVEN %s WHEN its secrets are listed THEN they are exactly what its node roles read",
    (executor) => {
      const roles = executor === "CeleryExecutor" ? ["api-server", "scheduler", "worker"] : ["standalone"];
      const read = new Set(
        roles.flatMap((r) => contractFile.roleSecrets[r as keyof typeof contractFile.roles]),
      );
      expect([...secretKeysFor(executor)].sort()).toEqual([...read].sort());
    },
  );
});

describe("invalid settings props", () => {
  const id = (n: string) => ({ id: n });
  const base: ClusterSettingsProps = {
    parameterPrefix: "/airflow/dev",
    database: {
      engine: "mysql",
      endpoint: "db.internal",
      port: 3306,
      dbName: "airflow",
      username: "airflow",
    },
    emailBackend: "ses",
    scheduler: {
      maxDagrunsToCreatePerLoop: 10,
      maxDagrunsPerLoopToSchedule: 20,
      useRowLevelLocking: true,
      poolMetricsIntervalSeconds: 5,
      orphanedTasksCheckIntervalSeconds: 300,
    },
    parallelism: 32,
    workerConcurrency: 16,
    allowTriggerInFuture: false,
    fileSystem: id("fs-1"),
    accessPoint: id("fsap-1"),
    logBucket: { bucket: "logs" },
    dataBucket: { bucket: "data" },
    artifactsBucket: { bucket: "artifacts" },
    dagsUri: "s3://artifacts/dags/",
    sparkJobUri: "s3://artifacts/spark-jobs/0123456789abcdef/job.py",
    baseUrl: "http://localhost:8080",
    executionApiUrl: "http://localhost:8080/execution/",
    fromEmail: "noreply@airflow-dev.invalid",
    smtpHost: "email-smtp.us-east-1.amazonaws.com",
    emrClusterTag: "airflow-dev",
    emrServiceRole: { name: "emr-service" },
    emrInstanceProfile: { name: "emr-ec2" },
    emrSubnet: id("subnet-1"),
    emrSecurityGroups: { primary: id("sg-1"), core: id("sg-2"), serviceAccess: id("sg-3") },
  };

  it("GIVEN valid props WHEN synthesized THEN no broker means LocalExecutor", () => {
    const json = Testing.synthScope((scope) => {
      new ClusterSettings(scope, "settings", base);
    });
    expect(json).toHaveResourceWithProperties(SsmParameter, {
      name: "/airflow/dev/executor",
      insecure_value: "LocalExecutor",
    });
  });

  it.each<[string, Partial<ClusterSettingsProps>, RegExp]>([
    [
      "a parameter prefix without a leading slash",
      { parameterPrefix: "airflow/dev" },
      /parameterPrefix: got "airflow\/dev"/,
    ],
    [
      "a parameter prefix with a trailing slash",
      { parameterPrefix: "/airflow/dev/" },
      /parameterPrefix: got "\/airflow\/dev\/"/,
    ],
    ["zero parallelism", { parallelism: 0 }, /parallelism: got 0; allowed: a positive integer/],
    [
      "an empty EMR cluster tag, which no IAM condition should compare with",
      { emrClusterTag: "" },
      /emrClusterTag: got ""; allowed: <namePrefix>-<env>/,
    ],
    [
      "a fractional scheduler interval",
      { scheduler: { ...base.scheduler, poolMetricsIntervalSeconds: 2.5 } },
      /scheduler.poolMetricsIntervalSeconds: got 2.5; allowed: a positive integer/,
    ],
  ])("GIVEN %s WHEN synthesized THEN one line names the prop", (_name, overrides, message) => {
    expect(() =>
      Testing.synthScope((scope) => {
        new ClusterSettings(scope, "settings", { ...base, ...overrides });
      }),
    ).toThrow(message);
  });
});

describe("invalid secrets props", () => {
  it.each([[3], [31], [1.5]])(
    "GIVEN a recovery window of %d days WHEN synthesized THEN one line names the prop",
    (recoveryWindowDays) => {
      // GIVEN that window WHEN synthesized THEN the error names it and the allowed range
      expect(() =>
        Testing.synthScope((scope) => {
          new ClusterSecrets(scope, "secrets", {
            resourcePrefix: "airflow-dev",
            secretPrefix: "airflow/dev",
            region: "us-east-1",
            executor: "LocalExecutor",
            recoveryWindowDays,
            key: { arn: "arn:aws:kms:x" },
            existing: {},
          });
        }),
      ).toThrow(
        new RegExp(`recoveryWindowDays: got ${recoveryWindowDays}; allowed: an integer from 7 to 30`),
      );
    },
  );
});

describe("settings revision", () => {
  it("GIVEN the compute plane WHEN synthesized THEN the revision is a Terraform sha256 over every parameter value and every secret version id, not over variables", () => {
    // GIVEN the compute plane WHEN synthesized
    const { parsed } = synthCompute();
    const lts = Object.values(resourcesOf(parsed, "aws_launch_template"));
    const userData = String(lts[0].user_data);
    // THEN the revision line is computed by Terraform from the stored values
    expect(userData).toContain("AIRFLOW_SETTINGS_REVISION=");
    expect(userData).toMatch(/sha256\(jsonencode\(\{/);
    for (const p of contractFile.parameters)
      expect(userData).toContain(`"parameter:${p.key}" = aws_ssm_parameter.`);
    // Variables are read at task run time: changing one (a new spark_job_uri) rolls no node.
    expect(userData).not.toContain('"variable:');
    for (const s of contractFile.secrets) {
      expect(userData).toMatch(
        new RegExp(`"secret:${s.key}" = aws_secretsmanager_secret_version\\.[\\w-]+\\.version_id`),
      );
    }
    // and every node group carries the same revision
    expect(new Set(lts.map((lt) => String(lt.user_data).replace(/AIRFLOW_ROLE=[\w-]+/, ""))).size).toBe(1);
  });
});
