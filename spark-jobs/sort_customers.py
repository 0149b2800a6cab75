"""Sort the Mall Customers data set by spending score and write it as Parquet.

Run by DAG_2 as an EMR step (``spark-submit sort_customers.py --input ... --output ...``);
``--input`` and ``--output`` take s3://, s3a://, hdfs:// or local paths.

Input: a CSV file (or directory of CSV files) with a header row holding these five columns,
in any order (names are matched case-insensitively, surrounding spaces and a UTF-8 BOM are
ignored; any further columns are ignored):

    CustomerID, Gender, Age, Annual Income (k$), Spending Score (1-100)

The widely circulated copy of this data set names the second column ``Genre``: both names are
accepted. LF and CRLF line endings both work.

Validation (the job fails, naming what is wrong, instead of dropping rows):
  * a missing column fails before any data is read, listing what was found and what is needed;
  * a row whose numbers do not parse as integers (``abc``, ``15.5``, ``99999999999``) or that has
    an empty field fails the job, quoting up to five offending rows.

Output: Parquet (snappy), written with mode ``overwrite``, sorted by spending score ascending
with ties broken by customer id ascending. The sort is a global ``orderBy`` (Spark range-
partitions the rows), so part-00000 holds the lowest scores and the order holds across the
part files read in name order; nothing is collapsed into a single partition.

Output column names are deliberately snake_case ASCII. The original names contain spaces,
parentheses and ``$``, which Athena, Glue crawlers and Hive need quoting for (and Glue
rewrites on its own), so downstream users get stable, quote-free names instead:

    CustomerID              -> customer_id          (int)
    Gender / Genre          -> gender               (string)
    Age                     -> age                  (int)
    Annual Income (k$)      -> annual_income_k_usd  (int, thousands of US dollars)
    Spending Score (1-100)  -> spending_score       (int, 1 to 100)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

# (output name, accepted input header names (matched case-insensitively), Spark type)
COLUMNS: tuple[tuple[str, tuple[str, ...], type], ...] = (
    ("customer_id", ("CustomerID",), IntegerType),
    ("gender", ("Gender", "Genre"), StringType),
    ("age", ("Age",), IntegerType),
    ("annual_income_k_usd", ("Annual Income (k$)",), IntegerType),
    ("spending_score", ("Spending Score (1-100)",), IntegerType),
)
OUTPUT_COLUMNS = [name for name, _, _ in COLUMNS]
SORT_KEYS = ("spending_score", "customer_id")
# Spark fills this column with the raw line of any row it cannot parse against the schema.
CORRUPT = "_corrupt_record"
MAX_REPORTED_ROWS = 5

CSV_OPTIONS = {
    "header": "true",
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": CORRUPT,
    "ignoreLeadingWhiteSpace": "true",
    "ignoreTrailingWhiteSpace": "true",
    "encoding": "UTF-8",
}


class InputError(Exception):
    """The input does not match the expected format; the message says how."""


def _normalise(header: str) -> str:
    return header.strip().lstrip("\ufeff").strip().lower()


def read_header(spark: SparkSession, path: str) -> list[str]:
    """Return the header row of the CSV input (only the first line is parsed)."""
    header_df = spark.read.options(header="true", inferSchema="false", encoding="UTF-8").csv(path)
    return list(header_df.columns)


def build_schema(header: Sequence[str]) -> tuple[StructType, dict[str, str]]:
    """Map the file's header to an explicit schema.

    Returns the read schema (one field per header column, in file order, plus the corrupt-record
    column) and a mapping input header -> output column name.
    """
    by_alias = {
        _normalise(alias): (name, spark_type) for name, aliases, spark_type in COLUMNS for alias in aliases
    }
    fields: list[StructField] = []
    renames: dict[str, str] = {}
    for raw in header:
        known = by_alias.get(_normalise(raw))
        if known is None or known[0] in renames.values():
            # Unknown (or a second alias of an already mapped) column: read as text, ignore.
            fields.append(StructField(raw, StringType(), True))
            continue
        name, spark_type = known
        fields.append(StructField(raw, spark_type(), True))
        renames[raw] = name
    missing = [name for name, _, _ in COLUMNS if name not in renames.values()]
    if missing:
        expected = ", ".join(" or ".join(repr(a) for a in aliases) for _, aliases, _ in COLUMNS)
        needed = ", ".join(
            " or ".join(repr(a) for a in aliases) for name, aliases, _ in COLUMNS if name in missing
        )
        raise InputError(
            f"input header is missing column(s) {needed}; found {list(header)!r}; "
            f"expected (case-insensitive): {expected}"
        )
    fields.append(StructField(CORRUPT, StringType(), True))
    return StructType(fields), renames


def load(spark: SparkSession, path: str) -> DataFrame:
    """Read and validate the CSV input; return it with the output column names."""
    header = read_header(spark, path)
    if not header:
        raise InputError(f"input {path!r} is empty or has no header row")
    schema, renames = build_schema(header)
    raw = spark.read.schema(schema).options(**CSV_OPTIONS).csv(path)
    typed = raw.select(*[F.col(f"`{src}`").alias(dst) for src, dst in renames.items()], CORRUPT)
    # Every column is referenced so the CSV parser checks every field (it prunes unread columns).
    any_null = F.lit(False)
    for name in OUTPUT_COLUMNS:
        any_null = any_null | F.col(name).isNull()
    bad = typed.where(F.col(CORRUPT).isNotNull() | any_null).limit(MAX_REPORTED_ROWS).collect()
    if bad:
        described = []
        for row in bad:
            if row[CORRUPT] is not None:
                described.append(f"unparsable row {row[CORRUPT].rstrip()!r}")
            else:
                empty = [name for name in OUTPUT_COLUMNS if row[name] is None]
                described.append(f"row with customer_id={row['customer_id']} has empty {', '.join(empty)}")
        raise InputError(
            f"input {path!r} has rows that are not valid (integers are required for CustomerID, Age, "
            f"Annual Income (k$) and Spending Score (1-100); showing up to {MAX_REPORTED_ROWS}): "
            + "; ".join(described)
        )
    return typed.drop(CORRUPT)


def sort_customers(df: DataFrame) -> DataFrame:
    """Global sort: spending score ascending, customer id ascending as the tie-break."""
    return df.orderBy(*[F.col(key).asc() for key in SORT_KEYS])


def run(spark: SparkSession, input_path: str, output_path: str) -> None:
    """Validate, sort and write."""
    df = load(spark, input_path)
    sort_customers(df).write.mode("overwrite").option("compression", "snappy").parquet(output_path)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="CSV file or directory (s3://, hdfs://, local)")
    parser.add_argument("--output", required=True, help="Parquet output directory (overwritten)")
    args = parser.parse_args(argv)
    for flag in ("input", "output"):
        if not getattr(args, flag).strip():
            parser.error(f"--{flag} must not be empty")
    return args


def main(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> int:
    args = parse_args(argv)
    own_session = spark is None
    if spark is None:
        spark = SparkSession.builder.appName("sort-customers-by-spending-score").getOrCreate()
    try:
        run(spark, args.input, args.output)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if own_session:
            spark.stop()
    print(f"wrote {args.output} sorted by {', '.join(SORT_KEYS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
