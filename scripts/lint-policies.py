"""Lints the synthesized identity policies with parliament (and its community auditors).

Usage: python scripts/lint-policies.py <policy-dir>...
  Each <policy-dir> holds IAM JSON documents as scripts/policy-documents.js writes them (one per
  synthesized stack; give them all at once, so an excuse used by one stack's layout only, e.g.
  LocalExecutor's standalone role, is not stale). Trust and resource policies (statements with a
  Principal) are left out: parliament lints identity policies.

Each statement is linted as a policy of its own, so a finding is known by (document, Sid, issue)
and can be excused in SUPPRESSED with a reason. parliament's own `--config ignore_locations` cannot
do this (it never matches in 1.6.4). An excuse that no longer matches a finding is stale and fails
the lint, like a checkov skip (scripts/checkov-gate.js).

Exit 0 when every finding is excused and no excuse is stale, else 1 (2 on bad usage).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import parliament
from parliament import analyze_policy_string, enhance_finding, override_config
from parliament.cli import is_finding_filtered

# (document name without its construct hash, Sid, parliament issue) -> why it is acceptable.
SUPPRESSED: dict[tuple[str, str, str], str] = {
    (
        "compute_iam_worker-doc",
        "PassEmrServiceRole",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
    ): "iam:PassRole of exactly the cluster's EMR service role, only to EMR (iam:PassedToService): "
    "RunJobFlow needs it, and nothing else can receive the role",
    (
        "compute_iam_worker-doc",
        "PassEmrEc2Role",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
    ): "iam:PassRole of exactly the cluster's EMR EC2 role, only to EC2: "
    "RunJobFlow hands it to the cluster's instances",
    (
        "compute_iam_standalone-doc",
        "PassEmrServiceRole",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
    ): "as the worker's: the standalone node runs the tasks with LocalExecutor",
    (
        "compute_iam_standalone-doc",
        "PassEmrEc2Role",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
    ): "as the worker's: the standalone node runs the tasks with LocalExecutor",
    (
        "compute_iam_emr-service-pass-doc",
        "PassEmrEc2Role",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
    ): "the EMR service role passes exactly the cluster's EMR EC2 role to EC2 (the v2 managed policy only "
    "knows EMR_EC2_DefaultRole)",
}

HASH_SUFFIX = re.compile(r"_[0-9A-F]{8}$")


def single_values(statement: dict) -> dict:
    """The statement with one-element condition lists as scalars: IAM reads both alike, and
    parliament 1.6.4 crashes on a list where it compares one value (e.g. under Bool)."""
    conditions = {
        op: {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in block.items()}
        for op, block in statement.get("Condition", {}).items()
    }
    return {**statement, "Condition": conditions} if conditions else statement


def is_identity_policy(policy: dict) -> bool:
    """Whether no statement names a Principal (trust and resource policies do)."""
    return not any("Principal" in s or "NotPrincipal" in s for s in policy.get("Statement", []))


def findings(name: str, policy: dict) -> list[tuple[tuple[str, str, str], str]]:
    """(document, Sid, issue) and a one-line description of every finding in one policy."""
    out = []
    for statement in policy.get("Statement", []):
        one = json.dumps({"Version": policy["Version"], "Statement": [single_values(statement)]})
        for finding in analyze_policy_string(one, name, include_community_auditors=True).findings:
            finding = enhance_finding(finding)
            if is_finding_filtered(finding, "LOW"):
                continue
            key = (name, statement.get("Sid", ""), finding.issue)
            out.append((key, f"{finding.severity} {finding.title}: {finding.detail}"))
    return out


def main(argv: list[str]) -> int:
    dirs = [Path(a) for a in argv[1:]]
    if not dirs or not all(d.is_dir() for d in dirs):
        print("usage: lint-policies.py <policy-dir>...", file=sys.stderr)
        return 2
    documents = sorted(p for d in dirs for p in d.glob("*.json"))
    if not documents:
        print(f"lint-policies: {' '.join(map(str, dirs))}: no policy documents", file=sys.stderr)
        return 2
    # The community auditors' finding types, as `parliament --include-community-auditors` loads them.
    override_config(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")
    used: set[tuple[str, str, str]] = set()
    failures: list[str] = []
    identity = [(HASH_SUFFIX.sub("", p.stem), json.loads(p.read_text())) for p in documents]
    identity = [(name, policy) for name, policy in identity if is_identity_policy(policy)]
    for name, policy in identity:
        for key, text in findings(name, policy):
            if key in SUPPRESSED:
                used.add(key)
            else:
                failures.append(f"FINDING {' '.join(key)}: {text}")
    failures += [
        f"STALE   {' '.join(key)}: suppressed, but no longer found" for key in SUPPRESSED if key not in used
    ]
    for line in failures:
        print(line)
    print(
        f"lint-policies: {len(identity)} identity policy document(s), "
        f"{len(used)} finding(s) suppressed with a reason, {len(failures)} failure(s)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
