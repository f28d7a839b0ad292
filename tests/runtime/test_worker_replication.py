"""The topics the Faust workers create (table changelogs, the assignor's leader topic)
are replicated as the stack replicates its own: from the cluster's size, RF 3 and
min.insync.replicas=2 from three brokers up, RF 1 on a single node. Units; the
three-node check on real brokers is in tests/reliability/test_pipeline_on_three_brokers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from stream_processor.errors import ConfigError
from stream_processor.runtime.settings import BrokerSettings, Topics, kafka_nodes_file
from stream_processor.runtime.topics import min_insync, replication_for
from stream_processor.runtime.workers import worker_app_settings, worker_replication

pytestmark = pytest.mark.unit


def _broker(state: Path, **kw: object) -> BrokerSettings:
    from stream_processor.runtime.kafka_auth import ensure_passwords

    ensure_passwords(state)  # auth is on by default: the logins a 'stack up' makes
    return BrokerSettings(state_dir=state, **kw)  # type: ignore[arg-type]


@given(st.integers(min_value=1, max_value=1000))
def test_replication_never_asks_more_replicas_than_brokers(nodes: int) -> None:
    rf, isr = replication_for(nodes)
    assert rf == min(nodes, 3) <= nodes
    # One broker may be lost without refusing writes; a second loss refuses them.
    assert isr == (2 if nodes >= 3 else 1) == int(min_insync(rf))


@pytest.mark.parametrize(("nodes", "rf", "isr"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)])
def test_worker_topics_follow_the_cluster_size(
    tmp_path: Path, nodes: int, rf: int, isr: int
) -> None:
    stack = _broker(tmp_path, kafka_nodes=nodes)
    assert worker_replication(stack) == (rf, isr)
    conf = worker_app_settings(stack, tmp_path / "w", 1.0)
    assert conf["topic_replication_factor"] == rf


def test_the_cluster_size_comes_from_the_setting_else_the_local_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FACEGATE_KAFKA_NODES", raising=False)
    assert _broker(tmp_path).kafka_nodes == 1  # no stack here: a single node
    kafka_nodes_file(tmp_path).parent.mkdir(parents=True)
    kafka_nodes_file(tmp_path).write_text("3\n")  # as 'stack up --kafka-nodes 3' leaves it
    assert _broker(tmp_path).kafka_nodes == 3
    monkeypatch.setenv("FACEGATE_KAFKA_NODES", "1")  # stated for a remote cluster: wins
    assert _broker(tmp_path).kafka_nodes == 1
    monkeypatch.delenv("FACEGATE_KAFKA_NODES")
    for junk in ("", "0", "²", "-3", "3x", "\x00"):
        kafka_nodes_file(tmp_path).write_text(junk)
        assert _broker(tmp_path).kafka_nodes == 1, repr(junk)


def test_the_stack_keeps_its_own_node_setting(tmp_path: Path) -> None:
    from stream_processor.stack.settings import StackSettings

    kafka_nodes_file(tmp_path).parent.mkdir(parents=True)
    kafka_nodes_file(tmp_path).write_text("3\n")
    # 'stack up' checks the recorded size against the one asked for: it must not read it.
    assert StackSettings(state_dir=tmp_path).kafka_nodes == 1


@pytest.mark.parametrize("bad", [-1, 1001])
def test_a_cluster_size_out_of_bounds_is_refused(tmp_path: Path, bad: int) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="kafka_nodes"):
        _broker(tmp_path, kafka_nodes=bad)


def test_the_processor_tables_changelogs_on_three_brokers(tmp_path: Path) -> None:
    """The built app: its tables' changelogs take the app's replication factor (Faust
    asks ``topic_replication_factor`` when a topic's own ``replicas`` is unset) and a
    min.insync.replicas of 2; so does the assignor's leader topic."""
    from stream_processor.processor.app import create_app
    from stream_processor.processor.settings import ProcessorSettings

    stack = _broker(tmp_path, kafka_nodes=3)
    app = create_app(
        stack, ProcessorSettings(), Topics(), _no_store, registry=CollectorRegistry(),
        audit_factory=_no_audit,
    )  # fmt: skip
    assert app.conf.topic_replication_factor == 3
    for name in ("consent", "policies"):
        changelog = app.tables[name].changelog_topic
        assert changelog.replicas is None  # → the app's factor at declare time
        assert changelog.config is not None
        assert changelog.config["min.insync.replicas"] == "2"
        assert changelog.config["cleanup.policy"] == "compact"
    leader = app._leader_assignor._leader_topic  # type: ignore[attr-defined]
    assert leader.replicas == 3


def test_the_erasure_worker_app_on_three_brokers(tmp_path: Path) -> None:
    from stream_processor.erasure.app import create_app
    from stream_processor.erasure.metrics import ErasureMetrics
    from stream_processor.erasure.settings import ErasureSettings
    from stream_processor.quarantine import ConsumerMetrics

    registry = CollectorRegistry()
    app, _ = create_app(
        _broker(tmp_path, kafka_nodes=3), ErasureSettings(), Topics(), "t-erasure",
        _no_deps, ErasureMetrics(registry), ConsumerMetrics(registry),
    )  # fmt: skip
    assert app.conf.topic_replication_factor == 3
    assert app._leader_assignor._leader_topic.replicas == 3  # type: ignore[attr-defined]


def test_a_single_node_keeps_one_replica(tmp_path: Path) -> None:
    from stream_processor.processor.app import create_app
    from stream_processor.processor.settings import ProcessorSettings

    app = create_app(
        _broker(tmp_path, kafka_nodes=1), ProcessorSettings(), Topics(), _no_store,
        registry=CollectorRegistry(), audit_factory=_no_audit,
    )  # fmt: skip
    assert app.conf.topic_replication_factor == 1
    config = app.tables["consent"].changelog_topic.config
    assert config is not None and config["min.insync.replicas"] == "1"


def _no_store():  # type: ignore[no-untyped-def]
    raise ConfigError("no store in a unit test")


def _no_audit():  # type: ignore[no-untyped-def]
    raise ConfigError("no audit log in a unit test")


def _no_deps():  # type: ignore[no-untyped-def]
    raise ConfigError("no dependencies in a unit test")


@pytest.mark.parametrize(
    "path",
    ["deploy/systemd/facegate.env", "deploy/compose/facegate.env", "deploy/k8s/60-facegate.yaml"],
)
def test_the_three_broker_deployments_tell_their_processes_the_size(path: str) -> None:
    """Without it a worker there would make its changelogs on one replica."""
    import re

    text = (Path(__file__).resolve().parents[2] / path).read_text()
    assert re.search(r"^\s*FACEGATE_KAFKA_NODES(=|: )'?3'?$", text, re.M), path
    bootstrap = re.search(r"^\s*FACEGATE_KAFKA_BOOTSTRAP(?:=|: )(\S+)$", text, re.M)
    assert bootstrap, path
    if "," in bootstrap.group(1):  # a list names every broker (k8s: one service name)
        assert len(bootstrap.group(1).split(",")) == 3
