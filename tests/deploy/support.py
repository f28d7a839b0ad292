"""What the deploy tests share: the code's settings, built from a deploy file's environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from stream_processor.cli.environment import known_variables, unknown_variables

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def settings_classes() -> list[type]:
    """Every settings class a cloud process builds from its environment."""
    from stream_processor.audit.settings import AuditSettings
    from stream_processor.bridge.settings import BridgeSettings
    from stream_processor.erasure.settings import ErasureSettings
    from stream_processor.processor.settings import ProcessorSettings
    from stream_processor.runtime.settings import BrokerSettings, Topics
    from stream_processor.store.settings import StoreSettings
    from stream_processor.web.settings import WebSettings
    from stream_processor.witness.settings import WitnessSettings

    return [AuditSettings, BridgeSettings, ErasureSettings, ProcessorSettings, BrokerSettings,
            Topics, StoreSettings, WebSettings, WitnessSettings]


def check_environment(env: Mapping[str, str], where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``FACEGATE_…`` name is one the code reads, and every value is one it accepts."""
    unknown = unknown_variables(env, known_variables())
    assert not unknown, f"{where}: variables no settings class reads: {unknown}"
    for name in [n for n in os.environ if n.startswith("FACEGATE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for cls in settings_classes():
        cls()  # raises ValidationError naming the variable whose value is refused


def parse_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env
