#!/usr/bin/env node
/**
 * Runs checkov over synthesized cdktf stacks and applies the reasoned skips recorded in
 * the JSON by modules/checkov.ts (`"//": {"checkov": {"skip": [{id, comment}]}}` on a
 * resource or data source). checkov's terraform_json runner ignores inline skips, so
 * this gate does it: a failed check passes only if its resource carries a skip with
 * that id and a reason; a skip that matches no failure is stale and fails the gate.
 *
 * Usage: node scripts/checkov-gate.js <checkov-binary> <stack-dir>...
 *        (CHECKOV_GATE_VERBOSE=1 prints every skip with its reason)
 * Exit 0 when every stack has zero unexcused failures and no stale skips.
 */
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const os = require("node:os");

const [checkov, ...dirs] = process.argv.slice(2);
if (!checkov || dirs.length === 0) {
  process.stderr.write("usage: checkov-gate.js <checkov-binary> <stack-dir>...\n");
  process.exit(2);
}

/** logical name -> { address, skips[] } for every resource and data source of a stack. */
function skipIndex(stackJson) {
  const index = new Map();
  for (const [block, prefix] of [
    ["resource", ""],
    ["data", "data."],
  ]) {
    for (const [type, byName] of Object.entries(stackJson[block] ?? {})) {
      for (const [name, body] of Object.entries(byName)) {
        const skips = body?.["//"]?.checkov?.skip ?? [];
        index.set(name, { address: `${prefix}${type}.${name}`, skips });
      }
    }
  }
  return index;
}

/** checkov's JSON report is an object for one framework and a list for several. */
function failedChecks(report) {
  const reports = Array.isArray(report) ? report : [report];
  return reports.flatMap((r) => r.results?.failed_checks ?? []);
}
function summed(report, field) {
  const reports = Array.isArray(report) ? report : [report];
  return reports.reduce((n, r) => n + (r.summary?.[field] ?? 0), 0);
}

let bad = 0;
for (const dir of dirs) {
  const file = path.join(dir, "cdk.tf.json");
  if (!fs.existsSync(file)) {
    process.stderr.write(`checkov-gate: ${file} not found (synth first)\n`);
    process.exit(2);
  }
  let stackJson;
  try {
    stackJson = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    process.stderr.write(`checkov-gate: ${file} is not valid JSON (${e.message})\n`);
    process.exit(2);
  }
  const index = skipIndex(stackJson);
  // checkov's terraform_json parser takes only objects inside the `terraform` block and
  // fails the whole file on a string such as `required_version`, which no check reads:
  // scan a copy without the block's scalar settings.
  const scanDir = fs.mkdtempSync(path.join(os.tmpdir(), "checkov-gate-"));
  const settings = stackJson.terraform ?? {};
  const scanned = {
    ...stackJson,
    terraform: Object.fromEntries(
      Object.entries(settings).filter(([, v]) => v !== null && typeof v === "object"),
    ),
  };
  fs.writeFileSync(path.join(scanDir, "cdk.tf.json"), JSON.stringify(scanned));
  const run = spawnSync(
    checkov,
    ["-d", scanDir, "--framework", "terraform_json", "--skip-download", "--quiet", "--compact", "-o", "json"],
    {
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
      env: {
        ...process.env,
        // Offline: no Prisma Cloud look-ups; a stray request hits a closed local port.
        BC_SKIP_MAPPING: "TRUE",
        HTTPS_PROXY: "http://127.0.0.1:9",
        HTTP_PROXY: "http://127.0.0.1:9",
        NO_PROXY: "",
      },
    },
  );
  fs.rmSync(scanDir, { recursive: true, force: true });
  if (run.error || (run.status !== 0 && run.status !== 1)) {
    process.stderr.write(`checkov-gate: checkov failed on ${dir}: ${run.error ?? run.stderr}\n`);
    process.exit(2);
  }
  const report = JSON.parse(run.stdout);
  const used = new Set();
  const failures = [];
  const skipped = [];
  for (const f of failedChecks(report)) {
    const name = f.resource.split(".").pop();
    const entry = index.get(name);
    const skip = entry?.skips.find(
      (s) => s.id === f.check_id && typeof s.comment === "string" && s.comment.trim(),
    );
    const address = entry?.address ?? f.resource;
    if (skip) {
      used.add(`${name}|${f.check_id}`);
      skipped.push(`${f.check_id} ${address}: ${skip.comment}`);
    } else {
      failures.push(`${f.check_id} ${address}: ${f.check_name}`);
    }
  }
  const stale = [];
  for (const [name, entry] of index) {
    for (const s of entry.skips) {
      if (!used.has(`${name}|${s.id}`))
        stale.push(`${s.id} ${entry.address}: skip matches no failure; remove it`);
    }
  }
  const stack = path.basename(path.resolve(dir));
  // A stack checkov could not parse, or in which it checked nothing, must not pass as clean.
  const parsingErrors = summed(report, "parsing_errors");
  const checked = summed(report, "passed") + summed(report, "failed") + summed(report, "skipped");
  if (parsingErrors > 0 || checked === 0) {
    console.log(
      `checkov ${stack}: ${parsingErrors} parsing errors, ${checked} checks run; refusing to call it clean`,
    );
    bad += 1;
    continue;
  }
  console.log(
    `checkov ${stack}: ${summed(report, "passed")} passed, ${failures.length} failed, ${skipped.length} skipped with reason, ${stale.length} stale skips`,
  );
  if (process.env.CHECKOV_GATE_VERBOSE) {
    for (const s of skipped) console.log(`  skip   ${s}`);
  } else if (skipped.length > 0) {
    // Per-check counts; CHECKOV_GATE_VERBOSE=1 lists every skip with its reason.
    const counts = new Map();
    for (const s of skipped) counts.set(s.split(" ")[0], (counts.get(s.split(" ")[0]) ?? 0) + 1);
    console.log(`  skipped: ${[...counts].map(([id, n]) => `${id} x${n}`).join(", ")}`);
  }
  for (const f of failures) console.log(`  FAILED ${f}`);
  for (const s of stale) console.log(`  STALE  ${s}`);
  bad += failures.length + stale.length;
}
process.exit(bad === 0 ? 0 : 1);
