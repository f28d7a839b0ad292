"""The deployment's command-id key: the secret that keys edge-command ids.

A withdrawal's command id is derived from its consent record so that every worker
(the processor that sends it first, the erasure worker that re-sends it, on any
host, after any replay) names it alike. Derived without a secret, anyone holding a
pseudonym could recompute it and find the subject's rows; keyed with this secret,
only the deployment can.

The key lives in ``<state>/secrets/command-id.key`` (0600, 32 random bytes as hex).
On one host it is made by the first process that needs it. Every host of a
multi-host deployment must hold the same file: a host that made its own would name
a withdrawal's command apart from the others, and an acknowledgement sent for one
name would never close the row another host tracks under the other. There a missing
key is an error telling the operator to copy it from the first host, which makes it
once with ``facegate processor command-key --create``. A key file that others may
read, or that is not one key, is refused rather than used or replaced.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from pathlib import Path

from stream_processor.errors import ConfigError
from stream_processor.runtime.layout import StateLayout

KEY_FILE = "command-id.key"
KEY_BYTES = 32


#: The file's whole text: the key as hex and a newline (an editor may drop it).
_SIZES = (2 * KEY_BYTES, 2 * KEY_BYTES + 1)
_HEX = b"0123456789abcdefABCDEF"
#: Refused mode bits: any access by others, or writing by the group. Group read stays
#: allowed: a Kubernetes secret volume with an fsGroup mounts 0400 as 0440, for the
#: pod's own group.
_LOOSE = 0o027


class MissingCommandKey(ConfigError):
    """A host of a multi-host deployment has no command-id key: it must get the first
    host's, never make its own."""


def key_path(state_dir: Path) -> Path:
    return StateLayout(Path(state_dir)).secrets / KEY_FILE


def command_key(state_dir: Path, create: bool = True) -> bytes:
    """The deployment's key. ``create``: make it if this state has none (one host;
    several processes starting at once agree: the file is created exclusively, and
    losers read it); False on a host of a multi-host deployment
    (``FACEGATE_AUDIT_MODE=topic``), where a missing key raises ``MissingCommandKey``."""
    path = key_path(state_dir)
    if not path.exists():
        if not create:
            raise MissingCommandKey(missing_key_message(path))
        _create(path)
    return _read(path)


def missing_key_message(path: Path) -> str:
    return (
        f"no command-id key at {path}: every host of a multi-host deployment"
        " (FACEGATE_AUDIT_MODE=topic) must hold the same one, or the hosts name a"
        " withdrawal's edge command apart. Copy secrets/command-id.key (mode 0600) from"
        " the first host (docs/operations.md, 'Several hosts: the audit log'); on the"
        " first host, make it once: facegate processor command-key --create"
    )


def _read(path: Path) -> bytes:
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read the command-id key {path}: {exc}") from exc
    if stat.S_IMODE(st.st_mode) & _LOOSE:
        raise ConfigError(
            f"the command-id key {path} may be read or changed by others (mode"
            f" {stat.S_IMODE(st.st_mode):04o}): chmod 600 it, and think whether it leaked"
        )
    if not stat.S_ISREG(st.st_mode) or st.st_size not in _SIZES:
        raise ConfigError(
            f"the command-id key {path} must hold {KEY_BYTES} bytes as {2 * KEY_BYTES} hex"
            f" digits ({st.st_size} bytes found): copy it again from the first host"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the command-id key {path}: {exc}") from exc
    digits = raw.removesuffix(b"\n")
    if len(digits) != 2 * KEY_BYTES or digits.strip(_HEX):
        raise ConfigError(
            f"the command-id key {path} must hold {KEY_BYTES} bytes as {2 * KEY_BYTES} hex"
            " digits and nothing else: copy it again from the first host"
        )
    return bytes.fromhex(digits.decode("ascii"))


def fingerprint(key: bytes) -> str:
    """A short digest that tells two hosts' keys apart without showing either."""
    return hashlib.sha256(b"facegate command-id key\0" + key).hexdigest()[:16]


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


__all__ = [
    "KEY_BYTES", "KEY_FILE", "MissingCommandKey", "command_key", "fingerprint", "key_path",
    "missing_key_message",
]  # fmt: skip
