"""The benchmarks' port picker never hands out a port twice in one process: a port
picked early (the metrics ports of ``soak_stack.metrics_env``) is bound only later by
its process, so a later pick (``private_stack``'s broker ports) must not get it again."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _machine import free_ports  # noqa: E402
from soak_stack import metrics_env  # noqa: E402

pytestmark = pytest.mark.unit


def test_no_port_is_handed_out_twice() -> None:
    early = metrics_env(workers=4)
    picked = [int(v) for k, v in early.items() if k.endswith("_PORT")]
    picked += [int(p) for p in early["SOAK_WORKER_METRICS_PORTS"].split(",")]
    for _ in range(200):  # many picks of a stack's size, as the kernel recycles ports
        picked += free_ports(8)
    assert len(picked) == len(set(picked)) == 8 + 200 * 8


def test_the_ports_are_free_when_handed_out() -> None:
    ports = free_ports(5)
    socks = []
    try:
        for port in ports:
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", port))
    finally:
        for s in socks:
            s.close()
