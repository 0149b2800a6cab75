"""The Spark sort job under real PySpark (local[2]) on fixture CSVs in the real file's format,
and once end to end through spark-submit and s3a against the moto server."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from pipeline_support import MOTO_URL, REGION, SPARK_JOBS_DIR

sys.path.insert(0, str(SPARK_JOBS_DIR))
import sort_customers  # noqa: E402

JOB = SPARK_JOBS_DIR / "sort_customers.py"
HEADER = ["CustomerID", "Gender", "Age", "Annual Income (k$)", "Spending Score (1-100)"]
EXPECTED_COLUMNS = ["customer_id", "gender", "age", "annual_income_k_usd", "spending_score"]
ROWS = 200


def customers(count: int = ROWS) -> list[tuple[int, str, int, int, int]]:
    """Deterministic rows shaped like Mall_Customers.csv, in shuffled order, with many tied
    spending scores (only 40 distinct values for 200 rows) so the tie-break matters."""
    rng = random.Random(20211)  # noqa: S311 (test data, not crypto)
    rows = [
        (cid, rng.choice(["Male", "Female"]), rng.randint(18, 70), rng.randint(15, 137), rng.randint(1, 40))
        for cid in range(1, count + 1)
    ]
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows, header=HEADER, newline: str = "\n") -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_bytes((newline.join(lines) + newline).encode())
    return path


def expected_order(rows) -> list[tuple]:
    return sorted(rows, key=lambda r: (r[4], r[0]))


def read_in_part_order(spark, output: str | Path) -> tuple[list[tuple], list[str]]:
    """Read every part file on its own, in file-name order, and concatenate."""
    jvm_path = spark._jvm.org.apache.hadoop.fs.Path(str(output))
    fs = jvm_path.getFileSystem(spark._jsc.hadoopConfiguration())
    parts = sorted(
        str(status.getPath().toString())
        for status in fs.listStatus(jvm_path)
        if status.getPath().getName().startswith("part-")
    )
    rows: list[tuple] = []
    for part in parts:
        rows.extend(tuple(r) for r in spark.read.parquet(part).collect())
    return rows, parts


def test_sorts_by_spending_score_across_all_part_files(spark, tmp_path):
    rows = customers()
    source = write_csv(tmp_path / "Mall_Customers.csv", rows)
    output = tmp_path / "out"

    sort_customers.run(spark, str(source), str(output))

    result, parts = read_in_part_order(spark, output)
    assert len(parts) > 1, "a global sort keeps several partitions; nothing collapsed into one"
    assert all(p.endswith(".snappy.parquet") for p in parts)
    assert (output / "_SUCCESS").exists()
    assert len(result) == ROWS, "every row is kept"
    assert result == expected_order(rows)
    df = spark.read.parquet(str(output))
    assert df.columns == EXPECTED_COLUMNS
    assert dict(df.dtypes) == {
        "customer_id": "int",
        "gender": "string",
        "age": "int",
        "annual_income_k_usd": "int",
        "spending_score": "int",
    }
    # ties really occur, and are broken by customer id
    scores = [r[4] for r in result]
    assert len(set(scores)) < len(scores)


def test_crlf_line_endings_and_the_genre_header(spark, tmp_path):
    rows = customers()
    header = ["CustomerID", "Genre", "Age", "Annual Income (k$)", "Spending Score (1-100)"]
    source = write_csv(tmp_path / "Mall_Customers.csv", rows, header=header, newline="\r\n")
    output = tmp_path / "out"

    sort_customers.run(spark, str(source), str(output))

    result, _ = read_in_part_order(spark, output)
    assert result == expected_order(rows)
    assert {r[1] for r in result} == {"Male", "Female"}


def test_rerun_overwrites_the_output(spark, tmp_path):
    source = write_csv(tmp_path / "a.csv", customers(50))
    output = tmp_path / "out"
    sort_customers.run(spark, str(source), str(output))
    sort_customers.run(spark, str(write_csv(tmp_path / "b.csv", customers(20))), str(output))
    assert spark.read.parquet(str(output)).count() == 20


def test_a_missing_column_fails_naming_it(spark, tmp_path):
    header = [h for h in HEADER if h != "Annual Income (k$)"]
    rows = [(r[0], r[1], r[2], r[4]) for r in customers(10)]
    source = write_csv(tmp_path / "Mall_Customers.csv", rows, header=header)

    with pytest.raises(sort_customers.InputError, match=r"missing column\(s\) 'Annual Income \(k\$\)'"):
        sort_customers.run(spark, str(source), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_bad_number_fails_quoting_the_row(spark, tmp_path):
    rows = [list(r) for r in customers(30)]
    rows[7][2] = "abc"  # Age
    rows[12][4] = "55.5"  # Spending Score
    source = write_csv(tmp_path / "Mall_Customers.csv", rows)

    with pytest.raises(sort_customers.InputError) as caught:
        sort_customers.run(spark, str(source), str(tmp_path / "out"))
    message = str(caught.value)
    assert f"unparsable row '{','.join(map(str, rows[7]))}'" in message
    assert f"unparsable row '{','.join(map(str, rows[12]))}'" in message
    assert not (tmp_path / "out").exists()


def test_an_empty_field_fails_naming_the_column(spark, tmp_path):
    rows = [list(r) for r in customers(10)]
    rows[3][3] = ""  # Annual Income
    source = write_csv(tmp_path / "Mall_Customers.csv", rows)

    with pytest.raises(
        sort_customers.InputError, match=rf"customer_id={rows[3][0]} has empty annual_income_k_usd"
    ):
        sort_customers.run(spark, str(source), str(tmp_path / "out"))


def test_cli_reports_input_errors_without_a_stack_trace(spark, tmp_path, capsys):
    source = write_csv(tmp_path / "bad.csv", [(1, "Male", 19, 15)], header=HEADER[:4])
    code = sort_customers.main(["--input", str(source), "--output", str(tmp_path / "out")], spark=spark)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: input header is missing column(s) 'Spending Score (1-100)'")
    assert "Traceback" not in err


@pytest.fixture
def s3(moto_server):
    client = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=MOTO_URL,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client


def test_spark_submit_through_s3a_against_moto(spark, spark_jars, s3, tmp_path):
    """What the EMR step does (spark-submit of the job file, S3 in and out), on local[2]."""
    bucket = "champion-s3a-test"
    s3.create_bucket(Bucket=bucket)
    rows = customers()
    csv = write_csv(tmp_path / "Mall_Customers.csv", rows, newline="\r\n")
    s3.upload_file(str(csv), bucket, "champion/data/Mall_Customers.csv")

    s3a_conf = {
        "spark.hadoop.fs.s3a.endpoint": MOTO_URL,
        "spark.hadoop.fs.s3a.endpoint.region": REGION,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.access.key": "testing",
        "spark.hadoop.fs.s3a.secret.key": "testing",
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        ),
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
        "spark.ui.enabled": "false",
    }
    command = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]"]
    command += ["--driver-class-path", ":".join(spark_jars)]  # local mode: no 700 MB copy
    for key, value in s3a_conf.items():
        command += ["--conf", f"{key}={value}"]
    output = f"s3a://{bucket}/champion/output/test-run/"
    command += [str(JOB), "--input", f"s3a://{bucket}/champion/data/Mall_Customers.csv", "--output", output]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    problems = [line for line in done.stderr.splitlines() if " INFO " not in line]
    assert done.returncode == 0, done.stdout + "\n".join(problems)
    assert f"wrote {output}" in done.stdout

    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="champion/output/test-run/")["Contents"]
    ]
    assert "champion/output/test-run/_SUCCESS" in keys
    assert len([k for k in keys if k.endswith(".snappy.parquet")]) > 1

    result, _ = read_in_part_order(spark, output)
    assert result == expected_order(rows)
