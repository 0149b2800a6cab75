/**
 * The README's real workflow, as far as it runs without AWS: the real synth script, the
 * real Terraform CLI (no provider is needed for backends and outputs) and cdktf's own
 * outputs-file writer.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

const ROOT = path.join(__dirname, "../..");
// cdktf-cli's writer behind `cdktf deploy|output --outputs-file` (not a stand-in: the CLI calls exactly these).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const cdktfOutput = require("@cdktf/cli-core/src/lib/output") as {
  getConstructIdsForOutputs: (stack: unknown, outputs: Record<string, unknown>) => Record<string, unknown>;
  saveOutputs: (file: string, outputs: Record<string, unknown>, sensitive: boolean) => Promise<void>;
};

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, CHECKPOINT_DISABLE: "1", TF_IN_AUTOMATION: "1", ...opts.env },
    encoding: "utf8",
  });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

describe("npm run synth and the state stack's own state", () => {
  // GIVEN a state stack state file where a first deploy left it
  const work = mkdtempSync(path.join(tmpdir(), "airflow-workflow-"));
  const stateDir = path.join(work, "state");
  const stateFile = path.join(stateDir, "airflow-state.tfstate");
  const out = path.join(work, "cdktf.out");
  const state = JSON.stringify({
    version: 4,
    terraform_version: "1.11.4",
    serial: 7,
    lineage: "00000000-0000-4000-8000-000000000000",
    outputs: { state_bucket: { value: "kept-bucket", type: "string" } },
    resources: [],
  });
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(stateFile, state);

  // WHEN npm run synth runs twice (each run deletes its output directory first)
  const env = { SYNTH_OUT: out, AIRFLOW_STATE_DIR: stateDir, AIRFLOW_ENV: "dev" };
  beforeAll(() => {
    run("bash", ["scripts/synth.sh"], { env });
    run("bash", ["scripts/synth.sh"], { env });
  }, 240_000);

  it("THEN the state file is untouched", () => {
    expect(readFileSync(stateFile, "utf8")).toBe(state);
  });

  it("THEN Terraform, run where cdktf runs it, finds that file through the synthesized backend", () => {
    const stackDir = path.join(out, "stacks", "airflow-state");
    const synthesized = JSON.parse(readFileSync(path.join(stackDir, "cdk.tf.json"), "utf8"));
    // Only the backend block: it needs no provider, so the real CLI can init offline.
    const probe = path.join(stackDir, "..", "probe");
    mkdirSync(probe, { recursive: true });
    writeFileSync(
      path.join(probe, "main.tf.json"),
      JSON.stringify({ terraform: { backend: synthesized.terraform.backend } }),
    );
    run("terraform", ["init", "-input=false", "-no-color"], { cwd: probe });
    const shown = run("terraform", ["output", "-json"], { cwd: probe });
    expect(JSON.parse(shown.stdout).state_bucket.value).toBe("kept-bucket");
  });
});

describe("the README's outputs recipe", () => {
  // GIVEN the synthesized cluster stack and a Terraform state holding its outputs
  const work = mkdtempSync(path.join(tmpdir(), "airflow-outputs-"));
  const out = path.join(work, "cdktf.out");
  let outputsFile = "";
  let outputNames: string[] = [];
  beforeAll(async () => {
    run("node", ["dist/main.js"], { env: { CDKTF_OUTDIR: out, AIRFLOW_ENV: "dev" } });
    const stack = JSON.parse(readFileSync(path.join(out, "stacks", "airflow-dev", "cdk.tf.json"), "utf8"));
    outputNames = Object.keys(stack.output);
    // Real Terraform applies a config of the same outputs with known values (no provider
    // needed) and prints them as `terraform output -json` does after a deploy.
    const tf = path.join(work, "tf");
    mkdirSync(tf);
    writeFileSync(
      path.join(tf, "main.tf.json"),
      JSON.stringify({ output: Object.fromEntries(outputNames.map((n) => [n, { value: `value-of-${n}` }])) }),
    );
    run("terraform", ["init", "-input=false", "-no-color"], { cwd: tf });
    run("terraform", ["apply", "-auto-approve", "-input=false", "-no-color"], { cwd: tf });
    const tfOutputs = JSON.parse(run("terraform", ["output", "-json"], { cwd: tf }).stdout);
    // WHEN cdktf writes the outputs file as `cdktf deploy --outputs-file` does
    outputsFile = path.join(work, "outputs-dev.json");
    await cdktfOutput.saveOutputs(
      outputsFile,
      cdktfOutput.getConstructIdsForOutputs(stack, tfOutputs),
      false,
    );
  }, 240_000);

  const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
  const recipes = [...readme.matchAll(/jq -r '([^']+)' outputs-dev\.json/g)].map((m) => m[1]);

  it("THEN the README has recipes to test", () => {
    expect(recipes.length).toBeGreaterThan(0);
  });

  it("THEN every jq recipe in the README reads a real value from it", () => {
    for (const filter of recipes) {
      const value = run("jq", ["-r", filter, outputsFile]).stdout.trim();
      expect(value).toMatch(/^value-of-\w+$/);
    }
  });

  it("THEN the scripts' path to the UI URL reads it too", () => {
    const ui = readFileSync(path.join(ROOT, "scripts/ui.sh"), "utf8");
    const filter = /jq -r --arg s "\$stack" '([^']+)'/.exec(ui)?.[1];
    expect(filter).toBeDefined();
    const value = run("jq", ["-r", "--arg", "s", "airflow-dev", filter as string, outputsFile]).stdout.trim();
    expect(value).toBe("value-of-ui_url");
  });
});
