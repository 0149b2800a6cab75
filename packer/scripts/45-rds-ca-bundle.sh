#!/usr/bin/env bash
# The RDS CA bundle the nodes verify the metadata database against (TLS verify-full /
# VERIFY_IDENTITY; airflow_node/db_tls.py). Fetched at bake time over HTTPS, checked by
# the system trust store; its path comes from the bootstrap package (one constant).
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "45-rds-ca: run as root" >&2; exit 1; }
BUNDLE_URL="${RDS_CA_BUNDLE_URL:-https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem}"
case "$BUNDLE_URL" in https://*) ;; *) echo "45-rds-ca: RDS_CA_BUNDLE_URL=$BUNDLE_URL must be https://" >&2; exit 1 ;; esac
PY=(env PYTHONPATH=/opt/airflow/bootstrap /opt/airflow/venv/bin/python -m airflow_node.db_tls)
dest=$("${PY[@]}" path)

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
curl --proto '=https' --tlsv1.2 -fsSL --retry 3 --retry-delay 5 --max-time 120 -o "$tmp" "$BUNDLE_URL"

# A PEM bundle of certificates and nothing else: every block a certificate, every one
# parsed by Python's ssl (the code that will use it), all of them CAs issued to Amazon.
blocks=$(grep -c -- '-----BEGIN ' "$tmp" || true)
certs=$(grep -c -- '-----BEGIN CERTIFICATE-----' "$tmp" || true)
if [ "$certs" -lt 1 ] || [ "$blocks" != "$certs" ]; then
  echo "45-rds-ca: $BUNDLE_URL is not a PEM certificate bundle ($certs certificate(s), $blocks PEM block(s))" >&2
  exit 1
fi
loaded=$("${PY[@]}" check "$tmp")
case "$loaded" in *": $certs CA certificate(s)") ;; *) echo "45-rds-ca: expected $certs CA certificates, got: $loaded" >&2; exit 1 ;; esac
not_amazon=$(openssl storeutl -noout -certs -text "$tmp" | grep -E '^ +Subject:' | grep -vc 'O *= *Amazon' || true)
[ "$not_amazon" = 0 ] || { echo "45-rds-ca: $not_amazon certificate(s) in the bundle are not Amazon's" >&2; exit 1; }

install -D -o root -g root -m 0644 "$tmp" "$dest"
echo "45-rds-ca: $dest ($certs CA certificates, sha256 $(sha256sum "$dest" | cut -d' ' -f1))"
