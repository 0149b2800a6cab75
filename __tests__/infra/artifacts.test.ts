/**
 * Artifacts: dags/ mirrors its tree under `dags/`, Spark scripts are content-addressed,
 * junk is not uploaded, missing folders are fine, and the synthesized JSON does not
 * depend on where the sources live on this machine.
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { S3Bucket } from "@cdktf/provider-aws/lib/s3-bucket";
import { S3Object } from "@cdktf/provider-aws/lib/s3-object";
import { TerraformStack, Testing } from "cdktf";
import { ClusterArtifacts, listFiles } from "../../modules/artifacts";
import { SPARK_SORT_JOB } from "../../modules/compute-plane";
import { resourcesOf, synthCompute } from "./compute-fixtures";

/** A temp tree from a map of relative path -> content. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), "artifacts-"));
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), content);
  }
  return root;
}

/** Synthesizes ClusterArtifacts over the given dirs; returns JSON, parsed objects and the construct. */
function synth(dagsDir: string, sparkJobsDir: string, sparkJob?: string) {
  const app = Testing.app();
  const stack = new TerraformStack(app, "artifacts");
  const bucket = new S3Bucket(stack, "artifacts-bucket", { bucket: "fixture-artifacts" });
  const artifacts = new ClusterArtifacts(stack, "artifacts", {
    bucket,
    dagsDir,
    sparkJobsDir,
    sparkJob,
    kmsKey: { arn: "arn:aws:kms:us-east-1:123456789012:key/k" },
  });
  const json = Testing.synth(stack);
  const objects = Object.values(
    (JSON.parse(json) as { resource: Record<string, Record<string, Record<string, unknown>>> }).resource
      .aws_s3_object ?? {},
  );
  return { json, objects, artifacts };
}

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe("ClusterArtifacts", () => {
  // GIVEN a DAG tree with a subfolder, an .airflowignore and junk, and one Spark job
  const dags = tree({
    "dag_one.py": "one",
    "common/helpers.py": "helpers",
    ".airflowignore": "common/\n",
    "__pycache__/dag_one.cpython-311.pyc": "junk",
    ".DS_Store": "junk",
  });
  const spark = tree({ "sort_job.py": "spark job v1" });
  const { json, objects, artifacts } = synth(dags, spark);

  it("uploads each DAG file under dags/<relative path>, junk excluded", () => {
    const keys = objects.map((o) => o.key).sort();
    expect(keys).toEqual([
      "dags/.airflowignore",
      "dags/common/helpers.py",
      "dags/dag_one.py",
      `spark-jobs/${sha("spark job v1").slice(0, 16)}/sort_job.py`,
    ]);
    expect(json).toContain('"key": "dags/dag_one.py"');
    expect(artifacts.dagsUri).toMatch(/^s3:\/\/\$\{TfToken\[TOKEN\.\d+\]\}\/dags\/$/);
  });

  it("publishes the content-addressed URI of the Spark job", () => {
    expect(artifacts.sparkJobUri).toMatch(
      new RegExp(`/spark-jobs/${sha("spark job v1").slice(0, 16)}/sort_job\\.py$`),
    );
  });

  it("re-uploads on content change via source_hash, encrypted with the bucket key", () => {
    expect(json).toHaveResourceWithProperties(S3Object, {
      key: "dags/dag_one.py",
      source_hash: sha("one"),
      content_type: "text/x-python",
      kms_key_id: "arn:aws:kms:us-east-1:123456789012:key/k",
    });
  });

  it("references sources by a stack-relative, content-hashed asset path (machine independent)", () => {
    for (const o of objects) {
      expect(String(o.source)).toMatch(/^assets\/[\w-]+\/[0-9A-F]+\/[^/]+$/);
      expect(String(o.source)).not.toContain(tmpdir());
    }
  });

  it("gives the same JSON for the same content in a different place", () => {
    const again = synth(
      tree({ "dag_one.py": "one", "common/helpers.py": "helpers", ".airflowignore": "common/\n" }),
      tree({ "sort_job.py": "spark job v1" }),
    ).json;
    expect(again).toBe(json);
  });

  it("gives the Spark job a new key when its content changes", () => {
    const changed = synth(dags, tree({ "sort_job.py": "spark job v2" })).artifacts;
    expect(changed.sparkJobUri).not.toBe(artifacts.sparkJobUri);
    expect(changed.sparkJobUri).toContain(sha("spark job v2").slice(0, 16));
  });
});

describe("edge cases", () => {
  it.each([
    ["missing", "/nonexistent/dags-dir", "/nonexistent/spark-dir"],
    ["empty", tree({}), tree({})],
  ])("%s folders upload nothing and publish 'none' as the job URI", (_name, dagsDir, sparkDir) => {
    const { objects, artifacts } = synth(dagsDir, sparkDir);
    expect(objects).toEqual([]);
    expect(artifacts.sparkJobUri).toBe("none");
    expect(artifacts.dagsUri).toMatch(/\/dags\/$/);
  });

  it("several Spark scripts need sparkJob, and the error lists them", () => {
    const spark = tree({ "a.py": "a", "b.py": "b" });
    expect(() => synth(tree({}), spark)).toThrow(
      /sparkJob: got \(missing\); allowed: one of a\.py, b\.py \(.* holds 2 scripts\)/,
    );
    expect(synth(tree({}), spark, "b.py").artifacts.sparkJobUri).toMatch(/\/b\.py$/);
  });

  it("an unknown sparkJob is named in the error", () => {
    expect(() => synth(tree({}), tree({ "a.py": "a" }), "nope.py")).toThrow(/sparkJob: got "nope\.py"/);
  });

  it("lists files sorted, skipping caches", () => {
    const root = tree({ "b.py": "", "a/z.py": "", "a/__pycache__/z.pyc": "", ".ruff_cache/x": "" });
    expect(listFiles(root)).toEqual(["a/z.py", "b.py"]);
  });
});

describe("in the cluster", () => {
  it("uploads the repository's dags/ and publishes spark-jobs/sort_customers.py by default", () => {
    // GIVEN no source directories WHEN the compute plane is synthesized
    const { parsed } = synthCompute({}, { dagsDir: undefined, sparkJobsDir: undefined });
    // THEN the repo's DAG files are objects and the pipeline's Spark job is the published URI
    const keys = Object.values(resourcesOf(parsed, "aws_s3_object")).map((o) => String(o.key));
    const repoDags = listFiles(path.join(__dirname, "..", "..", "dags"));
    expect(keys.filter((k) => k.startsWith("dags/")).sort()).toEqual(repoDags.map((f) => `dags/${f}`).sort());
    const uri = Object.values(resourcesOf(parsed, "aws_ssm_parameter")).find(
      (p) => p.name === "/airflow/dev/variables/spark_job_uri",
    )?.insecure_value;
    expect(String(uri)).toMatch(
      new RegExp(`/spark-jobs/[0-9a-f]{16}/${SPARK_SORT_JOB.replace(".", "\\.")}$`),
    );
  });
});
