#!/usr/bin/env node
/**
 * `npm run bench:synth`: where the time of `npm run synth` goes, each part beside the
 * floor `node -e 'require("cdktf")'`, all measured in the same run and interleaved so
 * every part sees the same machine load:
 *   compile (warm)   scripts/compile.js with nothing to do (the usual case)
 *   compile (cold)   scripts/compile.js after its record is dropped (every file transpiled)
 *   app              node dist/main.js, both stacks (what the main command runs)
 *   main command     bash scripts/synth.sh (what `npm run synth` runs, npm's own start-up aside)
 *   cdktf synth      npx cdktf synth through cdktf.json's app, for comparison
 * A benchmark, not a test: it prints numbers and asserts nothing.
 * Usage: node scripts/bench-synth.js [runs=5]
 */
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { appEnv } = require("./synth");

const root = path.resolve(__dirname, "..");
const runs = Number(process.argv[2] ?? 5);
if (!Number.isInteger(runs) || runs < 1 || runs > 50) {
  process.stderr.write(`bench-synth: runs must be an integer from 1 to 50, got ${process.argv[2]}\n`);
  process.exit(2);
}

const env = {
  ...process.env,
  CHECKPOINT_DISABLE: "1",
  CDKTF_DISABLE_TELEMETRY: "1",
  AIRFLOW_ENV: process.env.AIRFLOW_ENV ?? "dev",
};

/** Wall time of one child process in ms; fails loudly if the child fails. */
function time(cmd, args, extraEnv = {}) {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: root, env: { ...env, ...extraEnv }, encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) {
    process.stderr.write(`bench-synth: ${cmd} ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}\n`);
    process.exit(1);
  }
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const node = process.execPath;
const record = path.join(root, "dist", ".compile.json");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-synth-"));
const parts = [
  ["floor", `node -e 'require("cdktf")'`, () => time(node, ["-e", 'require("cdktf")'])],
  ["compile (warm)", "node scripts/compile.js, nothing to do", () => time(node, ["scripts/compile.js"])],
  [
    "compile (cold)",
    "node scripts/compile.js, every file",
    () => {
      fs.rmSync(record, { force: true });
      return time(node, ["scripts/compile.js"]);
    },
  ],
  [
    "app",
    "node dist/main.js (2 stacks)",
    (i) => time(node, ["dist/main.js"], appEnv(path.join(tmp, `app-${i}`))),
  ],
  [
    "main command",
    "bash scripts/synth.sh",
    (i) => time("bash", ["scripts/synth.sh"], { SYNTH_OUT: path.join(tmp, `main-${i}`) }),
  ],
  [
    "cdktf synth",
    "npx cdktf synth (CLI + cdktf.json's app)",
    (i) => time("npx", ["--no-install", "cdktf", "synth", "--output", path.join(tmp, `cli-${i}`)]),
  ],
];

try {
  // Warm the file-system cache and dist/ once so the first measured run is not an outlier.
  for (const [, , run] of parts) run("warm");
  const samples = parts.map(() => []);
  for (let i = 0; i < runs; i++) parts.forEach(([, , run], p) => samples[p].push(run(i)));

  const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
  const floor = median(samples[0]);
  console.log(
    `synth benchmark (AIRFLOW_ENV=${env.AIRFLOW_ENV}, median of ${runs}, node ${process.version}, ${os.cpus().length} CPUs)`,
  );
  parts.forEach(([name, what], p) => {
    const m = median(samples[p]);
    console.log(
      `  ${name.padEnd(15)} ${what.padEnd(42)} ${fmt(m)}  ${(m / floor).toFixed(1).padStart(5)}x floor   (min ${fmt(
        Math.min(...samples[p]),
      )}, max ${fmt(Math.max(...samples[p]))})`,
    );
  });
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
