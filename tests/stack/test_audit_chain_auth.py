"""The multi-host audit chain with Kafka authentication on: the writer logs in as the
audit role (group, transactional id, chain writes under the ACL plan), an office
command's appends come back chained, and a gate's bridge login cannot forge a fact."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaError

from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings, Topics
from tests.conftest import FACEGATE
from tests.stack.conftest import run_cli, secured_env

pytestmark = pytest.mark.component

APPEND = """
from stream_processor.audit import record
from stream_processor.audit.wiring import open_audit
from stream_processor.runtime.settings import BrokerSettings
a = open_audit(BrokerSettings().state_dir)
for i in range(3):
    print(record.retention_sweep(a.log, tenant="acme", site="north", deleted={"face_match": i},
                                 cutoff_ms=i, policy_version=1).entry.seq, flush=True)
a.close()
"""


def test_the_writer_and_an_office_appender_work_under_the_acl_plan(
    secured: BrokerSettings,
) -> None:
    env = {**os.environ, **secured_env(secured), "FACEGATE_AUDIT_MODE": "topic",
           "FACEGATE_AUDIT_CHAIN_WAIT_S": "60"}  # fmt: skip
    writer = subprocess.Popen([FACEGATE, "audit", "writer"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        done = subprocess.run([sys.executable, "-c", APPEND], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        seqs = [int(x) for x in done.stdout.split()]
        assert len(seqs) == 3 and seqs == list(range(seqs[0], seqs[0] + 3))
        verdict = run_cli(env, "audit", "verify")
        assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    finally:
        writer.terminate()
        out, _ = writer.communicate(timeout=60)
    assert b"audit writer stopped: 3 chained" in out, out

    # A gate's bridge login may not write facts (nor the chain).
    bridge = KafkaProducer(bootstrap_servers=secured.kafka_bootstrap, acks="all",
                           max_block_ms=10_000, **kafka_python_auth(secured, Role.BRIDGE))
    try:
        for topic in (Topics().audit_facts, Topics().audit_chain):
            with pytest.raises(KafkaError):
                bridge.send(topic, b"{}").get(timeout=15)
    finally:
        bridge.close()
