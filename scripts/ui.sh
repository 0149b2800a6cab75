#!/usr/bin/env bash
# `npm run ui -- <env>`: reach the Airflow UI and log in.
# - With uiAllowedCidrs (or uiDomainName) set, the UI is on the public load balancer:
#   print its URL from outputs-<env>.json.
# - Otherwise (the default) no load balancer serves the UI, and `[api] base_url` is
#   http://localhost:8080 (modules/config.ts UI_PORT_FORWARD_URL): open an SSM port
#   forward from local port 8080 to a running api-server's 8080, so the login redirect
#   comes back to the forwarded address.
# Either way it says how to read the admin password; it never prints the password, so
# it cannot end up in a shared terminal log.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

usage="usage: npm run ui -- <env>"
[ "$#" -eq 1 ] || die "$usage"
case "$1" in -h | --help) echo "$usage" && exit 0 ;; -*) die "unknown option '$1' ($usage)" ;; esac
env_name="$1"

workflow_init "$env_name"
stack="$(fact clusterStack)"
login_help="Log in as admin. The password is in Secrets Manager; read it in your own terminal:
  aws secretsmanager get-secret-value --region $(fact region) --secret-id $(fact adminPasswordSecret) --query SecretString --output text"

if [ "$(fact uiAccess)" = load-balancer ]; then
  outputs="outputs-$env_name.json"
  [ -f "$outputs" ] || die "no $outputs: run npm run deploy -- $env_name, or npx cdktf output $stack --outputs-file $outputs"
  url="$(jq -r --arg s "$stack" '.[$s].compute.outputs.ui_url // empty' "$outputs")"
  [ -n "$url" ] || die "$outputs has no ui_url for $stack: refresh it with npx cdktf output $stack --outputs-file $outputs"
  printf 'Airflow UI: %s\n%s\n' "$url" "$login_help"
  exit 0
fi

need_cmd session-manager-plugin "the Session Manager plugin, https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html"
port=8080
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  die "local port $port is in use; the UI's base_url is http://localhost:$port, so free it first"
fi
instance="$(aws ec2 describe-instances --region "$(fact region)" \
  --filters "Name=tag:airflow:cluster,Values=$(fact resourcePrefix)" "Name=tag:airflow:role,Values=$(fact uiRole)" \
  "Name=instance-state-name,Values=running" \
  --query 'Reservations[].Instances[].InstanceId' --output text | awk '{print $1}')"
if [ -z "$instance" ] || [ "$instance" = None ]; then
  die "no running $(fact uiRole) instance in $(fact resourcePrefix): is the cluster deployed (npm run deploy -- $env_name)?"
fi

printf 'Airflow UI: http://localhost:%s (forwarded to %s; Ctrl-C ends it)\n%s\n' "$port" "$instance" "$login_help"
exec aws ssm start-session --region "$(fact region)" --target "$instance" \
  --document-name AWS-StartPortForwardingSession --parameters "portNumber=$port,localPortNumber=$port"
