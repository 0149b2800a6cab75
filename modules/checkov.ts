/**
 * TEMPORARY stand-in written by engineer D so the compute-plane files compile; engineer A
 * owns this file and replaces it. API: skipCheckov(resource, checkId, reason).
 */
import type { TerraformResource } from "cdktf";

const skips = new WeakMap<TerraformResource, Record<string, string>>();

/** Records a checkov skip (check id + reason) as a `//` comment on the resource. */
export function skipCheckov(resource: TerraformResource, checkId: string, reason: string): void {
  const merged = { ...(skips.get(resource) ?? {}), [checkId]: reason };
  skips.set(resource, merged);
  resource.addOverride("//", {
    checkov: { skip: Object.keys(merged).sort().map((id) => ({ id, comment: merged[id] })) },
  });
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
