#!/usr/bin/env bash
# AMI stage: Packer template (fmt + offline validate with the locally built amazon
# plugin), shellcheck of every provisioning/bootstrap script, the bootstrap's unit tests,
# and the local rehearsal on real PostgreSQL 15, Redis and Airflow. Prints timings.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

[ -x "$VENV_DIR/bin/python" ] || die "test venv missing: run scripts/setup-python.sh first"
command -v shellcheck >/dev/null || die "shellcheck missing: run scripts/setup-system.sh first"
eval "$(bash scripts/build-packer.sh --env)"

SECONDS=0
log "ami: packer fmt -check + validate ($("$PACKER" version | head -n1))"
"$PACKER" fmt -check -diff -recursive packer/
start=$SECONDS
# offline: the amazon-ami data source is not evaluated without -evaluate-datasources
"$PACKER" validate packer/
"$PACKER" validate -var architecture=arm64 -var git_revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)" packer/
# a bad value must be refused by the variable's validation, naming it
if out=$("$PACKER" validate -var architecture=sparc packer/ 2>&1); then
  die "packer validate accepted architecture=sparc"
fi
grep -q "architecture must be x86_64 or arm64" <<<"$out" || die "unexpected validate message: $out"
# the drain hook waits worker_stop_timeout + 300 s, and a lifecycle hook at most 7200 s
if out=$("$PACKER" validate -var worker_stop_timeout=6901 packer/ 2>&1); then
  die "packer validate accepted worker_stop_timeout=6901"
fi
grep -q "from 60 to 6900" <<<"$out" || die "unexpected validate message: $out"
log "packer validate: $((SECONDS - start))s"

log "ami: shellcheck"
mapfile -t scripts < <(find packer -type f \( -name '*.sh' -o -name airflow-bootstrap -o -name airflow-worker-drain \) | sort)
shellcheck -x -P SCRIPTDIR "${scripts[@]}" scripts/build-packer.sh scripts/test-ami.sh __tests__/ami/*.sh
log "shellcheck clean (${#scripts[@]} packer scripts + stage scripts)"

log "ami: bootstrap unit tests"
"$VENV_DIR/bin/python" -m pytest -c config/pytest.ini -q __tests__/ami

log "ami: local rehearsal (PostgreSQL 15 + Redis + Airflow, three nodes)"
start=$SECONDS
bash __tests__/ami/rehearsal.sh
log "rehearsal: $((SECONDS - start))s; ami stage: ${SECONDS}s"
