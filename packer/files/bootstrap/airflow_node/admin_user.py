"""Create or update the FAB admin user 'admin' (run by the bootstrap as the airflow user).

The password arrives on stdin, so it is never in argv (visible in ps) or the environment.
Idempotent: creates the user once; on later boots resets the password only if the secret
changed (rotation in Secrets Manager).
"""

from __future__ import annotations

import argparse
import sys

USERNAME = "admin"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--email", required=True)
    args = ap.parse_args()
    password = sys.stdin.read()
    if not password:
        print("error: admin password on stdin is empty", file=sys.stderr)
        return 1

    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
    from werkzeug.security import check_password_hash

    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        role = sm.find_role("Admin")
        if role is None:
            print("error: FAB role Admin does not exist (did airflow db migrate run?)", file=sys.stderr)
            return 1
        user = sm.find_user(username=USERNAME)
        if user is None:
            if not sm.add_user(USERNAME, "Airflow", "Admin", args.email, role, password):
                print("error: FAB refused to create the admin user", file=sys.stderr)
                return 1
            print(f"admin user '{USERNAME}' created")
        elif not check_password_hash(user.password, password):
            sm.reset_password(user.id, password)
            print(f"admin user '{USERNAME}' exists; password updated from the secret")
        else:
            print(f"admin user '{USERNAME}' exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
