"""What every benchmark shares: the machine line, free ports, a private stack on
them, the Debian tools a benchmark needs, message sizes, and one ``Error:`` line
(exit 1) instead of a traceback when something is missing or down.

Benchmarks run as scripts from this folder and import it as ``from _machine import ...``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stream_processor.runtime.settings import Topics
    from stream_processor.stack.settings import StackSettings

#: Each stack port and the variable that sets it (the TLS listener too: its
#: default, 8883, may be taken by a running stack).
STACK_PORTS = (
    "FACEGATE_MQTT_PORT",
    "FACEGATE_KAFKA_PORT",
    "FACEGATE_KAFKA_CONTROLLER_PORT",
    "FACEGATE_MQTT_TLS_PORT",
    "FACEGATE_POSTGRES_PORT",
)


def machine_line() -> str:
    """Cores, CPU model, memory, Python, Java and the load average right now."""
    cpu = "unknown cpu"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    java = "no java"
    if shutil.which("java"):
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
        java = (out.stderr.splitlines() or [java])[0]
    return (
        f"machine: {os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, "
        f"Python {platform.python_version()}, {java}, {load_line()}"
    )


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load avg {one:.2f} {five:.2f} {fifteen:.2f}"


def message_size_line(payloads: Sequence[bytes], what: str = "messages") -> str:
    """Mean, smallest and largest size of ``payloads`` (what the rates are per)."""
    if not payloads:
        return f"{what}: none"
    sizes = [len(p) for p in payloads]
    return (
        f"{what}: {sum(sizes) / len(sizes):.0f} B mean"
        f" ({min(sizes)}-{max(sizes)} B, {len(sizes):,} sampled)"
    )


#: Every port ``free_ports`` handed out in this process. A port is free when picked but
#: bound only later, by the process it is given to: until then the kernel may offer it
#: again, so an earlier pick (e.g. ``metrics_env``) and a later one (``private_stack``)
#: could get the same port.
_HANDED_OUT: set[int] = set()


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now, none handed out before by
    this process (all bound at once while they are picked)."""
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < n:
            if len(socks) > n + 1024:
                raise OSError(f"no {n} TCP ports left that were not handed out already")
            s = socket.socket()
            socks.append(s)  # held bound: the kernel offers another port next
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if port not in _HANDED_OUT:
                ports.append(port)
        _HANDED_OUT.update(ports)
        return ports
    finally:
        for s in socks:
            s.close()


def require_tools(tools: Mapping[str, str]) -> None:
    """Install the Debian package of each missing tool (``{binary: package}``)
    through the project's own set-up; fails with the command to run if it cannot."""
    from stream_processor.runtime.system import ensure_debian_packages

    ensure_debian_packages(dict(tools))


@dataclass(frozen=True)
class BenchStack:
    """A running private stack: its settings, state folder and the environment
    (``os.environ`` plus its ``FACEGATE_*``) for the processes a benchmark starts."""

    settings: StackSettings
    state: Path
    env: dict[str, str]


@contextmanager
def private_stack(
    name: str,
    env: Mapping[str, str] | None = None,
    topics: Topics | None = None,
    keep: bool = False,
    kafka_nodes: int = 1,
) -> Iterator[BenchStack]:
    """Mosquitto + Kafka (+ PostgreSQL if ``env`` says ``FACEGATE_STORE=postgres``)
    on free ports under a fresh state folder, never a running stack's; stopped
    (and the folder removed unless ``keep``) on the way out. ``kafka_nodes`` 3 runs
    a three-node KRaft cluster (topics RF 3, min.insync.replicas=2).

    The stack's ``FACEGATE_*`` variables and ``env`` are also put in
    ``os.environ``: settings objects this process builds read them.
    """
    from stream_processor.stack.settings import StackSettings
    from stream_processor.stack.stack import Stack

    state = Path(tempfile.mkdtemp(prefix=f"facegate-{name}-"))
    os.chmod(state, 0o755)  # noqa: S103 - brokers running as their own user read it
    ports = dict(zip(STACK_PORTS, map(str, free_ports(len(STACK_PORTS))), strict=True))
    # One run may start a single node and then a cluster: nothing of the last one stays.
    for name in ("FACEGATE_KAFKA_NODE_PORTS", "FACEGATE_KAFKA_BOOTSTRAP"):
        os.environ.pop(name, None)
    if kafka_nodes > 1:
        ports["FACEGATE_KAFKA_NODE_PORTS"] = json.dumps(free_ports(2 * (kafka_nodes - 1)))
    ports["FACEGATE_KAFKA_NODES"] = str(kafka_nodes)
    os.environ.update({"FACEGATE_STATE_DIR": str(state), **ports, **(env or {})})
    settings = StackSettings()
    # The processes a benchmark starts reach every node, not only the first.
    os.environ["FACEGATE_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    stack = Stack(settings, topics)
    try:
        started = time.monotonic()
        stack.up()
        print(f"stack up in {time.monotonic() - started:.1f}s (state {state})", flush=True)
        yield BenchStack(settings, state, dict(os.environ))
    finally:
        stack.down()
        if not keep:
            shutil.rmtree(state, ignore_errors=True)


def run(main: Callable[[], Any]) -> None:
    """Run a benchmark's ``main`` as the CLI runs a command: a project error, bad
    settings or a broker that is down (a tool that cannot be installed, ...) is one
    ``Error:`` line and its exit code; a bug keeps its traceback."""
    from stream_processor.cli.handler import EXIT_INTERNAL, translate

    try:
        main()
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:
        message, code = translate(exc)
        if code == EXIT_INTERNAL:
            raise
        print(f"Error: {message}", file=sys.stderr)
        raise SystemExit(code) from None
