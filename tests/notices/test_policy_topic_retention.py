"""Notices read retention from the policy in force: the compacted policies topic (issue 5)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from stream_processor.notices.policy_retention import PolicyTopicRetention
from stream_processor.policy.keys import history_key, policy_key
from tests.conftest import FACEGATE, StackHandle, free_ports, wait_for
from tests.support.web import EXAMPLE_CAMERAS, policy_version


@pytest.mark.unit
def test_follows_current_keys_only() -> None:
    source = PolicyTopicRetention("unused:1", "unused")
    source.apply(policy_key("acme"), policy_version("30d", 1))
    source.apply(history_key("acme", 9), policy_version("1d", 9))  # history: ignored
    source.apply(b"_heartbeat/x", b"{}")
    assert source.retention_for("acme", "any", "face_match", "access_control") == dt.timedelta(
        days=30
    )
    assert source.retention_for("acme", "any", "unknown_face", "access_control") == dt.timedelta(0)
    assert source.retention_for("acme", "any", "face_match", "marketing") is None
    assert source.version("acme") == 1
    source.apply(policy_key("acme"), b'{"not": "a policy"}')  # refused: keep the last good
    assert source.version("acme") == 1
    source.apply(
        policy_key("other"), policy_version("30d", 1, tenant="acme")
    )  # key/tenant mismatch
    assert source.version("other") is None
    source.apply(policy_key("acme"), None)  # tombstone
    assert source.retention_for("acme", "any", "face_match", "access_control") is None


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - local test server
            return str(resp.read().decode())
    except OSError:
        return ""


@pytest.mark.component
def test_page_follows_policy_apply_on_kafka(
    running_stack: StackHandle, tmp_path: Path, tag: str, request: pytest.FixtureRequest
) -> None:
    from stream_processor.runtime.kafka_auth import Role
    from stream_processor.runtime.ledger_client import write_records
    from stream_processor.runtime.settings import Topics
    from stream_processor.runtime.topics import ensure_topics, topic_specs
    from tests.support.kafka import login_kwargs, private_host, revoke_private

    topics = Topics(policies=f"t.{tag}.policies")
    bootstrap = running_stack.settings().kafka_bootstrap
    admin = login_kwargs(running_stack)
    specs = [s for s in topic_specs(topics) if s.name == topics.policies]
    ensure_topics(bootstrap, specs, 1, admin)
    write_records(
        bootstrap,
        topics.policies,
        [
            (history_key("acme", 1), policy_version("30d", 1)),
            (policy_key("acme"), policy_version("30d", 1)),
        ],
        auth=admin,
    )

    state = tmp_path / "state"
    # The web app is a host of its own (its state dir): it logs in as the web role.
    grants = private_host(running_stack, state, topics, Role.WEB)
    request.addfinalizer(lambda: revoke_private(running_stack, grants))
    (state / "config").mkdir(parents=True)
    shutil.copy(EXAMPLE_CAMERAS, state / "config" / "cameras.yaml")
    (port,) = free_ports(1)
    env = {
        **os.environ,
        **running_stack.env,
        "FACEGATE_STATE_DIR": str(state),
        "FACEGATE_TOPIC_POLICIES": topics.policies,
        "FACEGATE_WEB_PORT": str(port),
        "FACEGATE_WEB_RETENTION_SOURCE": "kafka",
    }
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([FACEGATE, "web", "serve"], env=env, stdout=log, stderr=log)
    page = f"http://127.0.0.1:{port}/notice/acme/north-garden/gate-main-1?lang=en"
    try:
        wait_for(lambda: "30 days" in fetch(page), 60, "the page with the v1 retention")
        assert "Notice version 1" in fetch(page)
        write_records(
            bootstrap,
            topics.policies,
            [
                (history_key("acme", 2), policy_version("7d", 2)),
                (policy_key("acme"), policy_version("7d", 2)),
            ],
            auth=admin,
        )
        wait_for(
            lambda: '<td class="retention">7 days</td>' in fetch(page),
            30,  # a poll interval in practice; generous for a loaded CI machine
            "the page with the v2 retention",
        )
        assert "Notice version 2" in fetch(page)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
