/**
 * `npm run diff` on real synth output: the same source twice, dev against prod, and
 * hand-edited copies of dev (a database engine change, a renamed construct id), plus the
 * one-line refusals of bad input.
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

const ROOT = path.join(__dirname, "../..");
const work = mkdtempSync(path.join(tmpdir(), "synth-diff-"));
const dir = (name: string) => path.join(work, name);

type Stack = { resource: Record<string, Record<string, Record<string, unknown>>> };
const stackFile = (out: string, stack: string) => path.join(out, "stacks", stack, "cdk.tf.json");
const readStack = (out: string, stack: string) =>
  JSON.parse(readFileSync(stackFile(out, stack), "utf8")) as Stack;

function synth(env: string, out: string) {
  const r = spawnSync("bash", ["scripts/synth.sh"], {
    cwd: ROOT,
    env: { ...process.env, AIRFLOW_ENV: env, SYNTH_OUT: out },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`synth ${env} failed:\n${r.stderr}`);
}

function diff(...args: string[]) {
  const r = spawnSync("node", ["scripts/diff.js", ...args], { cwd: ROOT, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Copy of the dev synth with one stack file edited. */
function editedDev(name: string, edit: (stack: Stack) => void) {
  cpSync(dir("dev"), dir(name), { recursive: true });
  const stack = readStack(dir(name), "airflow-dev");
  edit(stack);
  writeFileSync(stackFile(dir(name), "airflow-dev"), JSON.stringify(stack, null, 2));
  return dir(name);
}

// A resource line of the report: "  + address", "  - address" or "  ~ address".
const RESOURCE_LINE = /^ {2}[+~-] \S/m;

beforeAll(() => {
  synth("dev", dir("dev"));
  synth("dev", dir("dev-again"));
  synth("prod", dir("prod"));
}, 240_000);

describe("GIVEN two synths of the same source", () => {
  it("THEN it says nothing changed and lists no resource", () => {
    const r = diff(dir("dev"), dir("dev-again"));
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^No changes: /);
    expect(r.stdout).not.toMatch(RESOURCE_LINE);
    expect(r.stdout.trim().split("\n").at(-1)).toMatch(/^cost: /);
  });

  it("THEN --json says the same", () => {
    const report = JSON.parse(diff(dir("dev"), dir("dev-again"), "--json").stdout);
    expect(report).toMatchObject({
      changed: false,
      stacks: [],
      summary: { added: 0, removed: 0, changed: 0 },
    });
  });
});

describe("GIVEN dev against prod", () => {
  const worker = (out: string) => {
    const templates = readStack(out, out === dir("dev") ? "airflow-dev" : "airflow-prod").resource
      .aws_launch_template;
    const name = Object.keys(templates).find((n) => n.includes("worker"))!;
    return { address: `aws_launch_template.${name}`, instanceType: templates[name].instance_type };
  };
  let report: {
    stacks: {
      base_stack: string;
      head_stack: string;
      changed: { address: string; changes: { path: string; before: unknown; after: unknown }[] }[];
      hints: { kind: string; address: string; message: string }[];
    }[];
  };
  beforeAll(() => {
    report = JSON.parse(diff(dir("dev"), dir("prod"), "--json").stdout);
  });

  it("THEN the differently named cluster stacks are compared with each other", () => {
    expect(report.stacks.map((s) => [s.base_stack, s.head_stack])).toContainEqual([
      "airflow-dev",
      "airflow-prod",
    ]);
  });

  it("THEN the worker launch template's instance type change appears with both values", () => {
    const dev = worker(dir("dev"));
    const prod = worker(dir("prod"));
    expect(dev.instanceType).not.toEqual(prod.instanceType);
    const cluster = report.stacks.find((s) => s.head_stack === "airflow-prod")!;
    const changed = cluster.changed.find((c) => c.address === dev.address)!;
    expect(changed.changes).toContainEqual({
      path: "instance_type",
      before: dev.instanceType,
      after: prod.instanceType,
    });
  });

  it("THEN it hints that the worker fleet rolls (instance refresh)", () => {
    const cluster = report.stacks.find((s) => s.head_stack === "airflow-prod")!;
    const groups = readStack(dir("prod"), "airflow-prod").resource.aws_autoscaling_group;
    const workerGroup = Object.keys(groups).find((n) =>
      JSON.stringify(groups[n].launch_template).includes(worker(dir("prod")).address),
    )!;
    const roll = cluster.hints.find(
      (h) => h.kind === "roll" && h.address === `aws_autoscaling_group.${workerGroup}`,
    );
    expect(roll?.message).toMatch(/instance refresh/);
  });

  it("THEN the text report shows the change as a dotted path with old -> new", () => {
    const dev = worker(dir("dev"));
    const prod = worker(dir("prod"));
    const text = diff(dir("dev"), dir("prod")).stdout;
    expect(text).toContain(`  ~ ${dev.address}  [aws_launch_template]`);
    expect(text).toContain(`      instance_type: "${dev.instanceType}" -> "${prod.instanceType}"`);
  });
});

