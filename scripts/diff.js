#!/usr/bin/env node
/**
 * `npm run -s diff -- BASE_OUT HEAD_OUT [--json]`: what a change does to the synthesized
 * Terraform, for PR review. Reads two cdktf synth output directories (manifest.json +
 * stacks/<stack>/cdk.tf.json, as `SYNTH_OUT=DIR npm run synth` writes them) and prints,
 * per stack, the resources (and data sources, outputs, provider and terraform settings)
 * added, removed and changed, each change as a dotted attribute path with its old and new
 * value; then hints where Terraform would replace or roll something, and the monthly
 * cost delta. It never runs Terraform and needs no credentials: the hints come from the
 * table below, not from a plan.
 */
"use strict";
const fs = require("node:fs");
const path = require("node:path");

/**
 * Attributes the Terraform AWS provider (v5/v6) marks ForceNew: a change destroys the
 * resource and creates a new one. Written from the provider's schema by hand (no provider
 * schema is available offline), for the types this project creates; it is deliberately
 * small, and a type or attribute missing here gets no hint, not a wrong one.
 * Top-level attribute names; a change anywhere under one counts.
 */
const FORCE_NEW = {
  aws_vpc: ["cidr_block"],
  aws_subnet: ["cidr_block", "vpc_id", "availability_zone", "availability_zone_id"],
  aws_nat_gateway: ["subnet_id", "allocation_id", "connectivity_type"],
  aws_vpc_endpoint: ["vpc_id", "service_name", "vpc_endpoint_type"],
  aws_security_group: ["name", "name_prefix", "vpc_id", "description"],
  aws_db_instance: [
    "engine",
    "identifier",
    "identifier_prefix",
    "db_subnet_group_name",
    "storage_encrypted",
    "kms_key_id",
    "username",
    "db_name",
    "availability_zone",
    "character_set_name",
  ],
  aws_db_subnet_group: ["name", "name_prefix"],
  aws_db_parameter_group: ["name", "name_prefix", "family"],
  aws_elasticache_replication_group: [
    "replication_group_id",
    "engine",
    "subnet_group_name",
    "at_rest_encryption_enabled",
    "kms_key_id",
    "port",
  ],
  aws_elasticache_subnet_group: ["name"],
  aws_elasticache_parameter_group: ["name", "family"],
  aws_efs_file_system: [
    "performance_mode",
    "encrypted",
    "kms_key_id",
    "creation_token",
    "availability_zone_name",
  ],
  aws_efs_mount_target: ["file_system_id", "subnet_id", "ip_address"],
  aws_efs_access_point: ["file_system_id", "posix_user", "root_directory"],
  aws_lb: ["name", "name_prefix", "internal", "load_balancer_type"],
  aws_lb_target_group: ["name", "name_prefix", "port", "protocol", "vpc_id", "target_type"],
  aws_autoscaling_group: ["name", "name_prefix"],
  aws_launch_template: ["name", "name_prefix"],
  aws_kms_key: ["customer_master_key_spec", "key_usage"],
  aws_s3_bucket: ["bucket", "bucket_prefix"],
  aws_iam_role: ["name", "name_prefix", "path"],
  aws_iam_instance_profile: ["name", "name_prefix", "path"],
  aws_secretsmanager_secret: ["name", "name_prefix"],
  aws_cloudwatch_log_group: ["name", "name_prefix"],
  aws_ssm_parameter: ["name"],
};

/** Types whose replacement loses data unless it is restored from a backup. */
const STATEFUL = new Set([
  "aws_db_instance",
  "aws_elasticache_replication_group",
  "aws_efs_file_system",
  "aws_s3_bucket",
  "aws_kms_key",
  "aws_secretsmanager_secret",
]);

const VALUE_WIDTH = 60;

/** One line for bad input: the caller prints it and exits 1. */
class InputError extends Error {}

