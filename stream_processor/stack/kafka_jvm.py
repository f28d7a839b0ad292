"""The JVM options of a local Kafka node, by cluster size.

The heap is fixed (``-Xms`` = ``-Xmx``) and touched at start (``AlwaysPreTouch``): the
node takes its memory up front and its resident size stays flat, so a long run shows a
leak as growth instead of hiding it behind a heap that is still being committed, and a
node that cannot get its memory fails at start, not hours later. One node gets 768 MiB:
the one-hour soak at ~8,000 events/s grew the old 256-768 MiB heap to ~570 MiB resident
(heap and the JVM's own memory together), so 768 MiB keeps the proven ceiling with room
for the young generation; Kafka's data lives in the page cache, not the heap.

Several nodes on one machine share its cores: each JVM otherwise sizes its garbage
collector and JIT compiler threads for every core, and three of them preempt each other
and the clients. A node of a cluster gets one GC thread of each kind, two compiler
threads, a smaller heap (the heap holds requests and metadata, not the data), and only
the C1 compiler: three JVMs compiling with C2 at once kept two cores busy for the first
minutes, when the stack's tests and benchmarks run; measured on two shared cores, a
three-node drain went from ~10,000 to 26,000-35,000 events/s and the live p50 at
5,000/s from ~2 s to 31-166 ms (docs/benchmarks.md). C1 code is slower at its peak,
which a cluster of one machine's nodes does not reach anyway; a real deployment runs
one broker per host, with its own JVM options.
"""

from __future__ import annotations

#: Fixed heap of the single node and of each node of a cluster, MiB.
SINGLE_HEAP_MB, CLUSTER_NODE_HEAP_MB = 768, 384

_COMMON = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+AlwaysPreTouch")
_SHARED_CORES = (
    "-XX:ParallelGCThreads=1",
    "-XX:ConcGCThreads=1",
    "-XX:CICompilerCount=2",
    "-XX:TieredStopAtLevel=1",
)


def heap_options(nodes: int, override: str | None = None) -> list[str]:
    """``-Xms``/``-Xmx`` for a node of a cluster of ``nodes``; ``override`` (the
    operator's FACEGATE_KAFKA_HEAP) replaces them as given."""
    if override is not None:
        return override.split()
    mb = SINGLE_HEAP_MB if nodes == 1 else CLUSTER_NODE_HEAP_MB
    return [f"-Xms{mb}m", f"-Xmx{mb}m"]


def jvm_options(nodes: int, heap_override: str | None = None) -> list[str]:
    """Every JVM option before the class path, for a node of a cluster of ``nodes``."""
    cores = list(_SHARED_CORES) if nodes > 1 else []
    return [*heap_options(nodes, heap_override), *_COMMON, *cores, "-Djava.awt.headless=true"]
