/**
 * Test fixtures for the compute-plane tests: a stack holding stand-ins for the core
 * resources (VPC, subnets, security groups, DB/broker secrets, EFS, buckets, key) built
 * from the real provider classes, plus helpers to read the synthesized JSON.
 */
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { EfsAccessPoint } from "@cdktf/provider-aws/lib/efs-access-point";
import { EfsFileSystem } from "@cdktf/provider-aws/lib/efs-file-system";
import { KmsKey } from "@cdktf/provider-aws/lib/kms-key";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { S3Bucket } from "@cdktf/provider-aws/lib/s3-bucket";
import { SecretsmanagerSecret } from "@cdktf/provider-aws/lib/secretsmanager-secret";
import { SecretsmanagerSecretVersion } from "@cdktf/provider-aws/lib/secretsmanager-secret-version";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { Subnet } from "@cdktf/provider-aws/lib/subnet";
import { Vpc } from "@cdktf/provider-aws/lib/vpc";
import { Password } from "@cdktf/provider-random/lib/password";
import { RandomProvider } from "@cdktf/provider-random/lib/provider";
import { App, TerraformStack, Testing } from "cdktf";
// Types of the Terraform matchers that jest.setup.ts registers (toHaveResourceWithProperties, ...).
import "cdktf/lib/testing/adapters/jest";
import { AirflowConfig, AirflowConfigInput } from "../../modules/config";
import { ComputePlane, ComputePlaneProps } from "../../modules/compute-plane";
import { config } from "./helpers";

/** Stand-ins for what the core constructs hand to the compute plane. */
export interface CoreFixture {
  readonly stack: TerraformStack;
  readonly app: App;
  readonly props: Omit<ComputePlaneProps, "config">;
}

/** A stack with core stand-ins; `celery` adds the broker pieces. */
export function coreFixture(config: AirflowConfig): CoreFixture {
  const app = Testing.app();
  const stack = new TerraformStack(app, "test");
  new AwsProvider(stack, "aws", { region: config.region });
  new RandomProvider(stack, "random");
  const vpc = new Vpc(stack, "vpc", { cidrBlock: "10.40.0.0/16" });
  const subnet = (id: string, cidr: string) => new Subnet(stack, id, { vpcId: vpc.id, cidrBlock: cidr });
  const sg = (id: string) => new SecurityGroup(stack, id, { name: id, description: id, vpcId: vpc.id });
  const bucket = (id: string) => new S3Bucket(stack, id, { bucket: `fixture-${id}` });
  const secret = (key: string, length: number) => {
    const s = new SecretsmanagerSecret(stack, `core-${key}`, {
      name: `${config.namePrefix}/${config.env}/${key}`,
    });
    const v = new SecretsmanagerSecretVersion(stack, `core-${key}-version`, {
      secretId: s.id,
      secretString: new Password(stack, `core-${key}-value`, { length, special: false }).result,
    });
    return { s, v };
  };
  const fileSystem = new EfsFileSystem(stack, "efs", { encrypted: true });
  const privateSubnets = [subnet("priv-a", "10.40.128.0/20"), subnet("priv-b", "10.40.144.0/20")];
  const db = secret("db-password", 40);
  const celery = config.executor === "CeleryExecutor";
  const redis = celery ? secret("redis-auth-token", 64) : undefined;
  return {
    app,
    stack,
    props: {
      network: {
        vpc,
        publicSubnets: [subnet("pub-a", "10.40.0.0/20"), subnet("pub-b", "10.40.16.0/20")],
        privateSubnets,
      },
      securityGroups: {
        albPublic: sg("alb-public"),
        albInternal: sg("alb-internal"),
        apiServer: sg("api-server"),
        scheduler: sg("scheduler"),
        worker: sg("worker"),
      },
      emrSecurityGroups: {
        primary: sg("emr-primary"),
        core: sg("emr-core"),
        serviceAccess: sg("emr-service-access"),
      },
      database: {
        engine: config.database.engine,
        endpoint: "db.fixture.internal",
        port: 3306,
        dbName: "airflow",
        username: "airflow",
        passwordSecret: db.s,
        passwordSecretVersion: db.v,
      },
      broker: redis
        ? {
            endpoint: "redis.fixture.internal",
            port: 6379,
            authTokenSecret: redis.s,
            authTokenSecretVersion: redis.v,
          }
        : undefined,
      storage: {
        fileSystem,
        accessPoint: new EfsAccessPoint(stack, "efs-ap", { fileSystemId: fileSystem.id }),
        // A regional file system: a mount target in every private subnet.
        clientSubnets: privateSubnets,
      },
      buckets: {
        logs: bucket("logs"),
        data: bucket("data"),
        artifacts: bucket("artifacts"),
        accessLogs: bucket("access-logs"),
      },
      key: new KmsKey(stack, "key", { enableKeyRotation: true }),
    },
  };
}

