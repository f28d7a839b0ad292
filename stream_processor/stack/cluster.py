"""The local Kafka: one KRaft node, or several on this machine (own ports and state,
each broker and controller, a fixed voter set)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from stream_processor.errors import StackError
from stream_processor.runtime.settings import kafka_auth_file
from stream_processor.stack.kafka import Kafka
from stream_processor.stack.procs import BrokerStatus
from stream_processor.stack.settings import StackSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterStatus:
    nodes: tuple[BrokerStatus, ...]

    @property
    def running(self) -> bool:
        return all(n.running for n in self.nodes)

    @property
    def pid(self) -> int | None:
        """Node 1's pid (the single node's)."""
        return self.nodes[0].pid

    @property
    def listening(self) -> bool:
        return all(n.listening for n in self.nodes)


class KafkaCluster:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.nodes = [Kafka(settings, node) for node in range(1, settings.kafka_nodes + 1)]
        self._size_file = self.nodes[0].cluster_id_file.with_name("cluster.nodes")

    def node(self, node_id: int) -> Kafka:
        return self.nodes[node_id - 1]

    def _check_size(self) -> None:
        """A state dir formatted for one voter set cannot join another: say so."""
        want = str(self.settings.kafka_nodes)
        if self._size_file.exists():
            have = self._size_file.read_text().strip()
            if have != want:
                raise StackError(
                    f"the state dir holds a {have}-node Kafka, not {want}: start it with"
                    f" FACEGATE_KAFKA_NODES={have}, or stop it and remove"
                    f" {self._size_file.parent.parent}/kafka* to begin anew"
                )
        elif (self.nodes[0].data / "meta.properties").exists() and want != "1":
            raise StackError(
                f"the state dir holds a single-node Kafka, not {want} nodes: stop it and"
                f" remove {self._size_file.parent} to begin anew"
            )
        else:
            self._size_file.parent.mkdir(parents=True, exist_ok=True)
            self._size_file.write_text(want + "\n")

    def _record_auth(self) -> None:
        """Record the auth mode the nodes are (or were) formatted with, so the settings
        of every later process default to it (``BrokerSettings.kafka_auth``). The
        settings already agree with a formatted node's mode (they refuse to contradict
        it), so writing them is right for a new format and an old one alike."""
        state = self.settings.state_dir
        path = kafka_auth_file(state)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("on\n" if self.settings.kafka_auth else "off\n")
        if not self.settings.kafka_auth:
            log.warning(
                "Kafka under %s runs without authentication (FACEGATE_KAFKA_AUTH"
                " false, or formatted before it was on by default): any local process may"
                " read and write its topics; for logins and ACLs use a new FACEGATE_STATE_DIR",
                state,
            )

    def up(self) -> list[int]:
        """Start every node, then wait for each: a node of a cluster is ready only once a
        quorum of voters runs, so they cannot be started one after the other."""
        self._check_size()
        self._record_auth()
        started = [(n, *n.start()) for n in self.nodes]
        for node, pid, offset in started:
            node.wait_ready(pid, offset)
        return [pid for _, pid, _ in started]

    def down(self) -> bool:
        # All at once: a node stopped after the others lost its quorum would wait out
        # its controlled shutdown's timeout.
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            return any(list(pool.map(lambda n: n.down(), self.nodes)))

    def status(self) -> ClusterStatus:
        return ClusterStatus(tuple(n.status() for n in self.nodes))
