#!/usr/bin/env node
/**
 * The fast path behind `npm run synth`: transpile what changed (scripts/compile.js), then
 * run `node dist/main.js` with the environment `cdktf synth --output DIR` gives the app,
 * so DIR is byte-for-byte what the CLI writes (manifest.json included; a jest test
 * compares the two) without the CLI's start-up, and the app's own `warning:` and error
 * lines reach the terminal instead of being buffered by the CLI.
 *
 *   node scripts/synth.js DIR   -> DIR/manifest.json + DIR/stacks/<stack>/cdk.tf.json
 *   require("./synth").appEnv(DIR) -> that environment, for the benchmark
 */
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { compile } = require("./compile");

const ROOT = path.resolve(__dirname, "..");

/**
 * What cdktf-cli 0.21 passes to the app command (cdktf-cli's synth-stack handler):
 * its own environment less TF_VAR_*, CDKTF_OUTDIR, CDKTF_CONTEXT_JSON (cdktf.json's
 * `context` when set, plus `cdktfRelativeModules`) and SYNTH_HCL_OUTPUT. Two settings are
 * left out on purpose: CDKTF_CONTINUE_SYNTH_ON_ERROR_ANNOTATIONS (the CLI reads the
 * annotations back and fails; without it the app itself fails, before writing a manifest)
 * and NODE_OPTIONS=--max-old-space-size=4096 (sized for generated provider bindings; ours
 * are prebuilt packages).
 * @param {string} outDir the output directory, as given to `cdktf synth --output`
 */
function appEnv(outDir) {
  const cdktfJson = JSON.parse(fs.readFileSync(path.join(ROOT, "cdktf.json"), "utf8"));
  const relativeModules = (cdktfJson.terraformModules ?? []).filter((m) =>
    /^\.\.?\//.test(typeof m === "string" ? m : m.source),
  );
  if (relativeModules.length)
    throw new Error("cdktf.json terraformModules has local modules, which only `npx cdktf synth` prepares");
  const context = cdktfJson.context ?? JSON.parse(process.env.CDKTF_CONTEXT_JSON || "{}");
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TF_VAR_")));
  return {
    ...env,
    CDKTF_OUTDIR: outDir,
    CDKTF_CONTEXT_JSON: JSON.stringify({ ...context, cdktfRelativeModules: relativeModules }),
    SYNTH_HCL_OUTPUT: "false",
  };
}

/** Resource count per stack and the state bucket, read back from the output. */
function summary(outDir) {
  const manifest = JSON.parse(fs.readFileSync(path.join(outDir, "manifest.json"), "utf8"));
  const lines = [];
  let bucket = "";
  for (const stack of Object.values(manifest.stacks).sort((a, b) => a.name.localeCompare(b.name))) {
    const file = path.join(outDir, stack.synthesizedStackPath);
    const json = JSON.parse(fs.readFileSync(file, "utf8"));
    const count = Object.values(json.resource ?? {}).reduce((n, byName) => n + Object.keys(byName).length, 0);
    bucket ||= json.terraform?.backend?.s3?.bucket ?? "";
    lines.push(`  ${stack.name.padEnd(24)} ${String(count).padStart(4)} resources  ${file}`);
  }
  return { lines, bucket };
}

/** The same progress line as scripts/lib.sh log(). */
const log = (msg) => process.stderr.write(`\x1b[1m==> ${msg}\x1b[0m\n`);

function main() {
  const outDir = process.argv[2];
  if (!outDir) throw new Error("usage: node scripts/synth.js OUT_DIR");
  compile();
  // cdktf's App creates the output directory but not its parents; a stale directory
  // would keep stacks that no longer exist.
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(path.resolve(outDir)), { recursive: true });
  const r = spawnSync(process.execPath, [path.join(ROOT, "dist/main.js")], {
    cwd: ROOT,
    env: appEnv(outDir),
    stdio: "inherit",
  });
  if (r.status !== 0) {
    // no half-written output for the next step to pick up
    fs.rmSync(outDir, { recursive: true, force: true });
    process.exit(1);
  }
  const { lines, bucket } = summary(outDir);
  const env = process.env.AIRFLOW_ENV || "dev";
  log(`Terraform JSON written to ${outDir}/stacks/ (deploy: npm run deploy -- ${env})`);
  if (bucket) log(`state bucket: ${bucket}`);
  console.log(lines.join("\n"));
}

if (require.main === module) {
  try {
    main();
  } catch (e) {
    process.stderr.write(`synth: ${e.message}\n`);
    process.exit(1);
  }
}

module.exports = { appEnv };
