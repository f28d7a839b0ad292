"""``facegate demo``: the whole local pipeline with simulated gates, on SQLite.

Brings the stack up, registers one device per simulated gate, starts a bridge,
a processor worker and the gates as separate processes (nothing assumes one
process), prints what flows where, and on Ctrl-C or after ``--duration``
stops everything it started, the brokers included.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import click

from edge_agent.wire.topics import DeviceIdentity
from stream_processor.runtime.devices import register_device
from stream_processor.runtime.kafka_auth import Role as KafkaRole
from stream_processor.runtime.kafka_auth import kafka_python_auth
from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.settings import Topics
from stream_processor.stack.mosquitto import Mosquitto
from stream_processor.stack.settings import StackSettings
from stream_processor.stack.stack import Stack


def _facegate() -> str:
    return str(Path(sys.executable).with_name("facegate"))


def _summary(db_path: Path) -> tuple[int, list[tuple[str, str, int]]]:
    if not db_path.exists():
        return 0, []
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        total = db.execute("SELECT count(*) FROM events").fetchone()[0]
        rows = db.execute(
            "SELECT site, kind, count(*) FROM events GROUP BY site, kind ORDER BY site, kind"
        ).fetchall()
        return int(total), rows
    except sqlite3.OperationalError:
        return 0, []
    finally:
        db.close()


def _announce_console(state_dir: Path) -> None:
    """Print the dashboard URL and a fresh viewer token of the demo firm (valid 1 day)."""
    from stream_processor.rights.db import open_rights_db, rights_db_path
    from stream_processor.web.settings import WebSettings
    from stream_processor.web.tokens import Role, TokenBook

    db = open_rights_db(rights_db_path(state_dir))
    try:
        secret, _ = TokenBook(db).create("demo", Role.VIEWER, "demo viewer", ttl_s=86400)
    finally:
        db.close()
    url = WebSettings().public_url.rstrip("/")
    click.echo(f"[demo] dashboard: {url}/console  (sign in with the viewer token below)")
    click.echo(f"[demo] viewer token of the demo firm: {secret}")


@click.command()
@click.option(
    "--duration", type=click.FloatRange(min=0), default=0.0,
    help="seconds to run; 0 = until Ctrl-C",
)
@click.option(
    "--sites", type=click.IntRange(min=1), default=2, show_default=True,
    help="simulated sites (each with --gates gates)",
)
@click.option(
    "--gates", type=click.IntRange(min=1), default=2, show_default=True, help="gates per site"
)
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
    help="events/s per gate",
)
@click.option("--keep-stack", is_flag=True, help="leave Mosquitto and Kafka running afterwards")
def demo(duration: float, sites: int, gates: int, rate: float, keep_stack: bool) -> None:
    """Run the whole pipeline locally with simulated gates."""
    settings = StackSettings()
    layout = StateLayout(settings.state_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    stack = Stack(settings)
    click.echo(f"[demo] starting Mosquitto and Kafka (state in {settings.state_dir}) ...")
    t0 = time.monotonic()
    stack.up()
    click.echo(
        f"[demo] brokers up in {time.monotonic() - t0:.1f}s: MQTT {settings.host}:"
        f"{settings.mqtt_port}, Kafka {settings.kafka_bootstrap}, topics {Topics().raw}, "
        f"{Topics().dlq}"
    )
    children = _Children(layout.run)
    try:
        children.start("bridge", "bridge", "run")
        children.start("processor", "processor", "worker")
        _start_gates(settings, layout, children, sites, gates, rate)
        children.start("web", "web", "serve")
        click.echo(
            f"[demo] running: 1 bridge, 1 processor worker, {sites * gates} simulated gates "
            f"at {rate}/s each, the web app; logs in {layout.run}"
        )
        _announce_console(settings.state_dir)
        click.echo(f"[demo] events are stored in {layout.sqlite_path}")
        _watch(layout, children, stop, duration)
    finally:
        click.echo("[demo] stopping gates, bridge and processor ...")
        children.stop()
        total, _ = _summary(layout.sqlite_path)
        click.echo(f"[demo] {total} events in {layout.sqlite_path}")
        if keep_stack:
            click.echo("[demo] brokers left running; stop them with: make down")
        else:
            stack.down()
            click.echo("[demo] brokers stopped; nothing left running")


class _Children:
    """The processes the demo starts, each logging to its own file under ``logs``."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *args: str) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.procs.append(
            (name, subprocess.Popen([_facegate(), *args], stdout=log, stderr=subprocess.STDOUT))
        )

    def dead(self) -> list[str]:
        return [name for name, p in self.procs if p.poll() is not None]

    def stop(self) -> None:
        # Gates first (they drain their outboxes), then the bridge, then the worker.
        for group in (("gate-", "web"), ("bridge",), ("processor",)):
            chosen = [p for name, p in self.procs if name.startswith(group)]
            for p in chosen:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in chosen:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def _start_gates(
    settings: StackSettings,
    layout: StateLayout,
    children: _Children,
    sites: int,
    gates: int,
    rate: float,
) -> None:
    """Seed the demo policy and consents, then register and start one simulated gate each."""
    # The processor stores only what a policy and consents allow.
    from stream_processor.processor.demo_seed import seed_demo

    idents = [
        DeviceIdentity("demo", f"site-{s}", f"gate-{g}", "cam-1")
        for s in range(1, sites + 1)
        for g in range(1, gates + 1)
    ]
    grants = seed_demo(
        settings.kafka_bootstrap,
        Topics(),
        [(i, layout.root / "edge" / i.username) for i in idents],
        auth=kafka_python_auth(settings, KafkaRole.OFFICE),
    )
    click.echo(f"[demo] demo policy applied, {grants} consents granted (80% of residents)")
    for ident in idents:
        conf = register_device(settings, ident, broker=Mosquitto(settings))
        children.start(
            f"gate-{ident.username}",
            "edge",
            "simulate",
            "--device-config",
            conf,
            "--data-dir",
            str(layout.root / "edge" / ident.username),
            "--rate",
            str(rate),
        )


def _watch(
    layout: StateLayout, children: _Children, stop: threading.Event, duration: float
) -> None:
    """Print what is stored every 5 s until stopped, a child dies or ``duration`` is up."""
    started = time.monotonic()
    while not stop.wait(5.0):
        total, rows = _summary(layout.sqlite_path)
        by = ", ".join(f"{site}/{kind}={n}" for site, kind, n in rows)
        click.echo(f"[demo] t={time.monotonic() - started:5.0f}s stored={total}  {by}")
        dead = children.dead()
        if dead:
            click.echo(f"[demo] stopped unexpectedly: {dead}; see {layout.run}", err=True)
            break
        if duration and time.monotonic() - started >= duration:
            break
