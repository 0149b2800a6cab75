import { TerraformStack, Testing } from "cdktf";
import { DbInstance } from "@cdktf/provider-aws/lib/db-instance";
import { DbParameterGroup } from "@cdktf/provider-aws/lib/db-parameter-group";
import { EfsAccessPoint } from "@cdktf/provider-aws/lib/efs-access-point";
import { EfsBackupPolicy } from "@cdktf/provider-aws/lib/efs-backup-policy";
import { EfsFileSystem } from "@cdktf/provider-aws/lib/efs-file-system";
import { ElasticacheParameterGroup } from "@cdktf/provider-aws/lib/elasticache-parameter-group";
import { ElasticacheReplicationGroup } from "@cdktf/provider-aws/lib/elasticache-replication-group";
import { SecretsmanagerSecret } from "@cdktf/provider-aws/lib/secretsmanager-secret";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { Subnet } from "@cdktf/provider-aws/lib/subnet";
import { Broker, BrokerProps } from "../../modules/broker";
import { checkovSkips } from "../../modules/checkov";
import { Database, DatabaseProps } from "../../modules/database";
import { SharedStorage } from "../../modules/storage";
import { bareStack, list } from "./helpers";

const KEY = "arn:aws:kms:us-east-1:123456789012:key/test";

function fixture(): { stack: TerraformStack; sg: SecurityGroup; subnets: Subnet[] } {
  const stack = bareStack();
  const sg = new SecurityGroup(stack, "sg", { name: "sg", description: "sg", vpcId: "vpc-1" });
  const subnets = ["a", "b", "c"].map(
    (az, i) =>
      new Subnet(stack, `subnet-${az}`, {
        vpcId: "vpc-1",
        cidrBlock: `10.0.${i}.0/24`,
        availabilityZone: `us-east-1${az}`,
      }),
  );
  return { stack, sg, subnets };
}

function makeDatabase(overrides: Partial<DatabaseProps> = {}): { synth: string; db: Database } {
  const { stack, sg, subnets } = fixture();
  const db = new Database(stack, "db", {
    resourcePrefix: "airflow-dev",
    secretPrefix: "airflow/dev",
    region: "us-east-1",
    subnets,
    securityGroup: sg,
    kmsKeyArn: KEY,
    logRetentionDays: 30,
    ...overrides,
  });
  return { synth: Testing.synth(stack), db };
}

