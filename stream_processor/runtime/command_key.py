"""The deployment's command-id key: the secret that keys edge-command ids.

A withdrawal's command id is derived from its consent record so that every worker
(the processor that sends it first, the erasure worker that re-sends it, on any
host, after any replay) names it alike. Derived without a secret, anyone holding a
pseudonym could recompute it and find the subject's rows; keyed with this secret,
only the deployment can.

The key lives in ``<state>/secrets/command-id.key`` (0600, 32 random bytes as hex),
made by the first process that needs it. Every host of a deployment must hold the
same file: copy ``secrets/`` to a new host as for the operator key and the Kafka
logins (a host that makes its own names its commands apart: gates then act on both
names and acknowledge each, which is idempotent but twice the traffic).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from stream_processor.errors import ConfigError
from stream_processor.runtime.layout import StateLayout

KEY_FILE = "command-id.key"
KEY_BYTES = 32


def key_path(state_dir: Path) -> Path:
    return StateLayout(Path(state_dir)).secrets / KEY_FILE


def command_key(state_dir: Path) -> bytes:
    """The deployment's key, made once if this state has none (several processes
    starting at once agree: the file is created exclusively, and losers read it)."""
    path = key_path(state_dir)
    if not path.exists():
        _create(path)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the command-id key {path}: {exc}") from exc
    if len(key) != KEY_BYTES:
        raise ConfigError(f"the command-id key {path} must hold {KEY_BYTES} bytes as hex")
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written beside secrets/, not in it: an operator copying secrets/ to another host
    # while a first worker starts meets no file that vanishes under the copy.
    tmp = path.parent.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(KEY_BYTES) + "\n")
        # link() never replaces: a key another process made first is kept (os.replace
        # would swap it under a process that already read it).
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["KEY_BYTES", "KEY_FILE", "command_key", "key_path"]
