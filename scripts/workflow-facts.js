#!/usr/bin/env node
// The names the workflow scripts (deploy, ui, destroy) act on, derived from the validated
// config by the same compiled modules that synthesize the stacks, so a script can never
// disagree with the stack about a name. Prints one JSON object; a bad config prints its
// one-line error and exits 1. Env: AIRFLOW_ENV, AIRFLOW_CONFIG_DIR, AIRFLOW_ACCOUNT_ID, and
// AIRFLOW_CALLER_ARN (the deployer's IAM role or user ARN, to check it against the state
// bucket policy the state stack writes).
"use strict";
const path = require("node:path");

const dist = path.join(__dirname, "..", "dist", "modules");
try {
  const { loadConfig, clusterNames } = require(path.join(dist, "config"));
  const { STATE_STACK_BACKUP_KEY, stateStackStatePath } = require(path.join(dist, "state-stack"));
  const { DRAIN_HOOK_NAME } = require(path.join(dist, "node-group"));
  const { clusterKeyAlias } = require(path.join(dist, "encryption"));
  const access = require(path.join(dist, "state-access"));
  const config = loadConfig();
  const names = clusterNames(config);
  const caller = process.env.AIRFLOW_CALLER_ARN;
  const stateAccess = access.stateAccessOf(access.envsSharingStateBucket(config));
  const celery = config.executor === "CeleryExecutor";
  process.stdout.write(
    `${JSON.stringify({
      env: config.env,
      region: config.region,
      accountId: config.accountId ?? null,
      stateStack: names.stateStack,
      clusterStack: names.clusterStack,
      stateBucket: names.stateBucket,
      stateBucketNameIsGlobalGuess: config.stateBucketNameIsGlobalGuess,
      stateFile: stateStackStatePath(names.stateStack),
      stateBackupKey: STATE_STACK_BACKUP_KEY,
      stateKeyAlias: access.stateKeyAlias(config.namePrefix),
      stateAccessDenial: caller ? (access.stateAccessDenial(stateAccess, config.env, caller) ?? null) : null,
      clusterKeyAlias: clusterKeyAlias(names.resourcePrefix),
      resourcePrefix: names.resourcePrefix,
      secretPrefix: names.secretPrefix,
      adminPasswordSecret: `${names.secretPrefix}/admin-password`,
      uiAccess: config.uiAccess,
      uiRole: celery ? "api-server" : "standalone",
      workerGroup: celery ? `${names.resourcePrefix}-worker` : null,
      drainHookName: DRAIN_HOOK_NAME,
      emrPrimarySecurityGroupName: `${names.resourcePrefix}-emr-primary`,
      deletionProtection: config.durability.deletionProtection,
      finalSnapshot: config.durability.finalSnapshot,
    })}\n`,
  );
} catch (e) {
  if (e && e.code === "MODULE_NOT_FOUND") {
    process.stderr.write(`error: ${dist} is not built (run npm run build)\n`);
  } else {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  }
  process.exit(1);
}
