"""Where every file of a local stack lives under the one state directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StateLayout:
    root: Path

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def mosquitto(self) -> Path:
        return self.root / "mosquitto"

    @property
    def kafka(self) -> Path:
        return self.root / "kafka"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def run(self) -> Path:
        """Pid files and logs of processes started by the demo."""
        return self.root / "run"

    @property
    def devices_dir(self) -> Path:
        """Connection configs written for each registered device."""
        return self.root / "devices"

    @property
    def sqlite_path(self) -> Path:
        return self.store / "events.sqlite"

    def ensure(self) -> None:
        for path in (self.root, self.mosquitto, self.kafka, self.store, self.run, self.devices_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.secrets.mkdir(parents=True, exist_ok=True)
        os.chmod(self.secrets, 0o700)


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (secrets, password files)."""
    replace_text(path, text, mode=0o600)


def replace_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Write in one step: a reader (another process on this host) sees the old file or
    the new one, never a truncated one. The temporary name is per process, so two
    writers never write into one temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def private_database(path: Path) -> Path:
    """Create ``path`` (and its directory) for the owner only, or narrow an existing one.

    SQLite gives the -wal and -shm files it creates the database file's mode, so a
    0600 database keeps its journal private too; ones left by an older, looser
    file are narrowed here as well.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if each.exists() and each.stat().st_mode & 0o077:
            os.chmod(each, 0o600)
    return path
