"""litewitness (filippo.io/torchwood, v0.6.1): a C2SP ``tlog-witness`` no one here wrote,
installed with the machine's Go and run on loopback for interoperability tests
and the local demo.

Installed once into ``<gopath>/bin`` (``GOPATH=<state>/tools/go go install …``,
about 50 s; a later call is a file check). It signs through an ssh-agent
holding an Ed25519 key (Debian openssh-client), keeps its state in SQLite and
is told which log to witness, and the log's key, with ``witnessctl``.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import struct
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stream_processor.audit.note import COSIGNATURE_V1, Verifier
from stream_processor.errors import StackError

VERSION = "v0.6.1"  # newer torchwood needs a newer Go than the machine's 1.26
PACKAGES = ("filippo.io/torchwood/cmd/litewitness", "filippo.io/torchwood/cmd/witnessctl")
SSH_TOOLS = ("ssh-agent", "ssh-keygen", "ssh-add")
GO_CANDIDATES = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")


def _go() -> str:
    found = shutil.which("go") or next((g for g in GO_CANDIDATES if Path(g).exists()), None)
    if found is None:
        raise StackError("litewitness is built with Go: install Go ≥ 1.24 (https://go.dev/dl/)")
    return found


def ensure_litewitness(gopath: Path, timeout_s: float = 900) -> Path:
    """``<gopath>/bin`` with litewitness and witnessctl, installing them if missing."""
    bin_dir = gopath / "bin"
    if all((bin_dir / p.rsplit("/", 1)[1]).exists() for p in PACKAGES):
        return bin_dir
    gopath.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOPATH": str(gopath),
        "GOFLAGS": "-modcacherw",  # the module cache stays removable
        "GOTOOLCHAIN": "local",
    }
    argv = [_go(), "install", *(f"{p}@{VERSION}" for p in PACKAGES)]
    try:
        result = subprocess.run(
            argv, env=env, cwd=gopath, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"go install of litewitness took over {timeout_s:.0f} s") from exc
    if result.returncode != 0:
        raise StackError(f"go install of litewitness failed:\n{result.stderr[-3000:]}")
    return bin_dir


def _ssh_ed25519_public(pub_line: str) -> bytes:
    blob = base64.b64decode(pub_line.split()[1])
    (n,) = struct.unpack(">I", blob[:4])
    kind, rest = blob[4 : 4 + n], blob[4 + n :]
    (m,) = struct.unpack(">I", rest[:4])
    if kind != b"ssh-ed25519" or m != 32:
        raise StackError("the witness key is not an ssh-ed25519 key")
    return rest[4:36]


@dataclass
class Litewitness:
    """One litewitness process with its ssh-agent, under ``dir_``."""

    bin_dir: Path
    dir_: Path
    name: str
    port: int
    proc: subprocess.Popen[bytes] | None = None
    agent_pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.dir_ / "litewitness.db"

    def _run(self, *argv: str, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        if result.returncode != 0:
            raise StackError(f"{Path(argv[0]).name} failed: {result.stderr.strip()[-500:]}")
        return result.stdout

    def vkey(self) -> str:
        """The witness's cosignature/v1 verifier key (from its ssh public key)."""
        raw = _ssh_ed25519_public((self.dir_ / "witness_key.pub").read_text())
        return Verifier(self.name, COSIGNATURE_V1, Ed25519PublicKey.from_public_bytes(raw)).vkey()

    def add_log(self, origin: str, log_vkey: str) -> None:
        ctl = str(self.bin_dir / "witnessctl")
        self._run(ctl, "add-log", "-db", str(self.db), "-origin", origin)
        self._run(ctl, "add-key", "-db", str(self.db), "-origin", origin, "-key", log_vkey)

    def start(self) -> None:
        from stream_processor.runtime.system import ensure_debian_packages

        # It signs through an ssh-agent: Debian's openssh-client, installed if missing.
        ensure_debian_packages({tool: "openssh-client" for tool in SSH_TOOLS})
        self.dir_.mkdir(parents=True, exist_ok=True)
        key = self.dir_ / "witness_key"
        if not key.exists():
            self._run(
                "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name, "-f", str(key)
            )
        sock = self.dir_ / "agent.sock"
        sock.unlink(missing_ok=True)
        out = self._run("ssh-agent", "-a", str(sock), "-s")
        self.agent_pid = int(out.split("SSH_AGENT_PID=")[1].split(";")[0])
        self._run("ssh-add", str(key), env={**os.environ, "SSH_AUTH_SOCK": str(sock)})
        fingerprint = self._run("ssh-keygen", "-l", "-E", "sha256", "-f", str(key) + ".pub")
        log = open(self.dir_ / "litewitness.log", "ab")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen(
            [
                str(self.bin_dir / "litewitness"),
                "-db",
                str(self.db),
                "-name",
                self.name,
                "-listen",
                f"127.0.0.1:{self.port}",
                "-ssh-agent",
                str(sock),
                "-key",
                fingerprint.split()[1],
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError(f"litewitness exited: {self.log_tail()}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).close()  # noqa: S310
                return
            except urllib.error.HTTPError:
                return  # it answers (404 on /): ready
            except OSError:
                time.sleep(0.2)
        raise StackError(f"litewitness did not listen on {self.url}: {self.log_tail()}")

    def log_tail(self) -> str:
        path = self.dir_ / "litewitness.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.agent_pid is not None:
            try:
                os.kill(self.agent_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.agent_pid = None
