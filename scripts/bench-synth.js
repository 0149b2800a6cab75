#!/usr/bin/env node
/**
 * `npm run bench:synth`: full-stack synth time (both stacks, `node dist/main.js` as
 * `cdktf synth` runs it) beside the floor `node -e 'require("cdktf")'`, measured in the
 * same run, plus the resource counts. A benchmark, not a test: it prints numbers and
 * asserts nothing. Usage: node scripts/bench-synth.js [runs=5]; builds first.
 */
"use strict";
const { execFileSync, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const runs = Number(process.argv[2] ?? 5);
if (!Number.isInteger(runs) || runs < 1 || runs > 50) {
  process.stderr.write(`bench-synth: runs must be an integer from 1 to 50, got ${process.argv[2]}\n`);
  process.exit(2);
}

// Always build (incremental), so the numbers are for the current source.
execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { cwd: root, stdio: "inherit" });

const env = { ...process.env, CHECKPOINT_DISABLE: "1", AIRFLOW_ENV: process.env.AIRFLOW_ENV ?? "dev" };

/** Wall time of one child process in ms; fails loudly if the child fails. */
function time(args, extraEnv = {}) {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: root, env: { ...env, ...extraEnv }, encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) {
    process.stderr.write(`bench-synth: node ${args.join(" ")} failed:\n${r.stderr}\n`);
    process.exit(1);
  }
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-synth-"));
try {
  // Warm the file-system cache once so the first measured run is not an outlier.
  time(["-e", 'require("cdktf")']);
  time(["dist/main.js"], { CDKTF_OUTDIR: path.join(tmp, "warm") });

  const floor = [];
  const synth = [];
  for (let i = 0; i < runs; i++) {
    // Interleaved, so both see the same machine load.
    floor.push(time(["-e", 'require("cdktf")']));
    synth.push(time(["dist/main.js"], { CDKTF_OUTDIR: path.join(tmp, `run-${i}`) }));
  }

  const stacksDir = path.join(tmp, "run-0", "stacks");
  const counts = fs
    .readdirSync(stacksDir)
    .sort()
    .map((stack) => {
      const json = JSON.parse(fs.readFileSync(path.join(stacksDir, stack, "cdk.tf.json"), "utf8"));
      const resources = Object.values(json.resource ?? {}).reduce(
        (n, byName) => n + Object.keys(byName).length,
        0,
      );
      const data = Object.values(json.data ?? {}).reduce((n, byName) => n + Object.keys(byName).length, 0);
      return { stack, resources, data };
    });

  const f = median(floor);
  const s = median(synth);
  const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
  console.log(
    `synth benchmark (AIRFLOW_ENV=${env.AIRFLOW_ENV}, median of ${runs}, node ${process.version}, ${os.cpus().length} CPUs)`,
  );
  console.log(
    `  floor  node -e 'require("cdktf")'   ${fmt(f)}   (min ${fmt(Math.min(...floor))}, max ${fmt(Math.max(...floor))})`,
  );
  console.log(
    `  synth  node dist/main.js (2 stacks)  ${fmt(s)}   (min ${fmt(Math.min(...synth))}, max ${fmt(Math.max(...synth))})`,
  );
  console.log(`  synth above floor                  ${fmt(s - f)}   (${(s / f).toFixed(1)}x the floor)`);
  for (const c of counts)
    console.log(
      `  ${c.stack.padEnd(20)} ${String(c.resources).padStart(4)} resources, ${c.data} data sources`,
    );
  console.log(
    `  total                ${String(counts.reduce((n, c) => n + c.resources, 0)).padStart(4)} resources`,
  );
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
