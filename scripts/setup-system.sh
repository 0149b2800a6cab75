#!/usr/bin/env bash
# Installs the Debian packages the tests use: PostgreSQL 15 and Redis for the local
# rehearsal and the end-to-end cluster, Chromium for the e2e UI check, shellcheck for lint,
# and the headers mysqlclient is compiled against.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PACKAGES=(postgresql-15 redis-server chromium shellcheck default-libmysqlclient-dev pkg-config build-essential)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  log "system packages present"
  exit 0
fi
log "installing system packages: ${missing[*]}"
as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts these services on install; the tests start their own private instances.
as_root service redis-server stop >/dev/null 2>&1 || true
as_root service postgresql stop >/dev/null 2>&1 || true
