"""Rehearsal helper: run the bootstrap's migrate step (advisory lock -> `airflow db migrate`
-> admin user) from N processes at once against the rehearsal's PostgreSQL, as N scheduler
nodes booting together would. Exits non-zero unless every one succeeds.

    python concurrent_migrate.py NODE_ENV [N]
"""

from __future__ import annotations

import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packer" / "files" / "bootstrap"))

from airflow_node import BootstrapError, contract  # noqa: E402
from airflow_node.bootstrap import migrate, write_files  # noqa: E402
from airflow_node.render import render  # noqa: E402
from airflow_node.settings import load_node, read_settings  # noqa: E402


def one(args: tuple[str, int]) -> tuple[int, float, str]:
    node_env, index = args
    c = contract.load()
    node = load_node(Path(node_env), c)
    out = render(c, node, *read_settings(node, c))
    started = time.monotonic()
    try:
        migrate(node, out)
    except BootstrapError as exc:
        return index, time.monotonic() - started, str(exc)
    return index, time.monotonic() - started, ""


def main() -> int:
    node_env, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2
    c = contract.load()
    node = load_node(Path(node_env), c)
    write_files(node, render(c, node, *read_settings(node, c)))
    with Pool(n) as pool:
        results = pool.map(one, [(node_env, i) for i in range(n)])
    failed = False
    for index, seconds, error in results:
        print(f"concurrent migrate #{index}: {'FAILED: ' + error if error else 'ok'} ({seconds:.1f}s)")
        failed |= bool(error)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
