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
