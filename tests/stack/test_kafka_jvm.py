"""The Kafka node's JVM: a fixed, pre-touched heap (one node, and each node of a
cluster), small GC and compiler thread pools when several nodes share the cores."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_processor.stack.kafka import Kafka
from stream_processor.stack.kafka_jvm import (
    CLUSTER_NODE_HEAP_MB,
    SINGLE_HEAP_MB,
    heap_options,
    jvm_options,
)


def test_the_single_node_heap_is_fixed_and_pre_touched() -> None:
    opts = jvm_options(1)
    assert opts[:2] == [f"-Xms{SINGLE_HEAP_MB}m", f"-Xmx{SINGLE_HEAP_MB}m"]
    assert "-XX:+AlwaysPreTouch" in opts and "-XX:+UseG1GC" in opts
    # One JVM on the machine keeps the JVM's own thread sizing.
    assert not any(
        o.startswith(("-XX:ParallelGCThreads", "-XX:CICompilerCount", "-XX:TieredStopAtLevel"))
        for o in opts
    )


def test_a_cluster_node_has_a_smaller_fixed_heap_and_few_jvm_threads() -> None:
    opts = jvm_options(3)
    assert opts[:2] == [f"-Xms{CLUSTER_NODE_HEAP_MB}m", f"-Xmx{CLUSTER_NODE_HEAP_MB}m"]
    assert {"-XX:+AlwaysPreTouch", "-XX:ParallelGCThreads=1", "-XX:ConcGCThreads=1",
            "-XX:CICompilerCount=2", "-XX:TieredStopAtLevel=1"} <= set(opts)  # fmt: skip
    assert 3 * CLUSTER_NODE_HEAP_MB <= 2 * SINGLE_HEAP_MB


def test_the_operator_heap_replaces_the_sized_one() -> None:
    assert heap_options(3, "-Xms1g -Xmx2g") == ["-Xms1g", "-Xmx2g"]
    opts = jvm_options(1, "-Xmx2g")
    assert "-Xmx2g" in opts and not any(o.startswith("-Xms") for o in opts)


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


@pytest.mark.component
def test_the_running_node_holds_its_whole_heap_from_the_start(running_stack) -> None:  # type: ignore[no-untyped-def]
    pid = Kafka(running_stack.settings()).status().pid
    assert pid is not None
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert {f"-Xms{SINGLE_HEAP_MB}m".encode(), f"-Xmx{SINGLE_HEAP_MB}m".encode(),
            b"-XX:+AlwaysPreTouch"} <= set(argv)  # fmt: skip
    # Pre-touched: the heap is resident however little of it the node has used yet.
    assert _status_kib(pid, "VmRSS") >= SINGLE_HEAP_MB * 1024
