"""Synthetic gate traffic: realistic event mixes for demos and tests
(``SyntheticGate``), and a load simulator that saturates the pipeline (``run_load``).

The load simulator, for benchmarks and soaks::

    from edge_agent.simulate import LoadSpec, SimAccount, run_load

    spec = LoadSpec(sites=4, devices_per_site=5, rate=20_000, duration_s=60)
    report = run_load(spec, accounts, stop=threading.Event(), on_progress=print)

- ``accounts``: one ``SimAccount`` per device (``spec.devices`` of them): the device's
  connection file as ``facegate devices add`` writes it (``DeviceConnection.load``)
  and its site's secret, with which the simulated residents ``resident-00000`` …
  are pseudonymised (grant them consent under the same secret to get their events
  stored; ``facegate simulate`` does both through ``stream_processor``).
- Each device publishes through its own MQTT account (the broker's ACL pins it to
  its topics) with the edge's semantics: per-device monotonic ``seq`` from
  ``first_seq``, UUIDv7 event ids, every event kept until the bridge's delivery
  confirmation covers it; after a reconnect (back-off up to 5 s) every unconfirmed
  event is published again in order, so a Mosquitto kill -9 loses nothing; after
  ``confirm_timeout_s`` without any confirmation all of them again, and a stretch
  the cloud confirmed past is sent again alone (``device.check_timeout``). At most
  ``max_unconfirmed`` per device are kept: past it the device makes no new events
  (its rate drops, as a gate's outbox would fill). The devices are spread over ``processes`` worker
  processes (default: one per core); each speaks MQTT v5 over its own sockets
  (``mqtt_wire``), so the publishers are not the bottleneck.
- ``LoadReport``: ``made``, ``published`` (PUBACKed), ``confirmed``,
  ``expected_stored`` (the events of ``spec.stored_kinds``: what the demo policy
  stores when every simulated resident consented), ``per_device[identity]`` with
  the inclusive ``seqs`` range and that device's ``expected_stored``: exactly-once
  is ``SELECT device, count(*), count(DISTINCT seq) … GROUP BY device`` equal to
  it, every seq inside the range. ``publish_rate`` is PUBACKed events per second.
  ``expected_stored`` holds once the worker has read the consents: grant them
  before the worker decides the events (a worker that has not read a grant yet
  discards the face matches as ``no_consent``, for good; docs/benchmarks.md).
"""

from edge_agent.simulate.gate import MIX, SyntheticGate
from edge_agent.simulate.load import (
    STORED_KINDS,
    DeviceReport,
    LoadProgress,
    LoadReport,
    LoadSpec,
    SimAccount,
    run_load,
)

__all__ = [
    "MIX",
    "STORED_KINDS",
    "DeviceReport",
    "LoadProgress",
    "LoadReport",
    "LoadSpec",
    "SimAccount",
    "SyntheticGate",
    "run_load",
]
