"""``facegate stack topics``: the topics on a Kafka cluster that facegate did not start."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from stream_processor.runtime.kafka_auth import Role
from stream_processor.runtime.settings import Topics
from stream_processor.runtime.topics import topic_specs
from tests.support.edge import FACEGATE
from tests.support.kafka import admin_client, share_login

pytestmark = pytest.mark.component

NAMES = ("raw", "dlq", "commands", "acks", "device_status", "audit_checkpoints", "consent",
         "erasure", "policies", "audit_facts", "audit_chain")


def test_topics_are_created_on_an_external_cluster_once_with_their_configs(  # type: ignore[no-untyped-def]
    running_stack, tmp_path: Path
) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    tag = uuid.uuid4().hex[:8]
    bootstrap = f"127.0.0.1:{running_stack.env['FACEGATE_KAFKA_PORT']}"
    names = {f"FACEGATE_TOPIC_{n.upper()}": f"t.{tag}.{n}" for n in NAMES}
    # Another state dir and no stack settings: only the bootstrap address is needed.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env |= {**names, "FACEGATE_KAFKA_BOOTSTRAP": bootstrap,
            "FACEGATE_STATE_DIR": str(tmp_path / "elsewhere")}
    if running_stack.kafka_auth:  # the operator's host holds the admin login, nothing else
        share_login(running_stack, tmp_path / "elsewhere", Role.ADMIN)
        env["FACEGATE_KAFKA_AUTH"] = "true"

    def run() -> str:
        done = subprocess.run([FACEGATE, "stack", "topics"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert f"{len(NAMES)} topics, {len(NAMES)} created now" in run()
    assert f"{len(NAMES)} topics, 0 created now" in run()
    assert not (tmp_path / "elsewhere" / "kafka").exists()

    specs = {s.name: s for s in topic_specs(Topics(**{n: f"t.{tag}.{n}" for n in NAMES}))}
    admin = admin_client(running_stack)
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in specs]
        )
        for response in described:
            # (error code, error message, resource type, resource name, config entries)
            for resource in response.resources:
                name, actual = resource[3], {e[0]: e[1] for e in resource[4]}
                for key, value in specs[name].configs.items():
                    assert actual[key] == value, (name, key)
    finally:
        admin.close()
