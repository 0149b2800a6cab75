#!/usr/bin/env bash
# Builds the Spark that the EMR stand-in (__tests__/e2e/emr_stand_in.py) runs steps with:
# what EMR 7.12.0 ships, Spark 3.5.6 driven by Python 3.9, so the sort job meets the versions
# it meets on EMR rather than the test venv's (Python 3.11, PySpark 4). A Python 3.9 venv from
# requirements-emr.lock (hash-checked), plus the s3a jars in <venv>/jars: hadoop-aws at the
# Hadoop version the PySpark wheel bundles and the AWS SDK v1 bundle that hadoop-aws release
# was built against. Cached in .cache/emr-spark-<hash of the lock and this script> (the jar
# pins live here); a warm run only re-verifies the jars.
# Prints the venv directory on stdout; everything else goes to stderr.
# PYTHON39=/path/to/python3.9 picks the interpreter (else pyenv's 3.9, else python3.9 on PATH).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

LOCK=requirements-emr.lock
# pyspark 3.5.6 bundles hadoop-client-api/runtime 3.3.4; hadoop-aws 3.3.4's parent pom
# (hadoop-project) pins aws-java-sdk.version = 1.12.262, its only compile dependency
# (wildfly-openssl is runtime-only and unused with fs.s3a.connection.ssl.enabled=false).
# Bump them together with the lock.
HADOOP_VERSION=3.3.4
AWS_SDK_VERSION=1.12.262
JARS=(
  "org.apache.hadoop:hadoop-aws:$HADOOP_VERSION:jar"
  "com.amazonaws:aws-java-sdk-bundle:$AWS_SDK_VERSION:jar"
)
# Pinned SHA-256 of each jar (Maven Central publishes only SHA-1/MD5; these were recorded
# from a strict-checksum download and guard against a changed artifact or mirror).
SHA256S=(
  "53f9ae03c681a30a50aa17524bd9790ab596b28481858e54efd989a826ed3a4a  hadoop-aws-$HADOOP_VERSION.jar"
  "873fe7cf495126619997bec21c44de5d992544aea7e632fdc77adb1a0915bae5  aws-java-sdk-bundle-$AWS_SDK_VERSION.jar"
)

DIR="$CACHE_DIR/emr-spark-$(hash_of "$LOCK" "$ROOT/scripts/setup-emr-spark.sh")"
JAR_DIR="$DIR/jars"

verify() { (cd "$JAR_DIR" && printf '%s\n' "${SHA256S[@]}" | sha256sum --quiet -c - >&2); }

find_python39() {
  local candidate=${PYTHON39:-}
  if [ -z "$candidate" ] && command -v pyenv >/dev/null; then
    # the newest 3.9.x pyenv has installed (version sort: 3.9.18 after 3.9.9); none -> empty
    candidate=$(compgen -G "$(pyenv root)/versions/3.9.*/bin/python3.9" | sort -V | tail -n1 || true)
  fi
  if [ -z "$candidate" ]; then
    candidate=$(command -v python3.9 || true)
  fi
  if [ -z "$candidate" ]; then
    die "Python 3.9 is required (EMR 7's python3): set PYTHON39=/path/to/python3.9, or install it with pyenv (pyenv install 3.9)"
  fi
  "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 9))' 2>/dev/null ||
    die "$candidate is not a working Python 3.9 (set PYTHON39=/path/to/python3.9)"
  echo "$candidate"
}

mkdir -p "$CACHE_DIR"
# One builder at a time: a second run (another e2e run starting) waits, then finds it cached.
exec 9>"$CACHE_DIR/emr-spark.lock"
flock 9

if [ -f "$DIR/.complete" ] && verify; then
  log "EMR Spark venv cached in $DIR"
  echo "$DIR"
  exit 0
fi

command -v mvn >/dev/null || die "mvn is required (run scripts/setup-system.sh)"
PYTHON39_BIN="$(find_python39)"
log "building EMR Spark venv $(basename "$DIR") from $LOCK with $PYTHON39_BIN"
rm -rf "$DIR"
"$PYTHON39_BIN" -m venv "$DIR"
"$DIR/bin/python" -m pip install -q --disable-pip-version-check uv==0.13.8 >&2
# pyspark 3.5.x is published as an sdist only: uv builds its wheel (the lock's hash covers
# the sdist; the setuptools used to build it comes from PyPI unpinned).
"$DIR/bin/uv" pip sync -q --python "$DIR/bin/python" --require-hashes "$LOCK" >&2

HADOOP_JAR="$DIR/lib/python3.9/site-packages/pyspark/jars/hadoop-client-api-$HADOOP_VERSION.jar"
[ -f "$HADOOP_JAR" ] ||
  die "the PySpark in $LOCK does not bundle Hadoop $HADOOP_VERSION; update HADOOP_VERSION and AWS_SDK_VERSION together"

log "fetching hadoop-aws $HADOOP_VERSION and aws-java-sdk-bundle $AWS_SDK_VERSION from Maven Central"
mkdir -p "$JAR_DIR"
# A throwaway local repository: the jars are copied out, so keeping a second copy is waste.
M2="$(mktemp -d)"
trap 'rm -rf "$M2"' EXIT
for coordinate in "${JARS[@]}"; do
  mvn -q -B -C -Dmaven.repo.local="$M2" dependency:copy \
    -Dartifact="$coordinate" -DoutputDirectory="$JAR_DIR" -Dmdep.overWriteReleases=true >&2
done
verify || die "SHA-256 mismatch for the jars in $JAR_DIR (see above); refusing to use them"
touch "$DIR/.complete"
# Builds of older locks are dead weight (~600 MB each); KEEP_OLD_VENVS=1 keeps them.
if [ "${KEEP_OLD_VENVS:-0}" != 1 ]; then
  find "$CACHE_DIR" -maxdepth 1 -type d -name 'emr-spark-*' ! -path "$DIR" -exec rm -rf {} +
fi
log "EMR Spark venv ready in $DIR"
echo "$DIR"
