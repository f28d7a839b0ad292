"""Debian packages and binaries this host needs (the local brokers, fonts, web assets),
installed when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from stream_processor.errors import StackError

_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in _SBIN:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    return None


def ensure_debian_packages(binaries: dict[str, str]) -> None:
    """Install the Debian package of each missing binary (``{binary: package}``).

    Runs ``apt-get update`` first. Needs root; otherwise fails with the command
    to run.
    """
    _install(sorted({pkg for binary, pkg in binaries.items() if find_binary(binary) is None}))


def ensure_debian_files(files: dict[str, str]) -> None:
    """Install the Debian package of each missing file (``{path: package}``), e.g. fonts."""
    _install(sorted({pkg for path, pkg in files.items() if not Path(path).exists()}))


def _install(missing: list[str]) -> None:
    if not missing:
        return
    command = ["apt-get", "install", "-y", "-q", *missing]
    if os.geteuid() != 0:
        raise StackError(
            f"missing Debian packages {missing};"
            f" run: sudo apt-get update && sudo {' '.join(command)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"], command):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(
                f"{' '.join(argv)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )


def require_binary(name: str, package: str) -> str:
    ensure_debian_packages({name: package})
    found = find_binary(name)
    if found is None:
        raise StackError(f"{name} not found after installing {package}")
    return found