/** A stack's comparable blocks: address -> { type, kind, path, body }. */
function blocksOf(json) {
  const blocks = new Map();
  const add = (address, type, kind, body) => {
    const { "//": meta, ...rest } =
      body && typeof body === "object" && !Array.isArray(body) ? body : { value: body };
    blocks.set(address, { type, kind, path: meta?.metadata?.path ?? "", body: rest });
  };
  for (const [type, byName] of Object.entries(json.resource ?? {}))
    for (const [name, body] of Object.entries(byName)) add(`${type}.${name}`, type, "resource", body);
  for (const [type, byName] of Object.entries(json.data ?? {}))
    for (const [name, body] of Object.entries(byName)) add(`data.${type}.${name}`, type, "data", body);
  for (const [name, body] of Object.entries(json.output ?? {}))
    add(`output.${name}`, "output", "output", body);
  for (const [name, body] of Object.entries(json.provider ?? {}))
    add(`provider.${name}`, "provider", "setting", { config: body });
  if (json.terraform) add("terraform", "terraform", "setting", json.terraform);
  return blocks;
}

/** The stacks of one synth output directory: name -> parsed cdk.tf.json. */
function readSynth(dir, label) {
  const allowed = "allowed: a cdktf synth output directory (SYNTH_OUT=DIR npm run synth)";
  if (!fs.existsSync(dir)) throw new InputError(`${label}: ${dir} does not exist; ${allowed}`);
  if (!fs.statSync(dir).isDirectory())
    throw new InputError(`${label}: ${dir} is not a directory; ${allowed}`);
  const manifestFile = path.join(dir, "manifest.json");
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8"));
  } catch {
    throw new InputError(`${label}: ${dir} has no readable manifest.json; ${allowed}`);
  }
  if (!manifest.stacks || typeof manifest.stacks !== "object")
    throw new InputError(`${label}: ${manifestFile} lists no stacks; ${allowed}`);
  const stacks = new Map();
  for (const stack of Object.values(manifest.stacks)) {
    const file = path.join(dir, stack.synthesizedStackPath ?? "");
    try {
      stacks.set(stack.name, JSON.parse(fs.readFileSync(file, "utf8")));
    } catch {
      throw new InputError(`${label}: stack ${stack.name}: ${file} is missing or not JSON; ${allowed}`);
    }
  }
  return stacks;
}

/**
 * Stacks compared with each other: same name, or, when exactly one stack on each side is
 * left over, those two (a renamed stack, or dev against prod).
 */
function pairStacks(base, head) {
  const pairs = [];
  for (const name of [...new Set([...base.keys(), ...head.keys()])].sort())
    if (base.has(name) && head.has(name)) pairs.push({ base: name, head: name });
  const onlyBase = [...base.keys()].filter((n) => !head.has(n));
  const onlyHead = [...head.keys()].filter((n) => !base.has(n));
  if (onlyBase.length === 1 && onlyHead.length === 1) pairs.push({ base: onlyBase[0], head: onlyHead[0] });
  else {
    for (const name of onlyBase) pairs.push({ base: name, head: null });
    for (const name of onlyHead) pairs.push({ base: null, head: name });
  }
  return pairs;
}

