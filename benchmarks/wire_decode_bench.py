"""Wire decoder benchmark: CPU per gate event of the bridge's strict decode, with and
without the refusals of ``edge_agent.wire.decoding`` (bounds, duplicate keys, ...).

``strict`` is the memoised msgspec decode alone (``wire.strict.StrictDecoder``, what
``decode_event`` was before the refusals); ``decode_event`` adds the duplicate-key
check and the reason mapping; ``check_message`` is the bridge's whole validation
(topic, size, identity, clock skew). Events come from a synthetic gate (200
residents, the kind mix of the demo), each with its own event id and sequence
number. The cases run in turn, ``--repeat`` rounds of each (interleaved, so a busy
neighbour slows them alike), and the best round of each is printed, in µs per event.

    .venv/bin/python benchmarks/wire_decode_bench.py --events 5000 --repeat 60
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from _machine import load_line, machine_line, message_size_line, run

from edge_agent.pseudonym import SiteSecret
from edge_agent.simulate import SyntheticGate
from edge_agent.wire import GateEvent, decode_event, encode_event
from edge_agent.wire.strict import StrictDecoder
from edge_agent.wire.topics import DeviceIdentity, event_topic
from stream_processor.bridge.validate import Limits, check_message


def payloads(n: int) -> tuple[str, list[bytes]]:
    ident = DeviceIdentity("acme", "site-1", "gate-1", "cam-1")
    gate = SyntheticGate(ident, SiteSecret("acme", "site-1", b"s" * 32), residents=200, seed=1)
    return event_topic(ident), [encode_event(gate.maker()(i)) for i in range(n)]


def best_us(cases: dict[str, Callable[[], object]], n: int, repeat: int) -> dict[str, float]:
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeat):
        for name, case in cases.items():
            t0 = time.perf_counter()
            case()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: t / n * 1e6 for name, t in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=60)
    args = ap.parse_args()
    topic, data = payloads(args.events)
    strict = StrictDecoder(GateEvent, unique=("event_id", "subject"))
    limits = Limits(max_bytes=4096, max_skew_ms=300_000, max_age_ms=7 * 86_400_000)
    now_ms = int(time.time() * 1000)
    cases: dict[str, Callable[[], object]] = {
        "strict (before)": lambda: [strict.decode(p) for p in data],
        "decode_event": lambda: [decode_event(p) for p in data],
        "check_message": lambda: [check_message(topic, p, limits, now_ms) for p in data],
    }
    print(machine_line())
    print(f"{message_size_line(data, 'events')}; best of {args.repeat}; pid {os.getpid()}")
    for name, us in best_us(cases, len(data), args.repeat).items():
        print(f"  {name:<16} {us:6.2f} µs/event")
    print(f"{load_line()} at the end")


if __name__ == "__main__":
    run(main)
