"""deploy/systemd: a hardened unit for every cloud process, each starting a real command."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, check_environment, parse_env_file
from tests.support.edge import FACEGATE

pytestmark = pytest.mark.unit

UNITS = DEPLOY / "systemd"
#: The long-running cloud processes; each needs a unit.
PROCESSES = {
    ("bridge", "run"), ("processor", "worker"), ("erasure", "worker"), ("audit", "follow"),
    ("audit", "checkpointer"), ("web", "serve"), ("witness", "run"),
}
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes"}


def parse_unit(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` → every value given (systemd allows repeated keys)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


def services() -> list[Path]:
    return sorted(UNITS.glob("*.service"))


def command_of(unit: dict[str, list[str]]) -> list[str]:
    (exec_start,) = unit["Service.ExecStart"]
    argv = shlex.split(exec_start.replace("%i", "1"))
    assert argv[0] == "/opt/facegate/bin/facegate", argv
    return argv[1:]


def test_every_cloud_process_has_a_unit() -> None:
    started = set()
    for path in services():
        argv = command_of(parse_unit(path))
        started.add(tuple(argv[:2]))
    assert started == PROCESSES


@pytest.mark.parametrize("path", services(), ids=lambda p: p.name)
def test_each_unit_starts_a_real_facegate_command_with_real_options(path: Path) -> None:
    argv = command_of(parse_unit(path))
    words = [a for a in argv if not a.startswith("-")][:2]
    shown = subprocess.run([FACEGATE, *words, "--help"], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0, shown.stderr
    for option in (a for a in argv if a.startswith("--")):
        assert option in shown.stdout, f"{path.name}: {option} is not an option of {words}"


@pytest.mark.parametrize("path", services(), ids=lambda p: p.name)
def test_each_unit_is_hardened_and_unprivileged(path: Path) -> None:
    unit = parse_unit(path)
    for key, value in HARDENING.items():
        assert unit.get(f"Service.{key}") == [value], f"{path.name}: {key}"
    assert unit["Service.User"] == ["facegate"] and unit["Service.CapabilityBoundingSet"] == [""]
    (writable,) = unit["Service.ReadWritePaths"]
    assert writable.startswith("/var/lib/facegate")
    assert unit["Service.EnvironmentFile"][0] == "/etc/facegate/facegate.env"
    assert unit["Install.WantedBy"] == ["facegate.target"]


def test_the_env_files_name_only_settings_the_code_reads_with_values_it_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = parse_env_file(UNITS / "facegate.env")
    assert shared["FACEGATE_STATE_DIR"].startswith("/")
    check_environment(shared, "facegate.env", monkeypatch)
    for extra in sorted(UNITS.glob("*.env.example")):
        check_environment({**shared, **parse_env_file(extra)}, extra.name, monkeypatch)


def test_systemd_analyze_verifies_every_unit(tmp_path: Path) -> None:
    from stream_processor.runtime.system import require_binary

    analyze = require_binary("systemd-analyze", "systemd")  # installed here when missing
    names = []
    for path in [*services(), UNITS / "facegate.target"]:
        text = path.read_text().replace("/opt/facegate/bin/facegate", FACEGATE)
        (tmp_path / path.name).write_text(text)
        names.append(str(tmp_path / path.name.replace("@.", "@1.")))
    result = subprocess.run([analyze, "verify", "--man=no", *names], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Unknown" not in output, output


@pytest.mark.parametrize(
    "name", ["facegate-audit-follower.service", "facegate-audit-checkpointer.service"]
)
def test_the_audit_units_serve_metrics_for_prometheus(name: str) -> None:
    argv = command_of(parse_unit(UNITS / name))
    port = int(argv[argv.index("--metrics-port") + 1])
    assert 1024 < port < 65536