/** Leaf differences between two JSON values as { path, before, after } (undefined = absent). */
function deepDiff(before, after, prefix = "") {
  const isObj = (v) => v !== null && typeof v === "object";
  if (isObj(before) && isObj(after) && Array.isArray(before) === Array.isArray(after)) {
    const keys = Array.isArray(before)
      ? [...Array(Math.max(before.length, after.length)).keys()].map(String)
      : [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => deepDiff(before[k], after[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ path: prefix, before, after }];
}

/**
 * Old and new value for one line: JSON, `${...}` tokens as they are. Long values are cut
 * to a window that starts just before the first character where the two differ, so a
 * change at the end of a long string (an ARN, user data) stays visible.
 */
function shortenPair(before, after) {
  const texts = [before, after].map((v) => (v === undefined ? undefined : JSON.stringify(v)));
  let start = 0;
  if (texts[0] !== undefined && texts[1] !== undefined) {
    while (start < texts[0].length && texts[0][start] === texts[1][start]) start++;
    start = Math.max(0, start - 20);
  }
  return texts.map((text) => {
    if (text === undefined) return "(none)";
    if (text.length <= VALUE_WIDTH) return text;
    const from = Math.min(start, Math.max(0, text.length - VALUE_WIDTH));
    const cut = `${from ? "…" : ""}${text.slice(from, from + VALUE_WIDTH)}${from + VALUE_WIDTH < text.length ? "…" : ""}`;
    return `${cut} (${text.length} chars)`;
  });
}

/** Hints for one stack pair: replacements, fleet rolls, renames. */
function hintsFor(changed, added, removed, headBlocks) {
  const hints = [];
  for (const c of changed) {
    const forced = [...new Set(c.changes.map((d) => d.path.split(".")[0]))].filter((attr) =>
      (FORCE_NEW[c.type] ?? []).includes(attr),
    );
    if (forced.length)
      hints.push({
        kind: "replace",
        address: c.address,
        message: `replaces ${c.address}: ${forced.join(", ")} cannot change in place (ForceNew)${
          STATEFUL.has(c.type) ? "; its data is lost unless restored from a backup" : ""
        }`,
      });
    if (c.type === "aws_launch_template") {
      // An ASG that follows latest_version picks up the new version; instance_refresh
      // then replaces its running instances, otherwise only new instances get it.
      const ref = `\${${c.address}.`;
      for (const [address, b] of headBlocks)
        if (
          b.type === "aws_autoscaling_group" &&
          JSON.stringify(b.body.launch_template ?? "").includes(ref)
        ) {
          const refresh = b.body.instance_refresh;
          hints.push({
            kind: "roll",
            address,
            message: refresh
              ? `rolls ${address}: a new launch template version starts an instance refresh (${refresh.strategy ?? "Rolling"}, min healthy ${refresh.preferences?.min_healthy_percentage ?? "?"}%)`
              : `${address}: new launch template version; running instances keep the old one (no instance_refresh)`,
          });
        }
    }
  }
  // A changed construct id is a new Terraform address: destroy + create of the same type.
  const addedByType = new Map();
  for (const a of added) addedByType.set(a.type, [...(addedByType.get(a.type) ?? []), a]);
  for (const r of removed) {
    if (r.kind !== "resource") continue;
    const candidates = addedByType.get(r.type) ?? [];
    const same = candidates.find((a) => JSON.stringify(a.body) === JSON.stringify(r.body));
    const only = candidates.length === 1 && removed.filter((x) => x.type === r.type).length === 1;
    const match = same ?? (only ? candidates[0] : null);
    if (!match) continue;
    addedByType.set(
      r.type,
      candidates.filter((a) => a !== match),
    );
    hints.push({
      kind: "rename",
      address: r.address,
      message: `replace by rename: ${r.address} -> ${match.address} ${
        same ? "(same configuration)" : "(same type)"
      }: Terraform destroys one and creates the other${
        STATEFUL.has(r.type) ? ", losing its data" : ""
      }; keep the construct id, or add a moved block`,
    });
  }
  return hints;
}

/** The comparison of one stack pair. */
function diffStack(pair, base, head) {
  const b = pair.base ? blocksOf(base.get(pair.base)) : new Map();
  const h = pair.head ? blocksOf(head.get(pair.head)) : new Map();
  const entry = (address, block) => ({
    address,
    type: block.type,
    kind: block.kind,
    path: block.path,
    body: block.body,
  });
  const added = [...h].filter(([a]) => !b.has(a)).map(([a, block]) => entry(a, block));
  const removed = [...b].filter(([a]) => !h.has(a)).map(([a, block]) => entry(a, block));
  const changed = [];
  for (const [address, block] of h) {
    if (!b.has(address)) continue;
    const changes = deepDiff(b.get(address).body, block.body);
    if (changes.length) changed.push({ ...entry(address, block), changes });
  }
  const hints = hintsFor(changed, added, removed, h);
  const strip = (x) => Object.fromEntries(Object.entries(x).filter(([k]) => k !== "body"));
  return {
    stack: pair.head ?? pair.base,
    base_stack: pair.base,
    head_stack: pair.head,
    added: added.map(strip),
    removed: removed.map(strip),
    changed: changed.map(strip),
    hints,
  };
}

// ---- monthly cost delta -------------------------------------------------------------
// scripts/cost.js prices a synth output directory (priceOutDir); until it exists, or when
// it cannot price one of the two, the report says so instead of guessing.
async function costDelta(baseDir, headDir) {
  const costModule = path.join(__dirname, "cost.js");
  if (!fs.existsSync(costModule)) return { available: false, reason: "scripts/cost.js is not there" };
  try {
    const { priceOutDir } = require(costModule);
    const before = await priceOutDir(baseDir);
    const after = await priceOutDir(headDir);
    return {
      available: true,
      region: after.region,
      base_usd_month: before.total_usd_month,
      head_usd_month: after.total_usd_month,
      delta_usd_month: after.total_usd_month - before.total_usd_month,
    };
  } catch (e) {
    return { available: false, reason: e.message.split("\n")[0] };
  }
}

function costLine(cost) {
  if (!cost.available) return `cost: unavailable (${cost.reason})`;
  const usd = (n) => `$${n.toFixed(2)}`;
  const sign = cost.delta_usd_month >= 0 ? "+" : "-";
  return `cost: ${usd(cost.base_usd_month)}/month -> ${usd(cost.head_usd_month)}/month (${sign}${usd(
    Math.abs(cost.delta_usd_month),
  )}/month, ${cost.region})`;
}
// --------------------------------------------------------------------------------------

/** The whole report as an object (what --json prints). */
async function compare(baseDir, headDir) {
  const base = readSynth(baseDir, "BASE_OUT");
  const head = readSynth(headDir, "HEAD_OUT");
  const stacks = pairStacks(base, head).map((pair) => diffStack(pair, base, head));
  const count = (kind) => stacks.reduce((n, s) => n + s[kind].filter((x) => x.kind === "resource").length, 0);
  const summary = { added: count("added"), removed: count("removed"), changed: count("changed") };
  const anything = stacks.some(
    (s) => s.added.length || s.removed.length || s.changed.length || s.base_stack !== s.head_stack,
  );
  return {
    base: baseDir,
    head: headDir,
    changed: anything,
    summary,
    stacks: anything ? stacks : [],
    cost: await costDelta(baseDir, headDir),
  };
}

/** The report for people (and the PR comment). */
function render(report) {
  const out = [];
  if (!report.changed) {
    out.push(`No changes: ${report.base} and ${report.head} synthesize the same Terraform.`);
    out.push(costLine(report.cost));
    return out.join("\n");
  }
  const where = (x) => (x.path ? `  (${x.path})` : "");
  for (const s of report.stacks) {
    const title =
      s.base_stack === s.head_stack
        ? `stack ${s.stack}`
        : s.base_stack && s.head_stack
          ? `stack ${s.base_stack} -> ${s.head_stack} (compared as one stack)`
          : s.head_stack
            ? `stack ${s.head_stack} (new)`
            : `stack ${s.base_stack} (removed)`;
    const total = s.added.length + s.removed.length + s.changed.length;
    if (!total && s.base_stack === s.head_stack) continue;
    out.push(`${title}: ${s.added.length} added, ${s.removed.length} removed, ${s.changed.length} changed`);
    for (const a of s.added) out.push(`  + ${a.address}  [${a.type}]${where(a)}`);
    for (const r of s.removed) out.push(`  - ${r.address}  [${r.type}]${where(r)}`);
    for (const c of s.changed) {
      out.push(`  ~ ${c.address}  [${c.type}]${where(c)}`);
      for (const d of c.changes) out.push(`      ${d.path}: ${shortenPair(d.before, d.after).join(" -> ")}`);
    }
    if (s.hints.length) {
      out.push("  hints:");
      for (const h of s.hints) out.push(`    ! ${h.message}`);
    }
    out.push("");
  }
  const { added, removed, changed } = report.summary;
  out.push(`resources: ${added} added, ${removed} removed, ${changed} changed`);
  out.push(costLine(report.cost));
  return out.join("\n");
}

async function main(argv) {
  const usage = "usage: npm run -s diff -- BASE_OUT HEAD_OUT [--json]";
  const positional = [];
  let json = false;
  for (const arg of argv) {
    if (arg === "--json") json = true;
    else if (arg === "-h" || arg === "--help") return console.log(usage);
    else if (arg.startsWith("-")) throw new InputError(`unknown option '${arg}'; allowed: --json (${usage})`);
    else positional.push(arg);
  }
  if (positional.length !== 2)
    throw new InputError(`expected two synth output directories, got ${positional.length} (${usage})`);
  const report = await compare(positional[0], positional[1]);
  console.log(json ? JSON.stringify(report, null, 2) : render(report));
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    if (!(e instanceof InputError)) throw e;
    process.stderr.write(`diff: ${e.message}\n`);
    process.exit(1);
  });
}

module.exports = { compare, render, FORCE_NEW };
