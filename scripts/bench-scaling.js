#!/usr/bin/env node
/**
 * Worker autoscaling latency, simulated on the metric (prints figures, asserts nothing):
 * the time from a burst of queued tasks to the moment the group's desired capacity is what
 * the policies ask for (ceil(tasks / worker_concurrency), capped at workers.max).
 *
 * Model (modules/worker-scaling.ts): the scheduler timer publishes WorkersNeeded every
 * PUBLISH s at a random phase; CloudWatch closes 60 s periods and evaluates alarms LAG s
 * later; target tracking's managed scale-out alarm needs TT_POINTS breaching periods of
 * WorkersNeeded / GroupInServiceInstances, and sets desired = needed at once. At zero
 * workers that quotient has no value: the step alarm (1 period) sets desired = needed, up to
 * STEP_CAP (the policy's 20 steps); above that, target tracking goes on once a worker has
 * been in service for BOOT s.
 *
 *   node scripts/bench-scaling.js [--concurrency N] [--max N] [--boot S] [--lag S]
 */
"use strict";

const DEFAULTS = { concurrency: 16, max: 40, boot: 240, lag: 60, publish: 60, ttPoints: 3 };
/** Grid steps over the publisher's phase and the CloudWatch minute's phase. */
const STEPS = 30;
/** The largest capacity the from-zero step policy sets (MAX_STEP_ADJUSTMENTS in modules/worker-scaling.ts). */
const STEP_CAP = 20;

/** Parses `--name value` pairs into positive integers over {@link DEFAULTS}. */
function parseArgs(argv) {
  const opts = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, "");
    const value = Number(argv[i + 1]);
    if (!(name in DEFAULTS)) {
      throw new Error(
        `unknown option ${argv[i]}; allowed: ${Object.keys(DEFAULTS)
          .map((k) => `--${k}`)
          .join(" ")}`,
      );
    }
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`--${name}: got ${JSON.stringify(argv[i + 1])}; allowed: a positive integer`);
    }
    opts[name] = value;
  }
  return opts;
}

/** End of the 60 s CloudWatch period containing time t, periods starting at -offset. */
const periodEnd = (t, offset) => Math.floor((t + offset) / 60) * 60 + 60 - offset;

/**
 * Seconds from the burst (t = 0) until desired capacity reaches the target, for one
 * publisher phase (first publish after the burst at `phase` s).
 */
function timeToDesired(o, tasks, startWorkers, phase, offset) {
  const target = Math.min(o.max, Math.ceil(tasks / o.concurrency));
  if (target <= startWorkers) return 0;
  const firstPoint = phase; // first datapoint that counts the burst
  if (startWorkers > 0) {
    // TT_POINTS breaching periods, the first being the one that holds firstPoint
    return periodEnd(firstPoint, offset) + (o.ttPoints - 1) * 60 + o.lag;
  }
  // from zero: the step alarm on one period sets desired = needed up to STEP_CAP; beyond it,
  // target tracking once those workers are in service
  const firstFleet = periodEnd(firstPoint, offset) + o.lag;
  if (target <= STEP_CAP) return firstFleet;
  const inService = firstFleet + o.boot;
  const nextPoint = inService + ((((phase - inService) % o.publish) + o.publish) % o.publish);
  return periodEnd(nextPoint, offset) + (o.ttPoints - 1) * 60 + o.lag;
}

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / sorted.length;
  return { min: sorted[0], mean, p95: sorted[Math.floor(0.95 * (sorted.length - 1))], max: sorted.at(-1) };
}

function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`bench-scaling: ${e.message}`);
    process.exit(2);
  }
  console.log(
    `worker scaling, simulated: concurrency ${o.concurrency}, max ${o.max} workers, publish every ${o.publish} s, ` +
      `alarm lag ${o.lag} s, target tracking ${o.ttPoints} periods, boot-to-in-service ${o.boot} s`,
  );
  console.log("burst tasks | start workers | desired asked | seconds to desired: min / mean / p95 / max");
  for (const [tasks, start] of [
    [1, 0],
    [20, 0],
    [100, 0],
    [500, 0],
    [20, 1],
    [100, 1],
    [300, 2],
  ]) {
    const runs = [];
    for (let i = 0; i < STEPS; i++) {
      for (let j = 0; j < STEPS; j++) {
        runs.push(timeToDesired(o, tasks, start, (i * o.publish) / STEPS, (j * 60) / STEPS));
      }
    }
    const s = stats(runs);
    const target = Math.min(o.max, Math.ceil(tasks / o.concurrency));
    console.log(
      `${String(tasks).padStart(11)} | ${String(start).padStart(13)} | ${String(target).padStart(13)} | ` +
        `${s.min.toFixed(0)} / ${s.mean.toFixed(0)} / ${s.p95.toFixed(0)} / ${s.max.toFixed(0)}`,
    );
  }
}

main();
