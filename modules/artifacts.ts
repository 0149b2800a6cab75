/**
 * Deploy-time artifacts: every file under dags/ and spark-jobs/ becomes an S3 object in
 * the artifacts bucket.
 *
 * - DAG files keep their relative path (`dags/<path>`) so nodes can mirror the prefix
 *   onto EFS with `aws s3 sync s3://<artifacts>/dags/ <efs>/dags/ --delete`.
 * - Spark scripts are content-addressed (`spark-jobs/<sha256[:16]>/<file>`): a changed
 *   script gets a new URI, so an EMR step never runs a half-updated script and the
 *   `spark_job_uri` variable changes; tasks read it at run time, so no node is replaced.
 *
 * Files become cdktf TerraformAssets, whose stack-relative, content-hashed paths keep
 * the synthesized JSON identical on every machine. A missing or empty folder uploads
 * nothing (the URIs still point where uploads would go).
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { S3Object } from "@cdktf/provider-aws/lib/s3-object";
import { AssetType, TerraformAsset } from "cdktf";
import { Construct } from "constructs";
import { PropError, UNSET } from "./contract";

/** Properties of {@link ClusterArtifacts}. */
export interface ClusterArtifactsProps {
  /** Artifacts bucket (satisfied by an `aws_s3_bucket`). */
  readonly bucket: { readonly bucket: string };
  /** Directory whose files go under `dags/` (absolute, or relative to the cwd). */
  readonly dagsDir: string;
  /** Directory whose files go under `spark-jobs/<hash>/`. */
  readonly sparkJobsDir: string;
  /**
   * File name (in sparkJobsDir) of the Spark job whose URI is published as `spark_job_uri`.
   * @default the only `*.py` file in sparkJobsDir; required when there are several
   */
  readonly sparkJob?: string;
  /**
   * KMS key for the objects (the bucket's SSE-KMS key).
   * @default none - the bucket's default encryption applies
   */
  readonly kmsKey?: { readonly arn: string };
}

/** Files never uploaded: caches, compiled Python, editor/OS droppings. */
function uploadable(rel: string): boolean {
  const parts = rel.split("/");
  if (
    parts.some((p) => p === "__pycache__" || p === ".pytest_cache" || p === ".ruff_cache" || p === ".git")
  ) {
    return false;
  }
  const base = parts[parts.length - 1];
  if (base.endsWith(".pyc") || base === ".DS_Store" || base.endsWith("~")) return false;
  // Dot files are skipped except .airflowignore, which the dag-processor honours.
  return !base.startsWith(".") || base === ".airflowignore";
}

/** Relative POSIX paths of the files under dir, sorted; [] when dir is missing. */
export function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  if (!statSync(dir).isDirectory()) {
    throw new PropError("listFiles", "dir", dir, "a directory");
  }
  const out: string[] = [];
  const walk = (sub: string): void => {
    for (const entry of readdirSync(path.join(dir, sub), { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    )) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (uploadable(`${rel}/x`)) walk(rel);
      } else if (entry.isFile() && uploadable(rel)) {
        out.push(rel);
      }
    }
  };
  walk("");
  return out;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".py": "text/x-python",
  ".sql": "application/sql",
  ".json": "application/json",
  ".yaml": "application/yaml",
  ".yml": "application/yaml",
  ".txt": "text/plain",
  ".md": "text/markdown",
  ".csv": "text/csv",
};

/** Uploads dags/ and spark-jobs/ to the artifacts bucket on deploy. */
export class ClusterArtifacts extends Construct {
  /** `s3://<bucket>/dags/` (the `artifacts/dags-uri` parameter). */
  public readonly dagsUri: string;
  /** `s3://` URI of the published Spark job, or "none" when there is none. */
  public readonly sparkJobUri: string;
  /** Object per DAG file, keyed by relative path. */
  public readonly dagObjects: Readonly<Record<string, S3Object>>;
  /** Object per Spark file, keyed by file name. */
  public readonly sparkObjects: Readonly<Record<string, S3Object>>;
  /** S3 key per Spark file, keyed by file name. */
  public readonly sparkKeys: Readonly<Record<string, string>>;

  public constructor(scope: Construct, id: string, props: ClusterArtifactsProps) {
    super(scope, id);
    const dagsDir = path.resolve(props.dagsDir);
    const sparkDir = path.resolve(props.sparkJobsDir);
    const dagFiles = listFiles(dagsDir);
    const sparkFiles = listFiles(sparkDir);
    const bucket = props.bucket.bucket;
    this.dagsUri = `s3://${bucket}/dags/`;

    const upload = (objId: string, file: string, key: string, hash: string): S3Object => {
      const asset = new TerraformAsset(this, `${objId}-asset`, { path: file, type: AssetType.FILE });
      return new S3Object(this, objId, {
        bucket,
        key,
        source: asset.path,
        // Content hash computed at synth: a changed file re-uploads, an unchanged one
        // does not (etag would not match an SSE-KMS object's ETag).
        sourceHash: hash,
        contentType: CONTENT_TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream",
        kmsKeyId: props.kmsKey?.arn,
      });
    };
    const sha256 = (file: string): string => createHash("sha256").update(readFileSync(file)).digest("hex");
    const objId = (kind: string, rel: string): string =>
      `${kind}-${rel.replace(/[^A-Za-z0-9]+/g, "-").slice(0, 60)}-${createHash("sha256").update(rel).digest("hex").slice(0, 8)}`;

    const dagObjects: Record<string, S3Object> = {};
    for (const rel of dagFiles) {
      const file = path.join(dagsDir, rel);
      dagObjects[rel] = upload(objId("dag", rel), file, `dags/${rel}`, sha256(file));
    }
    const sparkObjects: Record<string, S3Object> = {};
    const sparkKeys: Record<string, string> = {};
    for (const rel of sparkFiles) {
      const file = path.join(sparkDir, rel);
      const hash = sha256(file);
      const key = `spark-jobs/${hash.slice(0, 16)}/${rel}`;
      sparkKeys[rel] = key;
      sparkObjects[rel] = upload(objId("spark", rel), file, key, hash);
    }
    this.dagObjects = dagObjects;
    this.sparkObjects = sparkObjects;
    this.sparkKeys = sparkKeys;

    const pyJobs = sparkFiles.filter((f) => f.endsWith(".py") && !f.includes("/") && !f.startsWith("test_"));
    let job: string | undefined;
    if (props.sparkJob !== undefined) {
      if (!sparkKeys[props.sparkJob]) {
        throw new PropError(
          this,
          "sparkJob",
          props.sparkJob,
          `a file in ${props.sparkJobsDir} (${sparkFiles.join(", ") || "it has none"})`,
        );
      }
      job = props.sparkJob;
    } else if (pyJobs.length === 1) {
      job = pyJobs[0];
    } else if (pyJobs.length > 1) {
      throw new PropError(
        this,
        "sparkJob",
        undefined,
        `one of ${pyJobs.join(", ")} (${props.sparkJobsDir} holds ${pyJobs.length} scripts)`,
      );
    }
    this.sparkJobUri = job ? `s3://${bucket}/${sparkKeys[job]}` : UNSET;
  }
}
