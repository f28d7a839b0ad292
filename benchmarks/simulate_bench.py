"""The load simulator's publishers alone: how many events/s ``facegate simulate``
(``edge_agent.simulate.run_load``) hands to Mosquitto when nothing else runs.

Starts a private Mosquitto on free ports (no Kafka, no bridge session: the broker
keeps nothing, so the rate is the publishers' and the broker's), registers the
devices (real accounts and ACLs), and publishes QoS 1 as fast as possible (or at
``--rate``) without waiting for delivery confirmations. ``--client paho`` runs
the same event mix through paho-mqtt (one client per device, threads) for the
side-by-side comparison the simulator's own MQTT code was chosen by.

    .venv/bin/python benchmarks/simulate_bench.py --sites 4 --devices-per-site 4 --duration 10
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

from _machine import free_ports, load_line, machine_line, message_size_line, run

from edge_agent.simulate import LoadSpec, SimAccount, SyntheticGate, run_load
from edge_agent.uplink.settings import DeviceConnection
from edge_agent.wire import encode_event
from edge_agent.wire.topics import DeviceIdentity, event_topic
from stream_processor.processor.demo_seed import gate_site_secret
from stream_processor.runtime.devices import register_device
from stream_processor.stack.mosquitto import Mosquitto
from stream_processor.stack.settings import StackSettings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--devices-per-site", type=int, default=4)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of publishing")
    ap.add_argument("--rate", type=float, default=0.0, help="events/s in total; 0 = flat out")
    ap.add_argument("--processes", type=int, default=None, help="default: one per core")
    ap.add_argument("--client", choices=("simulator", "paho"), default="simulator")
    args = ap.parse_args()
    print(machine_line())
    state = Path(tempfile.mkdtemp(prefix="facegate-simbench-"))
    os.chmod(state, 0o755)  # noqa: S103 - the broker reads it as its own user
    mqtt, tls = free_ports(2)
    settings = StackSettings(state_dir=state, mqtt_port=mqtt, mqtt_tls_port=tls)
    broker = Mosquitto(settings)
    broker.up()
    try:
        accounts = register(settings, broker, args.sites, args.devices_per_site)
        sample = [encode_event(SyntheticGate(a.connection.identity, a.site_secret, seed=i)
                               .maker()(i)) for i, a in enumerate(accounts[:200])]  # fmt: skip
        print(f"{len(accounts)} devices ({args.sites} sites x {args.devices_per_site}),"
              f" QoS 1, {message_size_line(sample, 'events')}, client {args.client}")  # fmt: skip
        broker_cpu0, ours0 = cpu_seconds(broker_pid(settings)), own_cpu_seconds()
        if args.client == "paho":
            published, elapsed = paho_flat_out(accounts, args.duration)
        else:
            spec = LoadSpec(
                sites=args.sites, devices_per_site=args.devices_per_site, rate=args.rate,
                duration_s=args.duration, confirms=False, processes=args.processes,
                drain_timeout_s=10,
            )  # fmt: skip
            report = run_load(spec, accounts, on_progress=lambda p: print(
                f"  t={p.elapsed_s:5.1f}s made {p.made:,} PUBACKed {p.published:,}"), )  # fmt: skip
            published, elapsed = report.published, report.elapsed_s
            print(f"simulator processes: {1e6 * report.publisher_cpu_s / max(1, report.made):.1f}"
                  f" us CPU per event while publishing ({report.made:,} made)")  # fmt: skip
        broker_cpu = cpu_seconds(broker_pid(settings)) - broker_cpu0
        ours = own_cpu_seconds() - ours0
        print(f"published (PUBACKed) {published:,} events in {elapsed:.2f}s ="
              f" {published / elapsed:,.0f} events/s; {load_line()}")  # fmt: skip
        if published:
            print(f"CPU per event: publishers {1e6 * ours / published:.1f} us,"
                  f" mosquitto {1e6 * broker_cpu / published:.1f} us"
                  f" (load-independent; at 2 cores the sum bounds the rate)")  # fmt: skip
    finally:
        broker.down()
        shutil.rmtree(state, ignore_errors=True)


def broker_pid(settings: StackSettings) -> int | None:
    from stream_processor.stack import procs

    return procs.running_pid(Mosquitto(settings).pidfile, "mosquitto")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process so far (0 when it is unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """This process and its finished children (the simulator's worker processes)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def register(
    settings: StackSettings, broker: Mosquitto, sites: int, per_site: int
) -> list[SimAccount]:
    accounts = []
    for s in range(sites):
        for g in range(per_site):
            ident = DeviceIdentity("bench", f"site-{s}", f"gate-{g}", "cam-1")
            conf = DeviceConnection.load(
                Path(register_device(settings, ident, tls=False, broker=broker))
            )
            secret = gate_site_secret(ident, settings.state_dir / "edge" / ident.username)
            accounts.append(SimAccount(conf, secret))
    return accounts


def paho_flat_out(accounts: list[SimAccount], duration: float) -> tuple[int, float]:
    """paho-mqtt, one client and thread per device, QoS 1 with a 1,000-message window."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    acked = [0] * len(accounts)
    stop = threading.Event()

    def device(account: SimAccount, index: int) -> None:
        def on_publish(*_: object) -> None:
            acked[index] += 1  # paho's network thread only


        m = account.connection.mqtt
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=m.username,
                             protocol=mqtt.MQTTv5)  # fmt: skip
        client.username_pw_set(m.username, m.password.get_secret_value())
        client.max_inflight_messages_set(1000)
        client.on_publish = on_publish
        client.connect(m.host, m.port)
        client.loop_start()
        gate = SyntheticGate(account.connection.identity, account.site_secret, seed=index)
        topic = event_topic(account.connection.identity)
        seq = 0
        while not stop.is_set():
            if seq - acked[index] >= 2000:  # bound paho's unbounded in-memory queue
                time.sleep(0.001)
                continue
            seq += 1
            client.publish(topic, encode_event(gate.maker()(seq)), qos=1)
        client.disconnect()
        client.loop_stop()

    threads = [threading.Thread(target=device, args=(a, i)) for i, a in enumerate(accounts)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(duration)
    elapsed = time.monotonic() - t0
    published = sum(acked)
    stop.set()
    for t in threads:
        t.join(30)
    return published, elapsed


if __name__ == "__main__":
    run(main)
