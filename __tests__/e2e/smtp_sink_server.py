"""The e2e cluster's mail server: a real SMTP server on loopback (aiosmtpd) that, like SES's
SMTP interface, requires STARTTLS and then AUTH before it takes a message. Each message is
written to MAIL_DIR/<n>.eml, so the harness reads what Airflow really sent.

Usage: smtp_sink_server.py --port P --mail-dir DIR --cert PEM --key PEM --login USER --password-file F
(the password is read from a file, never argv)
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class _Handler:
    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        with self.lock:
            self.count += 1
            path = self.mail_dir / f"{self.count:04d}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(
            b"X-Envelope-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n" + envelope.content
        )
        tmp.rename(path)
        return "250 OK"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mail-dir", type=Path, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--login", required=True)
    ap.add_argument("--password-file", type=Path, required=True)
    args = ap.parse_args()
    password = args.password_file.read_text()
    if not password:
        raise SystemExit(f"smtp sink: --password-file {args.password_file} is empty")
    args.mail_dir.mkdir(parents=True, exist_ok=True)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode() == args.login and auth_data.password.decode() == password
        )
        return AuthResult(success=ok)

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    controller = Controller(
        _Handler(args.mail_dir),
        hostname="127.0.0.1",
        port=args.port,
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticate,
    )
    controller.start()
    print(f"smtp sink ready on 127.0.0.1:{args.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
