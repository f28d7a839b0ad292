"""A private PostgreSQL cluster under the state directory, from the Debian package.

``initdb`` refuses to run as root, so when the project runs as root the cluster
is created and run by an unprivileged OS user (``postgres`` by default) that
owns the data folder. It listens on 127.0.0.1 only (no Unix socket), with
scram-sha-256 passwords; the password is generated once and kept under
``secrets/postgres/`` (0600). Everything is idempotent.
"""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stream_processor.errors import NotReady, StackError
from stream_processor.runtime.layout import StateLayout, write_private
from stream_processor.runtime.system import ensure_debian_packages
from stream_processor.stack import procs
from stream_processor.stack.settings import StackSettings
from stream_processor.store.factory import postgres_password_file, store_dsn
from stream_processor.store.settings import StoreSettings

MARKER = "postgres"


@dataclass(frozen=True)
class PostgresStatus:
    running: bool
    pid: int | None
    port: int


def find_bin_dir(configured: Path | None = None) -> Path:
    """The folder of initdb/pg_ctl; installs the Debian package ``postgresql`` if missing."""
    if configured is not None:
        return configured
    for attempt in range(2):
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/initdb"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        if candidates:
            return candidates[-1].parent
        if attempt == 0:
            # initdb is not on PATH in Debian: name a path that cannot be found so
            # that ensure_debian_packages installs the package.
            ensure_debian_packages({"/nonexistent/facegate-needs-initdb": "postgresql"})
    raise StackError("PostgreSQL binaries not found after installing the postgresql package")


class Postgres:
    def __init__(self, stack: StackSettings, store: StoreSettings | None = None) -> None:
        self._stack = stack
        self._s = store or StoreSettings()
        layout = StateLayout(stack.state_dir)
        self.dir = layout.root / "postgres"
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.password_file = postgres_password_file(stack, self._s)

    # -- who runs it ------------------------------------------------------------
    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", self._s.postgres_os_user, "--", *argv]

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self._s.postgres_os_user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _run(self, argv: list[str], what: str) -> str:
        result = subprocess.run(
            self._as_owner(argv), capture_output=True, text=True, check=False, cwd="/"
        )
        if result.returncode != 0:
            raise StackError(f"{what} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        return result.stdout

    # -- pieces -------------------------------------------------------------------
    def password(self) -> str:
        if not self.password_file.exists():
            write_private(self.password_file, secrets.token_urlsafe(24))
        return self.password_file.read_text().strip()

    def dsn(self, db: str | None = None) -> str:
        if self._s.postgres_dsn is None or db is not None:
            self.password()  # the local role's password is generated on first use
        return store_dsn(self._stack, self._s, db)

    def _pidfile(self) -> Path:
        return self.data / "postmaster.pid"

    def status(self) -> PostgresStatus:
        try:
            first = self._pidfile().read_text().splitlines()[0]
            pid: int | None = int(first)
        except (FileNotFoundError, IndexError, ValueError, PermissionError):
            pid = None
        if pid is not None and not procs.pid_alive(pid, MARKER):
            pid = None
        return PostgresStatus(pid is not None, pid, self._s.postgres_port)

    def initdb(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        bin_dir = find_bin_dir(self._s.postgres_bin)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.dir)
        self._chown(self.data)
        pwfile = self.dir / ".initdb-pw"
        pwfile.write_text(self.password() + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        try:
            self._run(
                [
                    str(bin_dir / "initdb"), "-D", str(self.data), "-U", self._s.postgres_user,
                    f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                    "--locale=C.UTF-8", "--no-instructions",
                ],
                "initdb",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)

    def up(self) -> PostgresStatus:
        """Create the cluster if needed, start it, create the database. Idempotent."""
        if self._s.postgres_dsn is not None:
            return PostgresStatus(False, None, self._s.postgres_port)
        self.initdb()
        if not self.status().running:
            bin_dir = find_bin_dir(self._s.postgres_bin)
            if not self.log.exists():
                self.log.touch()
                self._chown(self.log)
            opts = (
                f"-p {self._s.postgres_port} -h {self._stack.host} -k '' "
                "-c max_connections=100 -c shared_buffers=128MB -c synchronous_commit=on"
            )
            self._run(
                [str(bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                 "-o", opts, "-w", "-t", str(int(self._stack.start_timeout_s)), "start"],
                "pg_ctl start",
            )  # fmt: skip
        self._wait_ready()
        self._create_database()
        return self.status()

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + self._stack.start_timeout_s
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), autocommit=True):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise NotReady(f"postgres not ready: {exc}; see {self.log}") from exc
                time.sleep(0.2)

    def _create_database(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self._s.postgres_db,)
            ).fetchone()
            if not exists:
                name = sql.Identifier(self._s.postgres_db)
                conn.execute(sql.SQL("CREATE DATABASE {}").format(name))

    def down(self) -> bool:
        if not self.status().running:
            return False
        bin_dir = find_bin_dir(self._s.postgres_bin)
        self._run(
            [str(bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            "pg_ctl stop",
        )
        return True
