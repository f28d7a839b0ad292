"""Shared fixtures. Tests that need brokers use the real ones, started here by the
project's own stack code on free ports under a private state directory; a
broker that cannot be started fails the test session, it never skips.

Fixtures shared by more than one test folder live in ``tests/support/`` and are
registered here; a folder's own fixtures live in its ``conftest.py``. Test
modules import helpers from those modules, never from another test module.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from stream_processor.runtime.settings import Topics
    from stream_processor.stack.settings import StackSettings
    from stream_processor.stack.stack import Stack

REPO = Path(__file__).resolve().parent.parent
FACEGATE = str(Path(sys.executable).with_name("facegate"))

#: Whether the suite's stacks run Kafka with SASL/SCRAM and the role ACLs on.
#: FACEGATE_TEST_KAFKA_AUTH=0 gives an open Kafka, only for finding out whether a
#: failure is about auth: the suite is meant to pass with it on. See
#: tests/support/kafka.py for how a test's own client logs in.
SUITE_KAFKA_AUTH = os.environ.get("FACEGATE_TEST_KAFKA_AUTH", "1") != "0"

pytest_plugins = [
    "tests.support.audit",
    "tests.support.edge",
    "tests.support.processor",
    "tests.support.rights",
    "tests.support.store",
    "tests.support.web",
]


#: Ports handed out in this session: one picked but not yet bound by its process may be
#: offered again by the kernel, so a later pick would share it (as benchmarks/_machine).
_HANDED_OUT: set[int] = set()


def free_ports(n: int) -> list[int]:
    socks: list[socket.socket] = []
    ports: list[int] = []
    while len(ports) < n:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        if s.getsockname()[1] not in _HANDED_OUT:
            ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    _HANDED_OUT.update(ports)
    return ports


def make_state_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    return path


def stack_env(state_dir: Path, ports: list[int]) -> dict[str, str]:
    mqtt, kafka, controller = ports[:3]
    # The TLS listener needs its own free port too (never the default 8883 twice).
    tls = ports[3] if len(ports) > 3 else free_ports(1)[0]
    return {
        "FACEGATE_STATE_DIR": str(state_dir),
        "FACEGATE_MQTT_PORT": str(mqtt),
        "FACEGATE_KAFKA_PORT": str(kafka),
        "FACEGATE_KAFKA_CONTROLLER_PORT": str(controller),
        "FACEGATE_MQTT_TLS_PORT": str(tls),
    }


@dataclass
class StackHandle:
    """A running local stack (Mosquitto + Kafka) for the test session."""

    env: dict[str, str]
    state_dir: Path

    @property
    def kafka_auth(self) -> bool:
        return self.env.get("FACEGATE_KAFKA_AUTH", "false") == "true"

    def settings(self) -> StackSettings:
        from stream_processor.stack.settings import StackSettings

        return StackSettings(
            state_dir=self.state_dir,
            mqtt_port=int(self.env["FACEGATE_MQTT_PORT"]),
            kafka_port=int(self.env["FACEGATE_KAFKA_PORT"]),
            kafka_controller_port=int(self.env["FACEGATE_KAFKA_CONTROLLER_PORT"]),
            mqtt_tls_port=int(self.env.get("FACEGATE_MQTT_TLS_PORT", "0")),
            kafka_auth=self.kafka_auth,
        )

    def stack(self) -> Stack:
        from stream_processor.stack.stack import Stack

        return Stack(self.settings())


#: How much of each broker log a failed start shows.
BROKER_LOG_LINES = 40


def broker_log_tails(state_dir: Path, lines: int = BROKER_LOG_LINES) -> str:
    """The last ``lines`` of each broker's own log under a stack's state dir (Kafka's
    server and stdout logs, Mosquitto's, PostgreSQL's; not Kafka's data segments)."""
    parts = []
    for path in sorted([*state_dir.glob("*/*.log"), *state_dir.glob("*/logs/*.log")]):
        text = path.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {path} ---\n" + "\n".join(text))
    return "\n".join(parts) or f"(no broker log under {state_dir})"


@contextmanager
def broker_logs_on_failure(state_dir: Path) -> Iterator[None]:
    """On a failure inside (a stack that did not start), print the brokers' log tails:
    the state dir is removed at the end of the fixture, and with it the only record of
    why, e.g., a Kafka node exited during start-up."""
    try:
        yield
    except BaseException:
        print(broker_log_tails(state_dir), file=sys.stderr)
        raise


@pytest.fixture(scope="session")
def running_stack() -> Iterator[StackHandle]:
    from tests.support.kafka import forget, register

    state = make_state_dir("facegate-test-")
    env = stack_env(state, free_ports(3))
    env["FACEGATE_KAFKA_AUTH"] = "true" if SUITE_KAFKA_AUTH else "false"
    handle = StackHandle(env=env, state_dir=state)
    stack: Stack = handle.stack()
    try:
        with broker_logs_on_failure(state):
            stack.up()
        register(handle.settings())
        yield handle
    finally:
        forget(handle.settings())
        stack.down()
        shutil.rmtree(state, ignore_errors=True)


@dataclass
class Pipeline:
    """Names that isolate one test's pipeline from the others on the shared stack."""

    stack: StackHandle
    tag: str
    tmp: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: Added to every process's environment (e.g. the store a worker writes to).
    extra_env: dict[str, str] = field(default_factory=dict)
    #: The ACLs granted to this pipeline's names (revoked when it stops).
    grants: list[Any] = field(default_factory=list)
    #: Bridge instances run or prepared here: their MQTT sessions end with ``stop_all``.
    bridge_instances: set[str] = field(default_factory=set)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.stack.env,
            "FACEGATE_TOPIC_RAW": f"t.{self.tag}.raw",
            "FACEGATE_TOPIC_DLQ": f"t.{self.tag}.dlq",
            "FACEGATE_TOPIC_RAW_PARTITIONS": "3",
            "FACEGATE_BRIDGE_SHARE_GROUP": f"bridge-{self.tag}",
            "FACEGATE_BRIDGE_INSTANCE": f"{self.tag}-1",
            "FACEGATE_PROCESSOR_APP_ID": f"proc-{self.tag}",
            "FACEGATE_PROCESSOR_STORE_PATH": str(self.store_path),
            "FACEGATE_PROCESSOR_BATCH_WITHIN_S": "0.1",
            "FACEGATE_TOPIC_CONSENT": f"t.{self.tag}.consent",
            "FACEGATE_TOPIC_POLICIES": f"t.{self.tag}.policies",
            "FACEGATE_TOPIC_COMMANDS": f"t.{self.tag}.commands",
            "FACEGATE_TOPIC_ACKS": f"t.{self.tag}.acks",
            "FACEGATE_TOPIC_DEVICE_STATUS": f"t.{self.tag}.status",
            **self.extra_env,
        }

    @property
    def store_path(self) -> Path:
        return self.tmp / "events.sqlite"

    def topics(self) -> Topics:
        """The pipeline's topics, with what a test put in ``extra_env`` (e.g. its own
        erasure topic) as its processes will see them."""
        from stream_processor.runtime.settings import Topics

        names = dict(
            raw=f"t.{self.tag}.raw",
            dlq=f"t.{self.tag}.dlq",
            raw_partitions=3,
            consent=f"t.{self.tag}.consent",
            policies=f"t.{self.tag}.policies",
            commands=f"t.{self.tag}.commands",
            acks=f"t.{self.tag}.acks",
            device_status=f"t.{self.tag}.status",
        )
        for name in Topics.model_fields:
            value = self.extra_env.get(f"FACEGATE_TOPIC_{name.upper()}")
            if value is not None:
                names[name] = value
        return Topics(**names)  # type: ignore[arg-type]

    @property
    def processor_app(self) -> str:
        return self.env["FACEGATE_PROCESSOR_APP_ID"]

    @property
    def erasure_app(self) -> str:
        return self.env.get("FACEGATE_ERASURE_APP_ID") or f"{self.processor_app}-erasure"

    def create_topics(self) -> None:
        """Create the pipeline's topics and grant its processes' roles the production
        ACLs on them (call ``grant`` again after changing the app ids in extra_env)."""
        from tests.support.kafka import create_topics

        create_topics(self.stack, self.topics())
        self.grant()

    def grant(self) -> None:
        from tests.support.kafka import grant_pipeline

        env = self.env
        self.grants += grant_pipeline(
            self.stack, self.topics(), self.processor_app, self.erasure_app,
            env["FACEGATE_BRIDGE_SHARE_GROUP"],
        )  # fmt: skip

    def revoke(self) -> None:
        from tests.support.kafka import revoke

        revoke(self.stack, self.grants, self.tag)
        self.grants = []

    def start(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        if args[:1] == ("bridge",):
            self.bridge_instances.add(self.env["FACEGATE_BRIDGE_INSTANCE"])
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [FACEGATE, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        """Stop every process, then end the bridges' durable MQTT sessions: left behind,
        the broker would queue for them for the rest of the suite."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.end_bridge_sessions()

    def end_bridge_sessions(self) -> list[str]:
        """End the sessions of ``bridge_instances`` (their processes must be stopped);
        returns the client ids whose session could not be ended (broker down: a test that
        stopped it has its own failure to report, so teardown does not raise)."""
        from stream_processor.bridge.settings import BridgeSettings
        from stream_processor.runtime.accounts import AccountBook
        from stream_processor.runtime.layout import StateLayout
        from tests.support.mqtt_sessions import SessionProbeError, end_session

        if not self.bridge_instances:
            return []  # most pipelines run no bridge: nothing to read or connect to
        env = self.env
        creds = AccountBook(StateLayout(Path(env["FACEGATE_STATE_DIR"]))).bridge_credentials()
        host, port = self.stack.settings().host, int(env["FACEGATE_MQTT_PORT"])
        failed = []
        for instance in sorted(self.bridge_instances):
            # Not validated from the environment: a test may have left odd FACEGATE_BRIDGE_*.
            client_id = BridgeSettings.model_construct(instance=instance).client_id
            try:
                end_session(host, port, creds, client_id, timeout_s=5)
            except SessionProbeError:
                failed.append(client_id)
        self.bridge_instances.clear()
        return failed


@pytest.fixture
def pipeline(running_stack: StackHandle, tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(stack=running_stack, tag=uuid.uuid4().hex[:10], tmp=tmp_path)
    p.create_topics()
    try:
        yield p
    finally:
        p.stop_all()
        p.revoke()


def wait_for(
    check: Callable[[], bool],
    timeout_s: float,
    what: str,
    interval_s: float = 0.2,
    seen: Callable[[], object] | None = None,
) -> None:
    """Poll ``check`` until it holds, for ``timeout_s``; a timeout names ``what`` and,
    with ``seen``, what it shows at that moment (e.g. counts so far, a process's log
    tail), so that the CI log alone says how far it got."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    if check():  # the state may have come during the last sleep
        return
    message = f"timed out after {timeout_s}s waiting for {what}"
    if seen is not None:
        try:
            message += f"; last seen: {seen()}"
        except Exception as exc:  # noqa: BLE001 - the timeout is the failure to report
            message += f"; reading what was seen failed: {exc!r}"
    raise AssertionError(message)


def prepare_bridge_session(p: Pipeline) -> None:
    """Create the pipeline's bridge session first, as 'stack up' does for the default one."""
    from stream_processor.bridge.session import ensure_bridge_session
    from stream_processor.bridge.settings import BridgeSettings
    from stream_processor.runtime.accounts import AccountBook
    from stream_processor.runtime.layout import StateLayout

    s = p.stack.settings()
    settings = BridgeSettings(share_group=f"bridge-{p.tag}", instance=f"{p.tag}-1")
    creds = AccountBook(StateLayout(s.state_dir)).bridge_credentials()
    ensure_bridge_session(s.host, s.mqtt_port, creds, settings)
    p.bridge_instances.add(settings.instance)
