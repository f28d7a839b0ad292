"""A test's pipeline leaves no durable bridge session on the suite's Mosquitto: left
behind, the broker would queue every device message for it for the rest of the suite."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from stream_processor.bridge.session import ensure_bridge_session
from stream_processor.bridge.settings import BridgeSettings
from stream_processor.runtime.accounts import AccountBook, Credentials
from stream_processor.runtime.layout import StateLayout
from tests.conftest import (
    Pipeline,
    StackHandle,
    free_ports,
    prepare_bridge_session,
    wait_for,
)
from tests.support.mosquitto_census import take_census
from tests.support.mqtt_sessions import session_present


def _creds(stack: StackHandle) -> Credentials:
    return AccountBook(StateLayout(stack.state_dir)).bridge_credentials()


def _present(stack: StackHandle, instance: str) -> bool:
    s = stack.settings()
    client_id = BridgeSettings.model_construct(instance=instance).client_id
    return session_present(s.host, s.mqtt_port, _creds(stack), client_id)


def _connected(p: Pipeline, name: str) -> Callable[[], bool]:
    return lambda: "MQTT connected" in p.log(name)


def test_stop_all_ends_the_sessions_of_the_bridges_it_ran(
    running_stack: StackHandle, tmp_path: Path
) -> None:
    p = Pipeline(stack=running_stack, tag=uuid.uuid4().hex[:10], tmp=tmp_path)
    p.extra_env["FACEGATE_BRIDGE_METRICS_PORT"] = str(free_ports(1)[0])
    p.create_topics()
    s = running_stack.settings()
    # A session this pipeline never heard of: teardown must leave it alone.
    stranger = f"{p.tag}-x"
    try:
        prepare_bridge_session(p)  # instance <tag>-1, prepared and then run
        p.start("bridge", "run", name="bridge-1")
        p.extra_env["FACEGATE_BRIDGE_INSTANCE"] = f"{p.tag}-2"  # run without preparing
        p.extra_env["FACEGATE_BRIDGE_METRICS_PORT"] = str(free_ports(1)[0])
        p.start("bridge", "run", name="bridge-2")
        for name in ("bridge-1", "bridge-2"):
            wait_for(_connected(p, name), 90, f"{name} connected")
        stranger_settings = BridgeSettings(share_group=f"bridge-{p.tag}", instance=stranger)
        ensure_bridge_session(s.host, s.mqtt_port, _creds(running_stack), stranger_settings)
        p.stop_all()
        assert p.procs and all(proc.returncode is not None for proc in p.procs)
        # What the broker itself keeps (its persistence file): the stranger, not ours.
        census = take_census(running_stack.state_dir)
        assert census is not None and census.sessions >= 1
        ours = {BridgeSettings.model_construct(instance=f"{p.tag}-{n}").client_id for n in (1, 2)}
        assert not ours & set(census.bridges), census
        assert BridgeSettings.model_construct(instance=stranger).client_id in census.bridges
        assert not _present(running_stack, f"{p.tag}-1")
        assert not _present(running_stack, f"{p.tag}-2")
        # The probe does see a durable session (so the two above were really gone) ...
        assert _present(running_stack, stranger)
        # ... and, asking with expiry 0, it ended that one too.
        assert not _present(running_stack, stranger)
    finally:
        p.stop_all()
        p.revoke()
