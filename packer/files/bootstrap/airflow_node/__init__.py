"""Node bootstrap of the golden Airflow AMI: settings -> airflow.cfg -> the role's units.

Standard library only (plus SQLAlchemy for the migration lock), so the same code runs on
the node from /opt/airflow/bootstrap and in the local rehearsal from the repository.
"""


class BootstrapError(Exception):
    """A problem the operator must fix; printed as one line, never as a traceback."""
