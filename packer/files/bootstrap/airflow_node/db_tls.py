"""TLS to the metadata database, verified against the RDS CA bundle baked into the AMI.

The sync drivers (psycopg2, mysqlclient) take verification options in the URL; the async
ones (asyncpg, aiomysql) need an ``ssl.SSLContext``, which no URL can carry. Airflow 3.1+
imports the async engine's connect args from ``[database] sql_alchemy_connect_args_async``
(an import path), so the renderer points it at ``ASYNC_CONNECT_ARGS`` here. RDS rejects a
plaintext async connection (require_secure_transport=1 / rds.force_ssl=1), so without
this the API server's async sessions fail.

Kept standard library only: Airflow processes import it (PYTHONPATH in airflow.env).
"""

from __future__ import annotations

import os
import ssl
import sys

# The one place the bundle's path is defined: packer/scripts/45-rds-ca-bundle.sh asks this
# module for it (`python -m airflow_node.db_tls path`) and the renderer writes it into the
# URLs and airflow.env.
RDS_CA_BUNDLE = "/etc/pki/rds/global-bundle.pem"
# airflow.env sets it (to RDS_CA_BUNDLE under AIRFLOW_NODE_ROOT), so tests can root a node
# in a temporary directory; unset on a hand-run process, the baked path applies.
CA_BUNDLE_ENV = "AIRFLOW_DB_CA_BUNDLE"


def ca_bundle() -> str:
    return os.environ.get(CA_BUNDLE_ENV) or RDS_CA_BUNDLE


def ssl_context(cafile: str | None = None) -> ssl.SSLContext:
    """A client context that verifies the server certificate chain *and* host name against
    only the RDS bundle (not the system store: nothing else may pose as the database)."""
    path = cafile or ca_bundle()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_verify_locations(cafile=path)
    except FileNotFoundError:
        raise RuntimeError(
            f"database CA bundle {path} does not exist ({CA_BUNDLE_ENV}; baked by the AMI build)"
        ) from None
    except ssl.SSLError as exc:
        raise RuntimeError(f"database CA bundle {path} holds no usable PEM certificate: {exc}") from None
    return ctx


def __getattr__(name: str):
    # Built on access, not at import: the bootstrap imports this module for RDS_CA_BUNDLE
    # on machines without the bundle; Airflow's import_string() does getattr(module, name).
    if name == "ASYNC_CONNECT_ARGS":
        # asyncpg.connect(ssl=...) and aiomysql.connect(ssl=...) both take an SSLContext
        return {"ssl": ssl_context()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# the value of [database] sql_alchemy_connect_args_async
ASYNC_CONNECT_ARGS_PATH = "airflow_node.db_tls.ASYNC_CONNECT_ARGS"


def main(argv: list[str]) -> int:
    if argv == ["path"]:
        print(RDS_CA_BUNDLE)
        return 0
    if len(argv) == 2 and argv[0] == "check":
        try:
            ctx = ssl_context(argv[1])
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{argv[1]}: {len(ctx.get_ca_certs())} CA certificate(s)")
        return 0
    print("usage: python -m airflow_node.db_tls path | check FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