/** Temp dirs with a DAG and a Spark job, so tests do not depend on the repo's folders. */
export function sourceDirs(): { dagsDir: string; sparkJobsDir: string } {
  const root = mkdtempSync(path.join(tmpdir(), "compute-"));
  const dagsDir = path.join(root, "dags");
  const sparkJobsDir = path.join(root, "spark-jobs");
  mkdirSync(dagsDir);
  mkdirSync(sparkJobsDir);
  writeFileSync(path.join(dagsDir, "pipeline.py"), "print('dag')\n");
  writeFileSync(path.join(sparkJobsDir, "sort_job.py"), "print('spark')\n");
  return { dagsDir, sparkJobsDir };
}

/** The synthesized JSON of a whole compute plane for a config input. */
export function synthCompute(
  input: Partial<AirflowConfigInput> = {},
  extra: Partial<ComputePlaneProps> = {},
): { json: string; parsed: SynthJson; plane: ComputePlane } {
  const cluster = config(input);
  const fx = coreFixture(cluster);
  const plane = new ComputePlane(fx.stack, "compute", {
    config: cluster,
    ...fx.props,
    ...sourceDirs(),
    ...extra,
  });
  const json = Testing.synth(fx.stack);
  return { json, parsed: JSON.parse(json) as SynthJson, plane };
}

/** Terraform JSON as far as the tests read it. */
export interface SynthJson {
  readonly resource: Record<string, Record<string, Record<string, unknown>>>;
  readonly data?: Record<string, Record<string, Record<string, unknown>>>;
  readonly output?: Record<string, { value: string; description?: string }>;
}

/** Every resource of a type (name -> config); {} when there is none. */
export function resourcesOf(parsed: SynthJson, type: string): Record<string, Record<string, unknown>> {
  return parsed.resource[type] ?? {};
}

/** The one resource of a type whose config satisfies `pred`. */
export function findResource(
  parsed: SynthJson,
  type: string,
  pred: (r: Record<string, unknown>) => boolean,
): Record<string, unknown> {
  const hits = Object.values(resourcesOf(parsed, type)).filter(pred);
  if (hits.length !== 1) throw new Error(`expected one ${type} matching, got ${hits.length}`);
  return hits[0];
}

/** A policy-document statement as synthesized. */
export interface Statement {
  sid?: string;
  effect?: string;
  actions?: string[];
  resources?: string[];
  principals?: { type: string; identifiers: string[] }[];
  condition?: { test: string; variable: string; values: string[] }[];
}

/** The statements of the data.aws_iam_policy_document whose logical name contains `fragment`. */
export function policyStatements(parsed: SynthJson, fragment: string): Statement[] {
  const docs = parsed.data?.aws_iam_policy_document ?? {};
  const names = Object.keys(docs).filter((n) => n.includes(fragment));
  if (names.length !== 1)
    throw new Error(`expected one policy document matching ${fragment}, got ${names.join(", ")}`);
  return (docs[names[0]].statement as Statement[]) ?? [];
}
