/**
 * Reasoned checkov skips that live next to the resource they excuse.
 *
 * Why not `checkov:skip=` comments: checkov 3.3's `terraform_json` runner never collects
 * inline suppressions (it passes an empty skip list to every check, see
 * checkov/terraform_json/runner.py `run_block`), and its `terraform` runner does not
 * load `*.tf.json` at all. So a skip is recorded in the synthesized JSON under the
 * block's Terraform comment key (`"//"`, ignored by Terraform), as
 * `"//": {"checkov": {"skip": [{"id": "CKV_AWS_18", "comment": "why"}]}}`, and
 * `scripts/checkov-gate.js` applies them to checkov's JSON report: a failed check is
 * forgiven only when its block carries a skip with that id and a non-empty reason, and
 * a skip that no longer matches a failure fails the gate (no stale excuses).
 */
import { TerraformResource } from "cdktf";
import { PropError } from "./contract";

/**
 * A block that can carry a skip. Resources only: cdktf 0.21 rewrites a data source's
 * `"//"` with its own metadata, dropping overrides, so checks failing on a data source
 * (e.g. an aws_iam_policy_document) must be fixed, or the policy written inline.
 */
export type CheckedBlock = TerraformResource;

/** One reasoned suppression of a checkov check on one block. */
export interface CheckovSkip {
  /** checkov check id, e.g. `CKV_AWS_18`. */
  readonly id: string;
  /** Why the check does not apply here; required and shown in the gate's report. */
  readonly comment: string;
}

const skips = new WeakMap<CheckedBlock, CheckovSkip[]>();

/**
 * Records that `block` intentionally fails checkov check `id`, with the reason.
 * Call it right next to the resource definition.
 */
export function skipCheckov(block: CheckedBlock, id: string, reason: string): void {
  if (!/^CKV2?_[A-Z0-9]+_[0-9]+$/.test(id)) {
    throw new PropError("skipCheckov", "id", id, "a checkov check id such as CKV_AWS_18");
  }
  if (reason.trim().length < 10) {
    throw new PropError(`skipCheckov(${id})`, "reason", reason, "a real reason, 10 characters or more");
  }
  const list = (skips.get(block) ?? []).filter((s) => s.id !== id);
  list.push({ id, comment: reason.trim() });
  // Code-point order, not localeCompare: synth output must not depend on the locale.
  list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  skips.set(block, list);
  // Only the "checkov" key: cdktf keeps its own metadata under "//" too.
  block.addOverride("//.checkov.skip", [...list]);
}

/** The skips recorded on a block (for tests). */
export function checkovSkips(block: CheckedBlock): readonly CheckovSkip[] {
  return skips.get(block) ?? [];
}

/** CKV_AWS_338 wants CloudWatch log groups to keep logs for at least this many days. */
export const COMPLIANCE_LOG_RETENTION_DAYS = 365;

/**
 * Skips CKV_AWS_338 on a log group only while the configured retention is below a
 * year, so raising `logRetentionDays` makes the check (and not a stale skip) apply.
 */
export function skipShortLogRetention(logGroup: CheckedBlock, retentionDays: number): void {
  if (retentionDays < COMPLIANCE_LOG_RETENTION_DAYS) {
    skipCheckov(
      logGroup,
      "CKV_AWS_338",
      `retention is config logRetentionDays (${retentionDays}); set ${COMPLIANCE_LOG_RETENTION_DAYS}+ where a year of logs is required`,
    );
  }
}

/** Skips several checks on one block, each with its reason. */
export function skipCheckovAll(block: CheckedBlock, reasons: Readonly<Record<string, string>>): void {
  for (const [checkId, reason] of Object.entries(reasons)) skipCheckov(block, checkId, reason);
}
