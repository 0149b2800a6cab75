"""Node bootstrap of the golden Airflow AMI: settings -> airflow.cfg -> the role's units.

Standard library only (plus SQLAlchemy for the migration lock), so the same code runs on
the node from /opt/airflow/bootstrap and in the local rehearsal from the repository.
"""


class BootstrapError(Exception):
    """A problem the operator must fix; printed as one line, never as a traceback."""


def last_line(output: str | None, fallback: str, limit: int | None = None) -> str:
    """The last line of a command's output, where its error is, cut to `limit` characters;
    `fallback` when there is no output."""
    lines = (output or "").strip().splitlines()
    return (lines[-1] if lines else fallback)[:limit]


def error_line(exc: BaseException, limit: int) -> str:
    """An exception's message as one line of at most `limit` characters (its first: botocore
    and SQLAlchemy append detail below it); its type name when it has no message."""
    message = str(exc)
    return message.splitlines()[0][:limit] if message else type(exc).__name__
