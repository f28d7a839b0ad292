"""The command-id key on a host: made on first use on a single host; on a host of a
multi-host deployment (``FACEGATE_AUDIT_MODE=topic``) never made by a worker (a key of
its own would name withdrawals apart from the other hosts), but refused with one
``Error:`` line that says to copy the first host's; a key file others may read, or that
is not exactly one key, is refused too."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stream_processor.errors import ConfigError
from stream_processor.runtime.command_key import (
    KEY_BYTES,
    MissingCommandKey,
    command_key,
    fingerprint,
    key_path,
)
from tests.conftest import FACEGATE


def _facegate(state: Path, *args: str, mode: str = "file") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    # No broker is reached before the key is looked at: port 1 proves it.
    env.update(FACEGATE_STATE_DIR=str(state), FACEGATE_KAFKA_AUTH="false",
               FACEGATE_KAFKA_PORT="1", FACEGATE_AUDIT_MODE=mode)  # fmt: skip
    return subprocess.run([FACEGATE, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


@pytest.mark.unit
def test_a_single_host_makes_its_key_on_first_use_once(tmp_path: Path) -> None:
    key = command_key(tmp_path)
    path = key_path(tmp_path)
    assert len(key) == KEY_BYTES and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert command_key(tmp_path) == key == command_key(tmp_path, create=False)


@pytest.mark.e2e
@pytest.mark.parametrize("worker", ["processor", "erasure"])
def test_a_worker_of_a_multi_host_deployment_never_makes_a_key(
    tmp_path: Path, worker: str
) -> None:
    line = _one_error_line(_facegate(tmp_path, worker, "worker", mode="topic"))
    assert f"no command-id key at {key_path(tmp_path)}" in line
    assert "Copy secrets/command-id.key" in line and "from the first host" in line
    assert "docs/operations.md" in line and "command-key --create" in line
    assert not key_path(tmp_path).exists()
    with pytest.raises(MissingCommandKey):
        command_key(tmp_path, create=False)


@pytest.mark.e2e
def test_the_first_host_makes_it_and_a_copy_gives_the_same_fingerprint(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    made = _facegate(first, "processor", "command-key", "--create", mode="topic")
    assert made.returncode == 0 and "made now, fingerprint " in made.stdout, made.stderr
    shown = made.stdout.split("fingerprint ")[1].strip()
    assert shown == fingerprint(command_key(first)) and len(shown) == 16
    # The key itself is never printed.
    assert command_key(first).hex() not in made.stdout
    line = _one_error_line(_facegate(second, "processor", "command-key", mode="topic"))
    assert "from the first host" in line
    shutil.copytree(first / "secrets", second / "secrets")
    again = _facegate(second, "processor", "command-key", mode="topic")
    assert again.returncode == 0 and again.stdout.endswith(f"present, fingerprint {shown}\n")
    # --create never replaces a key that is there.
    kept = _facegate(second, "processor", "command-key", "--create", mode="topic")
    assert kept.stdout.endswith(f"present, fingerprint {shown}\n")


@pytest.mark.e2e
def test_a_single_host_without_a_key_is_told_it_comes_on_first_use(tmp_path: Path) -> None:
    line = _one_error_line(_facegate(tmp_path, "processor", "command-key"))
    assert "the first processor or erasure worker makes it" in line
    assert not key_path(tmp_path).exists()


@pytest.mark.e2e
@pytest.mark.parametrize("mode", [0o644, 0o604, 0o660, 0o602, 0o620])
def test_a_key_others_may_read_is_refused_with_one_line(tmp_path: Path, mode: int) -> None:
    command_key(tmp_path)
    key_path(tmp_path).chmod(mode)
    line = _one_error_line(_facegate(tmp_path, "processor", "worker"))
    assert f"may be read or changed by others (mode {mode:04o}): chmod 600" in line


@pytest.mark.unit
@pytest.mark.parametrize("mode", [0o600, 0o400, 0o440, 0o640])
def test_a_key_only_its_owner_and_group_may_read_is_taken(tmp_path: Path, mode: int) -> None:
    # 0440: a Kubernetes secret volume (defaultMode 0400) under the pod's fsGroup.
    key = command_key(tmp_path)
    key_path(tmp_path).chmod(mode)
    assert command_key(tmp_path, create=False) == key


@pytest.mark.e2e
def test_a_key_of_the_wrong_size_is_refused_with_one_line(tmp_path: Path) -> None:
    path = key_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("ab" * (KEY_BYTES - 1) + "\n")
    path.chmod(0o600)
    line = _one_error_line(_facegate(tmp_path, "erasure", "worker", mode="topic"))
    assert f"must hold {KEY_BYTES} bytes as {2 * KEY_BYTES} hex digits" in line
    assert "copy it again from the first host" in line
    assert path.read_text() == "ab" * (KEY_BYTES - 1) + "\n"  # refused, never replaced


@pytest.mark.unit
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=3 * KEY_BYTES))
@example(b"ab" * KEY_BYTES + b"\r\n")
@example(b" " + b"ab" * KEY_BYTES)
@example(b"ab" * (KEY_BYTES // 2) + b" " + b"ab" * (KEY_BYTES // 2 - 1) + b"a\n")
@example(b"ab" * KEY_BYTES)
def test_only_one_key_as_hex_is_ever_accepted(tmp_path: Path, content: bytes) -> None:
    path = key_path(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(0o600)
    digits = content.removesuffix(b"\n")
    valid = len(digits) == 2 * KEY_BYTES and all(c in b"0123456789abcdefABCDEF" for c in digits)
    if valid:
        assert command_key(tmp_path, create=False) == bytes.fromhex(digits.decode())
    else:
        with pytest.raises(ConfigError, match="command-id key"):
            command_key(tmp_path, create=False)
