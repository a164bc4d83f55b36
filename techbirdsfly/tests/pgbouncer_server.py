"""The real pgbouncer (Debian package; .ci/run installs it) in transaction mode, in front of the test PostgreSQL."""

from __future__ import annotations

import configparser
import io
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from techbirdsfly.servers import free_port
from techbirdsfly.tests.listening import wait_listening

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
INI = Path(__file__).resolve().parents[2] / "infra" / "pgbouncer" / "pgbouncer.ini"


def render(*, target: str, port: int, auth_file: Path, admin: str, pool_size: int) -> str:
    """infra/pgbouncer/pgbouncer.ini as compose runs it, but on loopback, in front of ``target``, without passwords."""
    ini = configparser.ConfigParser(delimiters=("=",), comment_prefixes=(";", "#"), interpolation=None)
    ini.optionxform = str  # keys as written
    ini.read_string(INI.read_text())
    ini["databases"] = {"*": target}
    ini["pgbouncer"].update(
        {
            "listen_addr": "127.0.0.1",
            "listen_port": str(port),
            "auth_type": "trust",
            "auth_file": str(auth_file),
            "admin_users": admin,
            "default_pool_size": str(pool_size),
        }
    )
    out = io.StringIO()
    ini.write(out)
    return out.getvalue()


class PgBouncerServer:
    """pgbouncer with infra/pgbouncer/pgbouncer.ini on a free loopback port, ``pool_size`` server connections.

    ``server`` is the test database's settings_dict (HOST, PORT, USER, PASSWORD). Clients authenticate
    to pgbouncer without a password (loopback, ``auth_type = trust``); pgbouncer logs in to PostgreSQL
    with the test database's own credentials.
    """

    def __init__(self, server: dict[str, Any], *, pool_size: int = 2) -> None:
        self.port = free_port()
        self.user = server["USER"] or "postgres"
        self.dir = Path(tempfile.mkdtemp(prefix="tbf-pgbouncer-"))
        self.dir.chmod(0o755)  # pgbouncer drops root for an ordinary user, who must read its files
        target = f"host={server['HOST'] or '127.0.0.1'} port={server['PORT'] or 5432}"
        if server.get("PASSWORD"):
            target += f" password={server['PASSWORD']}"
        self.ini = self.dir / "pgbouncer.ini"
        self.ini.write_text(
            render(
                target=target, port=self.port, auth_file=self.dir / "userlist.txt", admin=self.user, pool_size=pool_size
            )
        )
        (self.dir / "userlist.txt").write_text(f'"{self.user}" ""\n')
        for path in self.dir.iterdir():
            path.chmod(0o644)
        self.log = self.dir / "pgbouncer.log"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, dbname: str) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def start(self, timeout: float = 10.0) -> PgBouncerServer:
        command = [BINARY, str(self.ini)]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root
            command[1:1] = ["-u", _unprivileged_user()]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_listening(
            self.process, self.port, timeout=timeout, name="pgbouncer", log=self.log.read_text, stop=self.stop
        )
        return self

    def show(self, what: str) -> list[dict[str, Any]]:
        """A SHOW command of pgbouncer's admin console (simple query protocol: a client-side cursor)."""
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            dbname="pgbouncer",
            autocommit=True,
            cursor_factory=psycopg.ClientCursor,
        ) as admin:
            cursor = admin.cursor()
            cursor.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # immediate shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name).pw_name
        except KeyError:
            continue
    raise RuntimeError("pgbouncer will not run as root, and there is no postgres or nobody user to run it as")