describe("Database", () => {
  it("GIVEN defaults WHEN synthesized THEN MySQL 8.4 is private, encrypted, backed up, TLS-only and deletion-protected", () => {
    // WHEN
    const { synth } = makeDatabase();
    // THEN
    expect(synth).toHaveResourceWithProperties(DbInstance, {
      engine: "mysql",
      engine_version: "8.4",
      instance_class: "db.t4g.medium",
      storage_encrypted: true,
      kms_key_id: KEY,
      publicly_accessible: false,
      backup_retention_period: 7,
      deletion_protection: true,
      skip_final_snapshot: false,
      final_snapshot_identifier: expect.stringMatching(
        /^airflow-dev-metadata-final-\$\{random_id\.db_final-snapshot-suffix_\w+\.hex\}$/,
      ),
      copy_tags_to_snapshot: true,
      iam_database_authentication_enabled: true,
      performance_insights_enabled: true,
      ca_cert_identifier: "rds-ca-rsa2048-g1",
      enabled_cloudwatch_logs_exports: ["error", "slowquery"],
      engine_lifecycle_support: "open-source-rds-extended-support-disabled",
    });
    const [db] = list(synth, "aws_db_instance");
    expect(db.password).toMatch(/^\$\{random_password\.db_password_\w+\.result\}$/);
    expect(db.vpc_security_group_ids).toEqual([expect.stringMatching(/aws_security_group\.sg/)]);
  });

  it("GIVEN MySQL WHEN synthesized THEN the parameter group holds what Airflow requires", () => {
    const { synth } = makeDatabase();
    expect(synth).toHaveResourceWithProperties(DbParameterGroup, { family: "mysql8.4" });
    const [pg] = list(synth, "aws_db_parameter_group");
    const params = Object.fromEntries(
      (pg.parameter as { name: string; value: string }[]).map((p) => [p.name, p.value]),
    );
    expect(params).toMatchObject({
      explicit_defaults_for_timestamp: "1",
      character_set_server: "utf8mb4",
      collation_server: "utf8mb4_unicode_ci",
      require_secure_transport: "1",
    });
  });

  it("GIVEN PostgreSQL WHEN synthesized THEN version 17, family postgres17, SSL forced, port 5432", () => {
    const { synth, db } = makeDatabase({ engine: "postgres" });
    expect(synth).toHaveResourceWithProperties(DbInstance, {
      engine: "postgres",
      engine_version: "17",
      port: 5432,
    });
    expect(synth).toHaveResourceWithProperties(DbParameterGroup, { family: "postgres17" });
    expect(synth).toContain('"rds.force_ssl"');
    expect(db.port).toBe(5432);
  });

  it("GIVEN dev (no protection) WHEN synthesized THEN destroy needs no snapshot and the skips say why", () => {
    const { synth, db } = makeDatabase({ deletionProtection: false });
    expect(synth).toHaveResourceWithProperties(DbInstance, {
      deletion_protection: false,
      skip_final_snapshot: true,
    });
    expect(checkovSkips(db.instance).map((s) => s.id)).toEqual(["CKV_AWS_157", "CKV_AWS_293"]);
  });

  it("GIVEN a final snapshot WHEN synthesized THEN its name is unique per DB lifetime, so a second destroy does not collide", () => {
    const { synth } = makeDatabase({ deletionProtection: false, finalSnapshot: true });
    expect(synth).toHaveResourceWithProperties(DbInstance, {
      deletion_protection: false,
      skip_final_snapshot: false,
    });
    // A random suffix kept for the identifier's life: stable across plans, new after a redeploy.
    const [suffix] = list(synth, "random_id");
    expect(suffix).toMatchObject({ byte_length: 4, keepers: { identifier: "airflow-dev-metadata" } });
  });

  it("GIVEN Multi-AZ and protection WHEN synthesized THEN no checkov skip is left on the instance", () => {
    const { db } = makeDatabase({ multiAz: true, deletionProtection: true });
    expect(checkovSkips(db.instance)).toEqual([]);
  });

  it("GIVEN the password WHEN synthesized THEN it is URL-safe, versioned by config and stored under <secretPrefix>/db-password", () => {
    const { synth } = makeDatabase({ passwordVersion: 3 });
    const [pw] = list(synth, "random_password");
    expect(pw).toMatchObject({ length: 40, special: false, keepers: { version: "3" } });
    expect(synth).toHaveResourceWithProperties(SecretsmanagerSecret, {
      name: "airflow/dev/db-password",
      kms_key_id: KEY,
    });
    const [version] = list(synth, "aws_secretsmanager_secret_version");
    expect(version.secret_string).toMatch(/^\$\{random_password\./);
  });

  it.each<[string, Partial<DatabaseProps>, string]>([
    [
      "no backups",
      { backupRetentionDays: 0 },
      "backupRetentionDays: got 0; allowed: an integer from 1 to 35",
    ],
    [
      "tiny storage",
      { allocatedStorageGb: 5 },
      "allocatedStorageGb: got 5; allowed: an integer from 20 to 65536",
    ],
    ["password version 0", { passwordVersion: 0 }, "passwordVersion: got 0; allowed: an integer from 1 to"],
    ["one subnet", { subnets: [] }, "subnets: got 0; allowed: 2 or more subnets in different AZs"],
  ])("GIVEN %s WHEN constructed THEN it is refused", (_n, props, message) => {
    expect(() => makeDatabase(props)).toThrow(message);
  });
});

function makeBroker(overrides: Partial<BrokerProps> = {}): string {
  const { stack, sg, subnets } = fixture();
  new Broker(stack, "broker", {
    resourcePrefix: "airflow-dev",
    secretPrefix: "airflow/dev",
    subnets,
    securityGroup: sg,
    kmsKeyArn: KEY,
    logRetentionDays: 30,
    ...overrides,
  });
  return Testing.synth(stack);
}

describe("Broker", () => {
  it("GIVEN defaults WHEN synthesized THEN Valkey with TLS required, AUTH, at-rest KMS and failover", () => {
    const synth = makeBroker();
    expect(synth).toHaveResourceWithProperties(ElasticacheReplicationGroup, {
      engine: "valkey",
      node_type: "cache.t4g.small",
      num_cache_clusters: 2,
      automatic_failover_enabled: true,
      multi_az_enabled: true,
      transit_encryption_enabled: true,
      transit_encryption_mode: "required",
      at_rest_encryption_enabled: "true",
      kms_key_id: KEY,
      auth_token_update_strategy: "ROTATE",
      port: 6379,
    });
    const [rg] = list(synth, "aws_elasticache_replication_group");
    expect(rg.auth_token).toMatch(/^\$\{random_password\.broker_auth-token_\w+\.result\}$/);
    expect(synth).toHaveResourceWithProperties(SecretsmanagerSecret, {
      name: "airflow/dev/redis-auth-token",
    });
  });

  it("GIVEN strategy SET WHEN synthesized THEN the same token is sent with SET, revoking the old one", () => {
    const rotate = list(makeBroker({ authTokenVersion: 2 }), "aws_elasticache_replication_group")[0];
    const set = list(
      makeBroker({ authTokenVersion: 2, authTokenUpdateStrategy: "SET" }),
      "aws_elasticache_replication_group",
    )[0];
    expect(rotate.auth_token_update_strategy).toBe("ROTATE");
    expect(set.auth_token_update_strategy).toBe("SET");
    expect(set.auth_token).toBe(rotate.auth_token);
  });

  it("GIVEN a broker WHEN synthesized THEN queued messages are never evicted", () => {
    expect(makeBroker()).toHaveResourceWithProperties(ElasticacheParameterGroup, {
      family: "valkey8",
      parameter: [{ name: "maxmemory-policy", value: "noeviction" }],
    });
  });

  it.each([
    [0, 1, false],
    [2, 3, true],
  ])("GIVEN %d replicas WHEN synthesized THEN %d nodes and failover=%s", (replicas, nodes, failover) => {
    expect(makeBroker({ replicas })).toHaveResourceWithProperties(ElasticacheReplicationGroup, {
      num_cache_clusters: nodes,
      automatic_failover_enabled: failover,
      multi_az_enabled: failover,
    });
  });

  it("GIVEN too many replicas WHEN constructed THEN it is refused", () => {
    expect(() => makeBroker({ replicas: 6 })).toThrow("replicas: got 6; allowed: an integer from 0 to 5");
  });
});

describe("SharedStorage", () => {
  function makeStorage(oneZone: boolean, oneZoneSubnet?: number): string {
    const { stack, sg, subnets } = fixture();
    new SharedStorage(stack, "efs", {
      resourcePrefix: "airflow-dev",
      subnets,
      securityGroup: sg,
      kmsKeyArn: KEY,
      oneZone,
      oneZoneSubnet,
    });
    return Testing.synth(stack);
  }

  it("GIVEN regional EFS WHEN synthesized THEN encrypted, IA after 30 days, backups on, a mount target per private subnet", () => {
    const synth = makeStorage(false);
    expect(synth).toHaveResourceWithProperties(EfsFileSystem, {
      encrypted: true,
      kms_key_id: KEY,
      lifecycle_policy: [
        { transition_to_ia: "AFTER_30_DAYS" },
        { transition_to_primary_storage_class: "AFTER_1_ACCESS" },
      ],
    });
    expect(list(synth, "aws_efs_file_system")[0].availability_zone_name).toBeUndefined();
    expect(synth).toHaveResourceWithProperties(EfsBackupPolicy, { backup_policy: { status: "ENABLED" } });
    expect(list(synth, "aws_efs_mount_target")).toHaveLength(3);
  });

  it("GIVEN One Zone WHEN synthesized THEN the file system and its single mount target share the first subnet's AZ", () => {
    const synth = makeStorage(true);
    expect(list(synth, "aws_efs_file_system")[0].availability_zone_name).toBe(
      "${aws_subnet.subnet-a.availability_zone}",
    );
    const mounts = list(synth, "aws_efs_mount_target");
    expect(mounts.map((m) => m.subnet_id)).toEqual(["${aws_subnet.subnet-a.id}"]);
  });

  it("GIVEN One Zone in the second subnet WHEN synthesized THEN the file system and its mount target are in that subnet's AZ", () => {
    const synth = makeStorage(true, 1);
    expect(list(synth, "aws_efs_file_system")[0].availability_zone_name).toBe(
      "${aws_subnet.subnet-b.availability_zone}",
    );
    expect(list(synth, "aws_efs_mount_target").map((m) => m.subnet_id)).toEqual([
      "${aws_subnet.subnet-b.id}",
    ]);
  });

  it.each<[string, boolean, number, string]>([
    [
      "a subnet index for a regional file system",
      false,
      0,
      "oneZoneSubnet: got 0; allowed: omitted unless oneZone is true",
    ],
    ["a subnet index past the subnets", true, 3, "oneZoneSubnet: got 3; allowed: an integer from 0 to 2"],
  ])("GIVEN %s WHEN constructed THEN one line refuses it", (_name, oneZone, index, line) => {
    expect(() => makeStorage(oneZone, index)).toThrow(line);
  });

  it("GIVEN the access point WHEN synthesized THEN it maps clients to airflow (50000) rooted at /airflow", () => {
    expect(makeStorage(false)).toHaveResourceWithProperties(EfsAccessPoint, {
      posix_user: { uid: 50000, gid: 50000 },
      root_directory: {
        path: "/airflow",
        creation_info: { owner_uid: 50000, owner_gid: 50000, permissions: "0755" },
      },
    });
  });

  it("GIVEN the file-system policy WHEN synthesized THEN mounts without TLS are denied", () => {
    const synth = makeStorage(false);
    const [doc] = Object.values(
      (
        JSON.parse(synth) as {
          data: Record<
            string,
            Record<string, { statement: { sid: string; effect?: string; condition?: unknown }[] }>
          >;
        }
      ).data.aws_iam_policy_document,
    );
    const deny = doc.statement.find((s) => s.sid === "DenyWithoutTls");
    expect(deny).toMatchObject({
      effect: "Deny",
      condition: [{ test: "Bool", variable: "aws:SecureTransport", values: ["false"] }],
    });
  });
});
