import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { App, Testing } from "cdktf";
import { AirflowClusterStack } from "../../modules/cluster-stack";
import { AirflowConfigInput, clusterNames } from "../../modules/config";
import { StateStack } from "../../modules/state-stack";
import { config, list, resourceCount } from "./helpers";

function synthCluster(input: Partial<AirflowConfigInput> = {}): string {
  const c = config(input);
  return Testing.synth(new AirflowClusterStack(Testing.app(), clusterNames(c).clusterStack, { config: c }));
}

/** Synthesizes both stacks the way main.ts does, into a fresh directory; returns file -> bytes. */
function fullSynth(): Map<string, string> {
  const outdir = mkdtempSync(path.join(tmpdir(), "airflow-synth-"));
  const c = config();
  const names = clusterNames(c);
  const app = new App({ outdir, skipValidation: false });
  new StateStack(app, names.stateStack, { config: c });
  new AirflowClusterStack(app, names.clusterStack, { config: c });
  app.synth();
  const files = new Map<string, string>();
  for (const stack of readdirSync(path.join(outdir, "stacks"))) {
    files.set(stack, readFileSync(path.join(outdir, "stacks", stack, "cdk.tf.json"), "utf8"));
  }
  return files;
}

describe("AirflowClusterStack", () => {
  const synth = synthCluster();
  const json = JSON.parse(synth);

  it("GIVEN defaults WHEN synthesized THEN state lives in the state bucket with native S3 locking and encryption", () => {
    expect(json.terraform.backend.s3).toEqual({
      bucket: config().stateBucketName,
      key: "airflow/dev/terraform.tfstate",
      region: "us-east-1",
      encrypt: true,
      kms_key_id: "alias/airflow/terraform-state",
      use_lockfile: true,
    });
  });

  it("GIVEN an account id WHEN synthesized THEN the provider refuses credentials of any other account", () => {
    expect(json.provider.aws[0].allowed_account_ids).toBeUndefined();
    const pinned = JSON.parse(synthCluster({ accountId: "123456789012" }));
    expect(pinned.provider.aws[0].allowed_account_ids).toEqual(["123456789012"]);
  });

  it("GIVEN defaults WHEN synthesized THEN the AWS provider tags everything from one place", () => {
    expect(json.provider.aws).toEqual([
      {
        region: "us-east-1",
        default_tags: [{ tags: { Project: "airflow", Environment: "dev", ManagedBy: "cdktf" } }],
      },
    ]);
  });

  it("GIVEN defaults WHEN synthesized THEN the DB and broker secrets follow the settings contract names", () => {
    const names = list(synth, "aws_secretsmanager_secret").map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining(["airflow/dev/db-password", "airflow/dev/redis-auth-token"]),
    );
  });

  it("GIVEN defaults WHEN synthesized THEN no secret value is a literal in the JSON", () => {
    for (const v of list(synth, "aws_secretsmanager_secret_version")) {
      expect(v.secret_string).toMatch(/^\$\{[^}]+\}$/);
    }
    for (const key of ["password", "auth_token"]) {
      for (const type of ["aws_db_instance", "aws_elasticache_replication_group"]) {
        for (const r of list(synth, type)) {
          if (r[key] !== undefined) expect(r[key]).toMatch(/^\$\{random_password\./);
        }
      }
    }
  });

  it("GIVEN defaults WHEN synthesized THEN every instance-bearing resource is in a private subnet", () => {
    for (const type of ["aws_db_subnet_group", "aws_elasticache_subnet_group"]) {
      for (const g of list(synth, type)) {
        for (const id of g.subnet_ids as string[]) expect(id).toMatch(/network_private-\d/);
      }
    }
    for (const m of list(synth, "aws_efs_mount_target")) expect(m.subnet_id).toMatch(/network_private-\d/);
  });

  it("GIVEN dev WHEN synthesized THEN one NAT instance and no NAT gateway; GIVEN prod THEN a NAT gateway per AZ", () => {
    expect(list(synth, "aws_nat_gateway")).toHaveLength(0);
    expect(list(synth, "aws_instance").map((i) => i.instance_type)).toEqual(["t4g.nano"]);
    expect(
      list(
        synthCluster({ env: "prod", availabilityZones: ["us-east-1a", "us-east-1b", "us-east-1c"] }),
        "aws_nat_gateway",
      ),
    ).toHaveLength(3);
  });

  it("GIVEN LocalExecutor WHEN synthesized THEN there is no broker and no broker secret", () => {
    const local = synthCluster({ executor: "LocalExecutor" });
    expect(list(local, "aws_elasticache_replication_group")).toHaveLength(0);
    expect(list(local, "aws_secretsmanager_secret").map((s) => s.name)).not.toContain(
      "airflow/dev/redis-auth-token",
    );
    expect(resourceCount(local)).toBeLessThan(resourceCount(synth));
  });

  it("GIVEN PostgreSQL WHEN synthesized THEN the DB and its security group use 5432", () => {
    const pg = synthCluster({ database: { engine: "postgres" } });
    expect(list(pg, "aws_db_instance")[0]).toMatchObject({ engine: "postgres", port: 5432 });
    const dbIngress = list(pg, "aws_vpc_security_group_ingress_rule").filter((r) =>
      String(r.security_group_id).includes("security-groups_database"),
    );
    // the api-server and the schedulers; workers reach the DB through the Execution API only
    expect(dbIngress.map((r) => r.from_port)).toEqual([5432, 5432]);
  });

  it("GIVEN prod WHEN synthesized THEN the DB is Multi-AZ, deletion-protected and keeps a final snapshot", () => {
    const prod = synthCluster({ env: "prod" });
    expect(list(prod, "aws_db_instance")[0]).toMatchObject({
      multi_az: true,
      deletion_protection: true,
      skip_final_snapshot: false,
    });
    for (const b of list(prod, "aws_s3_bucket")) expect(b.force_destroy).toBe(false);
  });

  it.each([
    ["dev", {}],
    ["dev", { deletionProtection: true }],
    ["prod", {}],
    ["prod", { deletionProtection: false }],
  ] as const)(
    "GIVEN env %s with %j WHEN synthesized THEN every resource follows the one durability policy",
    (env, input) => {
      // GIVEN
      const c = config({ env, ...input });
      const d = c.durability;
      // WHEN
      const s = synthCluster({ env, ...input });
      // THEN: every secret (generated or owned by the DB/broker) has the same recovery window
      const secrets = list(s, "aws_secretsmanager_secret");
      expect(secrets.length).toBeGreaterThanOrEqual(6);
      for (const secret of secrets) expect(secret.recovery_window_in_days).toBe(d.secretRecoveryWindowDays);
      expect(list(s, "aws_kms_key")[0].deletion_window_in_days).toBe(d.kmsDeletionWindowDays);
      expect(list(s, "aws_elasticache_replication_group")[0].snapshot_retention_limit).toBe(
        d.cacheSnapshotRetentionDays,
      );
      expect(list(s, "aws_nat_gateway")).toHaveLength(d.natInstance ? 0 : d.natPerAz ? c.azCount : 1);
      expect(list(s, "aws_instance")).toHaveLength(d.natInstance ? 1 : 0);
      expect(list(s, "aws_elasticache_replication_group")[0].num_cache_clusters).toBe(1 + d.brokerReplicas);
      for (const t of list(s, "aws_launch_template")) {
        expect(t.monitoring).toEqual({ enabled: d.detailedMonitoring });
      }
      expect(list(s, "aws_db_instance")[0]).toMatchObject({
        deletion_protection: d.deletionProtection,
        skip_final_snapshot: !d.finalSnapshot,
      });
      for (const lb of list(s, "aws_lb")) expect(lb.enable_deletion_protection).toBe(d.deletionProtection);
      for (const b of list(s, "aws_s3_bucket")) expect(b.force_destroy).toBe(d.forceDestroyBuckets);
    },
  );

  it("GIVEN a DB password or AUTH token rotation WHEN deployed THEN every launch template changes (nodes roll)", () => {
    // The rotation chain: config version -> random_password keepers -> secret version
    // -> AIRFLOW_SETTINGS_REVISION in every node's user data -> ASG instance refresh.
    const templates = list(synth, "aws_launch_template");
    expect(templates.length).toBeGreaterThan(0);
    for (const t of templates) {
      expect(t.user_data).toMatch(
        /aws_secretsmanager_secret_version\.database_password-version_\w+\.version_id/,
      );
      expect(t.user_data).toMatch(
        /aws_secretsmanager_secret_version\.broker_auth-token-version_\w+\.version_id/,
      );
    }
    const rotated = synthCluster({ database: { passwordVersion: 2 }, redis: { authTokenVersion: 5 } });
    expect(list(rotated, "random_password").map((p) => p.keepers)).toEqual(
      expect.arrayContaining([{ version: "2" }, { version: "5" }]),
    );
  });

  it("GIVEN the same config WHEN synthesized twice THEN both stacks are byte-identical", () => {
    const first = fullSynth();
    const second = fullSynth();
    expect([...first.keys()].sort()).toEqual(["airflow-dev", "airflow-state"]);
    for (const [stack, bytes] of first) expect(second.get(stack)).toBe(bytes);
  });

  it("GIVEN defaults WHEN synthesized THEN the whole stack matches the snapshot (diff guard; update with jest -u)", () => {
    // Content hashes of the uploaded dags/ and spark-jobs/ files are masked: editing a DAG
    // must not break the infra diff guard (artifacts.test.ts covers the hashing itself).
    const masked = synth
      .replace(/("source": "assets\/[^/"]+\/)[0-9A-F]{32}\//g, "$1<content-hash>/")
      .replace(/("source_hash": ")[0-9a-f]{64}"/g, '$1<content-hash>"')
      .replace(/spark-jobs\/[0-9a-f]{16}\//g, "spark-jobs/<content-hash>/");
    expect(masked).toMatchSnapshot();
  });
});

describe("instance refresh rollback alarms", () => {
  it.each(["CeleryExecutor", "LocalExecutor"] as const)(
    "GIVEN the %s cluster WHEN synthesized THEN every alarm a group's instance refresh rolls back on exists, by that name",
    (executor) => {
      const json = JSON.parse(synthCluster({ executor }));
      const alarmNames = new Set(
        Object.values(
          json.resource.aws_cloudwatch_metric_alarm as Record<string, { alarm_name: string }>,
        ).map((a) => a.alarm_name),
      );
      const groups = Object.values(
        json.resource.aws_autoscaling_group as Record<
          string,
          { name: string; instance_refresh: { preferences: { alarm_specification: { alarms: string[] } } } }
        >,
      );
      expect(groups.length).toBeGreaterThan(0);
      for (const g of groups) {
        const alarms = g.instance_refresh.preferences.alarm_specification.alarms;
        expect(alarms.length).toBeGreaterThan(0);
        expect({ group: g.name, missing: alarms.filter((a) => !alarmNames.has(a)) }).toEqual({
          group: g.name,
          missing: [],
        });
      }
    },
  );
});
