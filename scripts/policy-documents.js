#!/usr/bin/env node
/**
 * The synthesized IAM policy documents as IAM evaluates them: each
 * `data.aws_iam_policy_document` of a stack becomes policy JSON, with every `${...}`
 * Terraform reference replaced by a concrete fake value of the right shape (an ARN, an
 * account id), so that a real evaluator (iam-simulate, in __tests__/infra) and a linter
 * (parliament, scripts/lint-policies.py) read what AWS would read after apply.
 *
 * A reference without a fake fails loudly: silently leaving a token in a Resource would
 * make a grant look narrower (it matches nothing) than the real one.
 *
 * Usage: node scripts/policy-documents.js <stack-dir> <out-dir>
 *        writes <out-dir>/<document name>.json for every policy document of the stack.
 */
"use strict";
const fs = require("node:fs");
const path = require("node:path");

/** The fake AWS account id every reference to the caller's account becomes. */
const FAKE_ACCOUNT = "111122223333";

/**
 * Fake values by reference pattern, first match wins. A fake is built from the referenced
 * resource's logical name (as a valid, lower-case name), so different buckets or roles
 * stay different and a test can name the one it means (`aws_s3_bucket.data` becomes
 * `arn:aws:s3:::fake-data`).
 * @param {string} region the stack's region (the documents carry it literally)
 * @returns {[RegExp, (name: string) => string][]}
 */
function fakeValues(region) {
  const arn = (service, rest) => `arn:aws:${service}:${region}:${FAKE_ACCOUNT}:${rest}`;
  return [
    [/^data\.aws_partition\.[\w-]+\.partition$/, () => "aws"],
    [/^data\.aws_caller_identity\.[\w-]+\.account_id$/, () => FAKE_ACCOUNT],
    [/^aws_s3_bucket\.([\w-]+)\.arn$/, (n) => `arn:aws:s3:::fake-${n}`],
    [/^aws_efs_file_system\.([\w-]+)\.arn$/, (n) => arn("elasticfilesystem", `file-system/fs-${n}`)],
    [/^aws_kms_key\.([\w-]+)\.arn$/, (n) => arn("kms", `key/${n}`)],
    [/^aws_iam_role\.([\w-]+)\.arn$/, (n) => `arn:aws:iam::${FAKE_ACCOUNT}:role/${n}`],
    [/^aws_ses_email_identity\.([\w-]+)\.arn$/, (n) => arn("ses", `identity/${n}.example.com`)],
    [/^aws_cloudwatch_log_group\.([\w-]+)\.arn$/, (n) => arn("logs", `log-group:${n}`)],
    [/^data\.aws_elb_service_account\.[\w-]+\.arn$/, () => "arn:aws:iam::127311923021:root"],
  ];
}

/**
 * Replaces every `${reference}` in `text` with its fake value.
 * @param {string} text a string from a synthesized policy document
 * @param {[RegExp, (name: string) => string][]} fakes from {@link fakeValues}
 * @returns {string}
 * @throws when a reference has no fake, naming it
 */
function substituteTokens(text, fakes) {
  return text.replace(/\$\{([^}]+)\}/g, (_token, ref) => {
    for (const [pattern, fake] of fakes) {
      const m = pattern.exec(ref);
      if (m) return fake((m[1] ?? "").toLowerCase().replace(/_/g, "-"));
    }
    throw new Error(`policy-documents: no fake value for \${${ref}}; add one to fakeValues`);
  });
}

/**
 * One synthesized policy document (its `statement` blocks) as IAM policy JSON.
 * @param {object[]} statements `data.aws_iam_policy_document.<name>.statement`
 * @param {[RegExp, (name: string) => string][]} fakes from {@link fakeValues}
 * @returns {{Version: string, Statement: object[]}}
 */
function iamPolicy(statements, fakes) {
  const sub = (values) => values.map((v) => substituteTokens(String(v), fakes));
  return {
    Version: "2012-10-17",
    Statement: statements.map((s) => {
      const condition = {};
      for (const c of s.condition ?? []) {
        condition[c.test] ??= {};
        if (c.variable in condition[c.test]) {
          // Terraform would AND two blocks; IAM JSON cannot say it with one key.
          throw new Error(`policy-documents: statement ${s.sid}: ${c.test} ${c.variable} twice`);
        }
        condition[c.test][c.variable] = sub(c.values);
      }
      const principals = {};
      for (const p of s.principals ?? []) principals[p.type] = sub(p.identifiers);
      return {
        ...(s.sid && { Sid: s.sid }),
        Effect: s.effect ?? "Allow",
        ...(s.principals?.length && { Principal: principals }),
        ...(s.actions && { Action: s.actions }),
        ...(s.not_actions && { NotAction: s.not_actions }),
        ...(s.resources && { Resource: sub(s.resources) }),
        ...(s.not_resources && { NotResource: sub(s.not_resources) }),
        ...(s.condition?.length && { Condition: condition }),
      };
    }),
  };
}

/**
 * Every policy document of a synthesized stack as IAM JSON, by logical name.
 * @param {object} stackJson the parsed cdk.tf.json
 * @param {string} region the stack's region
 * @returns {Record<string, {Version: string, Statement: object[]}>}
 */
function policyDocuments(stackJson, region) {
  const fakes = fakeValues(region);
  const docs = stackJson.data?.aws_iam_policy_document ?? {};
  return Object.fromEntries(
    Object.entries(docs).map(([name, d]) => [name, iamPolicy(d.statement ?? [], fakes)]),
  );
}

module.exports = { FAKE_ACCOUNT, fakeValues, substituteTokens, iamPolicy, policyDocuments };

if (require.main === module) {
  const [stackDir, outDir] = process.argv.slice(2);
  if (!stackDir || !outDir) {
    process.stderr.write("usage: policy-documents.js <stack-dir> <out-dir>\n");
    process.exit(2);
  }
  const file = path.join(stackDir, "cdk.tf.json");
  if (!fs.existsSync(file)) {
    process.stderr.write(`policy-documents: ${file}: no synthesized stack there\n`);
    process.exit(2);
  }
  const stack = JSON.parse(fs.readFileSync(file, "utf8"));
  const region = stack.provider?.aws?.[0]?.region;
  if (typeof region !== "string") {
    process.stderr.write(
      `policy-documents: ${file}: provider.aws[0].region: got ${region}; allowed: a region\n`,
    );
    process.exit(2);
  }
  fs.mkdirSync(outDir, { recursive: true });
  const docs = policyDocuments(stack, region);
  for (const [name, policy] of Object.entries(docs)) {
    fs.writeFileSync(path.join(outDir, `${name}.json`), `${JSON.stringify(policy, null, 2)}\n`);
  }
  process.stdout.write(`policy-documents: ${Object.keys(docs).length} documents -> ${outDir}\n`);
}
