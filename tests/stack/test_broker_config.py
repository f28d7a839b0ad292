"""Generated broker settings per node and cluster size (no broker started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_processor.errors import StackError
from stream_processor.stack.broker_config import node_properties, replication_for
from stream_processor.stack.cluster import KafkaCluster
from stream_processor.stack.settings import StackSettings


def _settings(tmp_path: Path, nodes: int, **kw: object) -> StackSettings:
    return StackSettings(state_dir=tmp_path, mqtt_port=20000, mqtt_tls_port=0,
                         kafka_port=21000, kafka_controller_port=21001,
                         kafka_nodes=nodes, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_replication_follows_the_cluster_size() -> None:
    assert replication_for(1) == (1, 1)
    assert replication_for(2) == (2, 1)
    assert replication_for(3) == (3, 2)
    assert replication_for(5) == (3, 2)


def test_three_nodes_have_their_own_ports_state_and_one_voter_set(tmp_path: Path) -> None:
    s = _settings(tmp_path, 3, kafka_node_ports=[21010, 21011, 21020, 21021])
    assert s.kafka_bootstrap == "127.0.0.1:21000,127.0.0.1:21010,127.0.0.1:21020"
    props = [node_properties(s, n, tmp_path / f"d{n}") for n in (1, 2, 3)]
    voters = "controller.quorum.voters=1@127.0.0.1:21001,2@127.0.0.1:21011,3@127.0.0.1:21021"
    assert all(voters in p for p in props)
    assert [next(x for x in p if x.startswith("node.id=")) for p in props] == [
        "node.id=1", "node.id=2", "node.id=3",
    ]  # fmt: skip
    assert "listeners=PLAINTEXT://127.0.0.1:21020,CONTROLLER://127.0.0.1:21021" in props[2]
    assert all("min.insync.replicas=2" in p and "unclean.leader.election.enable=false" in p
               for p in props)  # fmt: skip
    dirs = {n.data for n in KafkaCluster(s).nodes}
    assert len(dirs) == 3


def test_the_single_node_stays_the_default(tmp_path: Path) -> None:
    s = StackSettings(state_dir=tmp_path, kafka_port=21000, kafka_controller_port=21001,
                      mqtt_port=20000, mqtt_tls_port=0)  # fmt: skip
    assert s.kafka_nodes == 1 and s.kafka_bootstrap == "127.0.0.1:21000"
    props = node_properties(s, 1, tmp_path)
    assert "min.insync.replicas=1" in props and not any("voters" in p for p in props)


def test_ports_of_the_other_nodes_must_be_given_in_pairs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kafka_node_ports needs 4 ports"):
        _settings(tmp_path, 3, kafka_node_ports=[21010, 21011])
    with pytest.raises(ValueError, match="must differ"):
        _settings(tmp_path, 3, kafka_node_ports=[21010, 21011, 21010, 21021])


def test_a_state_dir_of_another_cluster_size_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "cluster.nodes").write_text("1\n")
    with pytest.raises(StackError, match="holds a 1-node Kafka, not 3"):
        KafkaCluster(_settings(tmp_path, 3)).up()
    (tmp_path / "kafka" / "cluster.nodes").unlink()
    (tmp_path / "kafka" / "data").mkdir()
    (tmp_path / "kafka" / "data" / "meta.properties").write_text("node.id=1\n")
    with pytest.raises(StackError, match="holds a single-node Kafka, not 3 nodes"):
        KafkaCluster(_settings(tmp_path, 3)).up()


def test_nodes_of_a_cluster_run_small_thread_pools_the_single_node_the_defaults(
    tmp_path: Path,
) -> None:
    three = _settings(tmp_path, 3)
    for n in (1, 2, 3):
        props = node_properties(three, n, tmp_path / f"d{n}")
        assert {"num.io.threads=2", "num.network.threads=2", "num.replica.fetchers=1",
                "background.threads=2", "log.cleaner.threads=1"} <= set(props)  # fmt: skip
    single = node_properties(_settings(tmp_path, 1), 1, tmp_path)
    assert not any(p.startswith(("num.io.threads", "num.network.threads")) for p in single)
