#!/usr/bin/env bash
# Fetches the jars PySpark needs to read and write s3a:// paths (used by the pipeline tests
# against the moto server): hadoop-aws at exactly the Hadoop version bundled in PySpark, and
# the AWS SDK v2 bundle that hadoop-aws release was built against. Maven Central through
# `mvn dependency:copy` with strict checksums, then pinned SHA-256s checked here, cached in
# .cache/spark-jars-<hash of this script> (idempotent: a warm run only re-verifies).
# Prints the directory holding the jars on stdout.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# pyspark 4.3.0 ships hadoop-client-api/runtime 3.5.0; hadoop-aws 3.5.0's parent pom
# (hadoop-project) pins aws-java-sdk-v2.version = 2.35.4 and
# amazon-s3-analyticsaccelerator-s3.version = 1.3.1, the two compile dependencies hadoop-aws
# needs at run time (the accelerator is loaded by S3A's stream factory even for classic
# streams). Bump all of them together.
HADOOP_VERSION=3.5.0
AWS_SDK_VERSION=2.35.4
ACCELERATOR_VERSION=1.3.1
JARS=(
  "org.apache.hadoop:hadoop-aws:$HADOOP_VERSION:jar"
  "software.amazon.awssdk:bundle:$AWS_SDK_VERSION:jar"
  "software.amazon.s3.analyticsaccelerator:analyticsaccelerator-s3:$ACCELERATOR_VERSION:jar"
)
# Pinned SHA-256 of each jar (Maven Central publishes only SHA-1/MD5; these were recorded
# from a strict-checksum download and guard against a changed artifact or mirror).
SHA256S=(
  "66bd9eefb938b1a1657487324b63c13df2d8b17164a1dd24e0ef37b905bc5baa  hadoop-aws-$HADOOP_VERSION.jar"
  "db4b55f24ad1b4e70f17eb1717a4de76a8dadc5a27d764be7c44ff67b2c1c677  bundle-$AWS_SDK_VERSION.jar"
  "4959a9747cbb479c73c3ffbcd479bee5b014f8b2880994585a8693fb9d24675e  analyticsaccelerator-s3-$ACCELERATOR_VERSION.jar"
)

command -v mvn >/dev/null || die "mvn is required (run scripts/setup-system.sh)"
PYSPARK_JARS="$VENV_DIR/lib/python3.11/site-packages/pyspark/jars"
[ -d "$PYSPARK_JARS" ] || die "PySpark is not installed in $VENV_DIR (run scripts/setup-python.sh)"
[ -f "$PYSPARK_JARS/hadoop-client-api-$HADOOP_VERSION.jar" ] ||
  die "PySpark bundles Hadoop $(find "$PYSPARK_JARS" -name 'hadoop-client-api-*.jar' -printf '%f\n' |
    sed 's/hadoop-client-api-//; s/\.jar//'), this script pins hadoop-aws $HADOOP_VERSION: update HADOOP_VERSION and AWS_SDK_VERSION together"

JAR_DIR="$CACHE_DIR/spark-jars-$(hash_of "$0")"

verify() { (cd "$JAR_DIR" && printf '%s\n' "${SHA256S[@]}" | sha256sum --quiet -c -); }

if [ -f "$JAR_DIR/.complete" ] && verify; then
  log "spark jars cached in $JAR_DIR"
  echo "$JAR_DIR"
  exit 0
fi

log "fetching hadoop-aws $HADOOP_VERSION and AWS SDK bundle $AWS_SDK_VERSION from Maven Central"
rm -rf "$JAR_DIR"
mkdir -p "$JAR_DIR"
# A throwaway local repository: the jars are copied out, so keeping a second copy is waste.
M2="$(mktemp -d)"
trap 'rm -rf "$M2"' EXIT
for coordinate in "${JARS[@]}"; do
  mvn -q -B -C -Dmaven.repo.local="$M2" dependency:copy \
    -Dartifact="$coordinate" -DoutputDirectory="$JAR_DIR" -Dmdep.overWriteReleases=true >&2
done
verify || die "SHA-256 mismatch for the jars in $JAR_DIR (see above); refusing to use them"
# Older caches of other versions are dead weight (the bundle is ~600 MB).
find "$CACHE_DIR" -maxdepth 1 -type d -name 'spark-jars-*' ! -path "$JAR_DIR" -exec rm -rf {} +
touch "$JAR_DIR/.complete"
log "spark jars ready in $JAR_DIR"
echo "$JAR_DIR"
