"""Apache Kafka 4.x KRaft nodes (combined broker+controller), from Maven Central jars
(deploy/kafka/pom.xml). One node is the default; ``cluster.py`` runs several."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

from stream_processor.errors import StackError
from stream_processor.runtime.kafka_auth import ensure_passwords
from stream_processor.runtime.layout import StateLayout
from stream_processor.stack import procs
from stream_processor.stack.broker_config import node_properties
from stream_processor.stack.kafka_auth import scram_format_args, with_auth
from stream_processor.stack.kafka_jvm import jvm_options
from stream_processor.stack.settings import REPO_ROOT, StackSettings

MARKER = "kafka.Kafka"
POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J2 = REPO_ROOT / "deploy" / "kafka" / "log4j2.properties"
READY_LINE = b"Kafka Server started"


def ensure_jars(libs: Path) -> Path:
    """Resolve the broker's jars with Maven once; later calls are a directory check."""
    if libs.is_dir() and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven is needed to fetch Kafka's jars: apt-get install -y maven")
    argv = [
        mvn, "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={libs}",
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(
            f"resolving Kafka jars failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return libs


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError("Java 17+ is needed for Kafka: apt-get install -y openjdk-17-jre-headless")
    return java


class Kafka:
    """One KRaft node. Node 1 keeps the single-node layout (``<state>/kafka``); node N of
    a cluster lives in ``<state>/kafka-N`` and shares node 1's cluster id."""

    def __init__(self, settings: StackSettings, node: int = 1) -> None:
        self._s = settings
        self.node = node
        self.port, self.controller_port = settings.kafka_node_addresses()[node - 1]
        first = StateLayout(settings.state_dir).kafka
        self._dir = first if node == 1 else first.with_name(f"kafka-{node}")
        self.props = self._dir / "server.properties"
        self.data = self._dir / "data"
        self.logs = self._dir / "logs"
        self.pidfile = self._dir / "kafka.pid"
        self.stdout_log = self.logs / "stdout.log"
        self.server_log = self.logs / "server.log"
        self.cluster_id_file = first / "cluster.id"

    def properties_text(self) -> str:
        lines = node_properties(self._s, self.node, self.data)
        if self._s.kafka_auth:
            lines = with_auth(lines, ensure_passwords(self._s.state_dir))
        return "\n".join([*lines, ""])

    def _cluster_id(self) -> str:
        if not self.cluster_id_file.exists():
            raw = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            self.cluster_id_file.write_text(raw + "\n")
        return self.cluster_id_file.read_text().strip()

    def _classpath(self) -> str:
        return f"{ensure_jars(self._s.kafka_libs)}/*"

    def prepare(self) -> None:
        for path in (self._dir, self.data, self.logs):
            path.mkdir(parents=True, exist_ok=True)
        self.props.write_text(self.properties_text())
        if (self.data / "meta.properties").exists():
            self._check_users_exist()
            return
        argv = [
            _java(), "-cp", self._classpath(), f"-Dlog4j2.configurationFile={LOG4J2}",
            f"-Dkafka.logs.dir={self.logs}", "kafka.tools.StorageTool", "format",
            f"--cluster-id={self._cluster_id()}",  # an id may start with "-"
            "-c", str(self.props), "--ignore-formatted",
            # One node elects itself; a cluster's voters are fixed in the properties.
            *(["--standalone"] if self._s.kafka_nodes == 1 else []),
            *self._scram_users(),
        ]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"kafka storage format failed:\n{result.stdout}{result.stderr}")
        if self._s.kafka_auth:
            self._users_marker.write_text("SCRAM users created at format\n")

    @property
    def _users_marker(self) -> Path:
        return self._dir / "scram-users"

    @property
    def formatted_without_users(self) -> bool:
        """Formatted with auth off: it has no SCRAM users, so auth cannot be turned on
        in place."""
        return (self.data / "meta.properties").exists() and not self._users_marker.exists()

    def _check_users_exist(self) -> None:
        if self._s.kafka_auth and not self._users_marker.exists():
            raise StackError(
                f"kafka under {self._dir} was formatted with FACEGATE_KAFKA_AUTH off, so it"
                " has no SCRAM users: turn auth on with a new FACEGATE_STATE_DIR (or remove"
                f" {self.data}, losing its topics)"
            )

    def _scram_users(self) -> list[str]:
        """SCRAM users are created at format only: a node formatted with auth off has none."""
        if not self._s.kafka_auth:
            return []
        return scram_format_args(ensure_passwords(self._s.state_dir))

    def status(self) -> procs.BrokerStatus:
        return procs.broker_status(self.pidfile, MARKER, self._s.host, self.port)

    def up(self) -> int:
        """Start the node and wait until it serves; a node of a cluster needs a quorum
        of voters running to get there (see ``KafkaCluster.up``)."""
        pid, offset = self.start()
        self.wait_ready(pid, offset)
        return pid

    def start(self) -> tuple[int, int]:
        """Start the node if it is not running; returns its pid and the server log's
        offset from which the readiness line is looked for."""
        self.prepare()
        pid = procs.running_pid(self.pidfile, MARKER)
        if pid is not None:
            return pid, -1
        offset = self.server_log.stat().st_size if self.server_log.exists() else 0
        argv = [
            _java(), *jvm_options(self._s.kafka_nodes, self._s.kafka_heap),
            f"-Dlog4j2.configurationFile={LOG4J2}",
            f"-Dkafka.logs.dir={self.logs}", "-cp", self._classpath(), MARKER, str(self.props),
        ]  # fmt: skip
        return procs.start_detached(argv, self.pidfile, self.stdout_log), offset

    def wait_ready(self, pid: int, offset: int) -> None:
        """Wait for the readiness line logged after ``offset`` (-1: it was running)."""
        if offset < 0:
            return
        procs.wait_until(
            lambda: self._started_since(offset) and procs.port_open(self._s.host, self.port),
            self._s.start_timeout_s,
            f"kafka node {self.node}",
            alive=lambda: procs.pid_alive(pid, MARKER),
            log_hint=self.server_log,
        )

    def _started_since(self, offset: int) -> bool:
        try:
            with open(self.server_log, "rb") as fh:
                fh.seek(offset)
                return READY_LINE in fh.read()
        except FileNotFoundError:
            return False

    def down(self) -> bool:
        # SIGTERM is a controlled shutdown; give it time to close the log cleanly.
        return procs.stop_pid(self.pidfile, MARKER, timeout_s=60)

    def kill(self) -> None:
        pid = procs.running_pid(self.pidfile, MARKER)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            procs.wait_until(lambda: not procs.pid_alive(pid, MARKER), 10, "kafka kill")
