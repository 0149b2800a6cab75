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
  // WHEN synthesized
  const { json, objects, artifacts } = synth(dags, spark);

  it("GIVEN a dags folder with junk WHEN synthesized THEN each DAG file is uploaded under dags/<relative path>, junk excluded", () => {
    // THEN the objects are the DAG tree (junk excluded) and the content-addressed Spark job
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

  it("GIVEN one Spark job WHEN synthesized THEN its content-addressed URI is published", () => {
    expect(artifacts.sparkJobUri).toMatch(
      new RegExp(`/spark-jobs/${sha("spark job v1").slice(0, 16)}/sort_job\\.py$`),
    );
  });

  it("GIVEN a DAG file WHEN synthesized THEN its object re-uploads on content change via source_hash and is encrypted with the bucket key", () => {
    expect(json).toHaveResourceWithProperties(S3Object, {
      key: "dags/dag_one.py",
      source_hash: sha("one"),
      content_type: "text/x-python",
      kms_key_id: "arn:aws:kms:us-east-1:123456789012:key/k",
    });
  });

  it("GIVEN sources in a temp folder WHEN synthesized THEN each object's source is a stack-relative, content-hashed asset path (machine independent)", () => {
    for (const o of objects) {
      expect(String(o.source)).toMatch(/^assets\/[\w-]+\/[0-9A-F]+\/[^/]+$/);
      expect(String(o.source)).not.toContain(tmpdir());
    }
  });

  it("GIVEN the same content in other folders WHEN synthesized THEN the JSON is identical", () => {
    const again = synth(
      tree({ "dag_one.py": "one", "common/helpers.py": "helpers", ".airflowignore": "common/\n" }),
      tree({ "sort_job.py": "spark job v1" }),
    ).json;
    expect(again).toBe(json);
  });

  it("GIVEN the Spark job's content changed WHEN synthesized THEN its key is new, named by the new content hash", () => {
    const changed = synth(dags, tree({ "sort_job.py": "spark job v2" })).artifacts;
    expect(changed.sparkJobUri).not.toBe(artifacts.sparkJobUri);
    expect(changed.sparkJobUri).toContain(sha("spark job v2").slice(0, 16));
  });
});

describe("edge cases", () => {
  it.each([
    ["missing", "/nonexistent/dags-dir", "/nonexistent/spark-dir"],
    ["empty", tree({}), tree({})],
  ])(
    "GIVEN %s folders WHEN synthesized THEN nothing is uploaded, the job URI is 'none' and the dags URI still ends in dags/",
    (_name, dagsDir, sparkDir) => {
      const { objects, artifacts } = synth(dagsDir, sparkDir);
      expect(objects).toEqual([]);
      expect(artifacts.sparkJobUri).toBe("none");
      expect(artifacts.dagsUri).toMatch(/\/dags\/$/);
    },
  );

  it("GIVEN several Spark scripts WHEN synthesized without sparkJob THEN the error lists them, and with sparkJob the named one is published", () => {
    const spark = tree({ "a.py": "a", "b.py": "b" });
    expect(() => synth(tree({}), spark)).toThrow(
      /sparkJob: got \(missing\); allowed: one of a\.py, b\.py \(.* holds 2 scripts\)/,
    );
    expect(synth(tree({}), spark, "b.py").artifacts.sparkJobUri).toMatch(/\/b\.py$/);
  });

  it("GIVEN an unknown sparkJob WHEN synthesized THEN the error names it", () => {
    expect(() => synth(tree({}), tree({ "a.py": "a" }), "nope.py")).toThrow(/sparkJob: got "nope\.py"/);
  });

  it("GIVEN a tree with cache folders WHEN listFiles runs THEN it returns the files sorted, caches skipped", () => {
    const root = tree({ "b.py": "", "a/z.py": "", "a/__pycache__/z.pyc": "", ".ruff_cache/x": "" });
    expect(listFiles(root)).toEqual(["a/z.py", "b.py"]);
  });
});

describe("in the cluster", () => {
  it("GIVEN no source directories WHEN the compute plane is synthesized THEN the repository's dags/ is uploaded and spark-jobs/sort_customers.py is the published job", () => {
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
