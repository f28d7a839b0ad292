"""``facegate edge …`` (also ``facegate-edge``): commands that run on the gate device."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path

import click

from edge_agent.wire.events import event_json_schema


@click.group()
def edge() -> None:
    """The gate device: nothing biometric ever leaves it."""


@edge.command("export-schema")
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("docs/schema/gate-event-v1.json")
)
def export_schema(out: Path) -> None:
    """Write the wire contract's JSON Schemas (for other device implementers)."""
    from edge_agent.wire.commands import ack_json_schema, command_json_schema

    out.parent.mkdir(parents=True, exist_ok=True)
    for path, schema in (
        (out, event_json_schema()),
        (out.with_name("edge-command-v1.json"), command_json_schema()),
        (out.with_name("command-ack-v1.json"), ack_json_schema()),
    ):
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        click.echo(str(path))


@edge.command()
@click.option(
    "--device-config",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="connection file written by 'facegate devices add'",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    required=True,
    help="device data: outbox.sqlite and the site secret",
)
@click.option("--rate", type=float, default=2.0, show_default=True, help="events per second")
@click.option(
    "--count", type=int, default=0, help="stop after this many events (0 = until signalled)"
)
@click.option(
    "--duration", type=float, default=0.0, help="stop after this many seconds (0 = no limit)"
)
@click.option("--seed", type=int, default=None)
def simulate(
    device_config: Path, data_dir: Path, rate: float, count: int, duration: float, seed: int | None
) -> None:
    """Generate synthetic, already-anonymized gate events through the real outbox and MQTT."""
    from edge_agent.outbox import SqliteOutbox
    from edge_agent.pseudonym import load_or_create_site_secret
    from edge_agent.simulate import SyntheticGate
    from edge_agent.uplink.publisher import OutboxPublisher
    from edge_agent.uplink.settings import DeviceConnection

    conn = DeviceConnection.load(device_config)
    outbox = SqliteOutbox(data_dir / "outbox.sqlite")
    gate = SyntheticGate(
        conn.identity, load_or_create_site_secret(data_dir / "site.secret"), seed=seed
    )
    publisher = OutboxPublisher(outbox, conn.identity, conn.mqtt)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    pub_thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    pub_thread.start()
    made, started = 0, time.monotonic()
    log = logging.getLogger("edge.simulate")
    while not stop.is_set():
        elapsed = time.monotonic() - started
        if (count and made >= count) or (duration and elapsed >= duration):
            break
        due = int(elapsed * rate) + 1 - made
        if count:
            due = min(due, count - made)
        if due > 0:
            batch = min(due, 500)
            outbox.append_many([gate.maker() for _ in range(batch)])
            made += batch
        stop.wait(min(0.05, 1.0 / rate))
    log.info("made %d events; draining outbox (%d left)", made, outbox.depth())
    deadline = time.monotonic() + 30
    while outbox.depth() and time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.05)
    stop.set()
    pub_thread.join(10)
    left = outbox.depth()
    click.echo(
        f"{conn.identity.username}: made {made}, published {publisher.published}, "
        f"refused {publisher.refused}, still queued {left}"
    )
    outbox.close()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    edge()