describe("GIVEN dev with the database engine changed by hand", () => {
  let edited = "";
  let db = "";
  let engine = "";
  beforeAll(() => {
    edited = editedDev("engine", (stack) => {
      [db] = Object.keys(stack.resource.aws_db_instance);
      engine = String(stack.resource.aws_db_instance[db].engine);
      stack.resource.aws_db_instance[db].engine = engine === "postgres" ? "mysql" : "postgres";
    });
  });

  it("THEN it lists that one change and hints that the database is replaced", () => {
    const r = diff(dir("dev"), edited);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`  ~ aws_db_instance.${db}  [aws_db_instance]`);
    expect(r.stdout).toMatch(new RegExp(`^ {6}engine: "${engine}" -> "\\w+"$`, "m"));
    expect(r.stdout).toMatch(new RegExp(`! replaces aws_db_instance\\.${db}: engine cannot change in place`));
    expect(r.stdout).toContain("resources: 0 added, 0 removed, 1 changed");
  });
});

describe("GIVEN dev with one construct id renamed by hand", () => {
  it("THEN it shows a remove + add of the same type and a replace-by-rename hint", () => {
    let from = "";
    const edited = editedDev("rename", (stack) => {
      const buckets = stack.resource.aws_s3_bucket;
      from = Object.keys(buckets)[0];
      buckets[`${from}_renamed`] = buckets[from];
      delete buckets[from];
    });
    const r = diff(dir("dev"), edited);
    expect(r.stdout).toContain(`  - aws_s3_bucket.${from}  [aws_s3_bucket]`);
    expect(r.stdout).toContain(`  + aws_s3_bucket.${from}_renamed  [aws_s3_bucket]`);
    expect(r.stdout).toContain(
      `! replace by rename: aws_s3_bucket.${from} -> aws_s3_bucket.${from}_renamed (same configuration)`,
    );
  });
});

describe("GIVEN bad input", () => {
  it.each([
    [
      "a missing directory",
      () => [path.join(work, "nope"), dir("dev")],
      /^diff: BASE_OUT: .*nope does not exist; allowed: /,
    ],
    [
      "a directory that is not a synth output",
      () => {
        mkdirSync(dir("empty"), { recursive: true });
        return [dir("dev"), dir("empty")];
      },
      /^diff: HEAD_OUT: .*empty has no readable manifest\.json; allowed: /,
    ],
    ["one directory only", () => [dir("dev")], /^diff: expected two synth output directories, got 1 /],
    [
      "an unknown option",
      () => [dir("dev"), dir("prod"), "--yaml"],
      /^diff: unknown option '--yaml'; allowed: --json/,
    ],
  ])("THEN %s is one line and exit 1", (_what, args, message) => {
    const r = diff(...args());
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });
});
