/**
 * `npm run synth` runs the app without the cdktf CLI (scripts/synth.js), so it must give
 * the app the CLI's environment and write exactly what `npx cdktf synth --output DIR`
 * writes through cdktf.json's app: the same files, byte for byte, manifest.json and assets
 * included, for dev and prod.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

const ROOT = path.join(__dirname, "../..");

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv) {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, CHECKPOINT_DISABLE: "1", CDKTF_DISABLE_TELEMETRY: "1", ...env },
    encoding: "utf8",
  });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
}

/** Every file under dir, relative path -> content. */
function tree(dir: string, rel = ""): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(path.join(dir, rel)).sort()) {
    const p = path.join(rel, name);
    if (statSync(path.join(dir, p)).isDirectory()) for (const [k, v] of tree(dir, p)) files.set(k, v);
    else files.set(p, readFileSync(path.join(dir, p), "utf8"));
  }
  return files;
}

describe.each(["dev", "prod"])("npm run synth for %s", (env) => {
  // GIVEN the same source, synthesized once through the cdktf CLI and once through the main command
  const work = mkdtempSync(path.join(tmpdir(), `synth-fast-${env}-`));
  // Same depth: the state stack's local backend path is relative to the output directory.
  // The CLI needs the parent to exist; the main command creates it.
  const viaCli = path.join(work, "cli", "out");
  const viaMain = path.join(work, "main", "out");
  beforeAll(() => {
    mkdirSync(path.dirname(viaCli));
    run("npx", ["--no-install", "cdktf", "synth", "--output", viaCli], { AIRFLOW_ENV: env });
    run("bash", ["scripts/synth.sh"], { AIRFLOW_ENV: env, SYNTH_OUT: viaMain });
  }, 300_000);

  it("THEN both write the same files, byte for byte", () => {
    const cli = tree(viaCli);
    const main = tree(viaMain);
    expect([...main.keys()]).toEqual([...cli.keys()]);
    expect([...cli.keys()]).toEqual(expect.arrayContaining(["manifest.json"]));
    for (const [file, content] of cli) expect({ file, content: main.get(file) }).toEqual({ file, content });
  });
});
