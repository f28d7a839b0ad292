"""``facegate simulate``: load from many simulated gates through real device accounts
(``edge_agent.simulate.run_load``), with progress and a summary.

Registers one device account per simulated gate (``<tenant>/site-S/gate-G/sim``,
as ``facegate devices add`` does; existing ones are reused), grants every
simulated resident consent and applies the demo policy when the tenant is
``demo`` (so ``expected stored`` is exact), then publishes. Works against
``facegate stack up`` and against a private stack (``FACEGATE_STATE_DIR``,
``FACEGATE_MQTT_PORT``, ...).
"""

from __future__ import annotations

import signal
import socket
import threading
from pathlib import Path

import click

from edge_agent.simulate import LoadProgress, LoadReport, LoadSpec, SimAccount, run_load
from edge_agent.uplink.settings import DeviceConnection
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.errors import BrokerError, ConfigError
from stream_processor.processor.demo_seed import gate_site_secret, seed_demo
from stream_processor.runtime.devices import config_path, register_device
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import Topics
from stream_processor.stack.mosquitto import Mosquitto
from stream_processor.stack.settings import StackSettings

#: The device id every simulated gate gets (beside a real gate's ``cam-1``).
SIM_DEVICE = "sim"


def identities(tenant: str, sites: int, per_site: int) -> list[DeviceIdentity]:
    return [
        DeviceIdentity(tenant, f"site-{s}", f"gate-{g}", SIM_DEVICE)
        for s in range(1, sites + 1)
        for g in range(1, per_site + 1)
    ]


def _reachable(host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        raise BrokerError(
            f"cannot reach MQTT at {host}:{port} ({exc.strerror or exc}); is the stack up?"
            " (facegate stack up)"
        ) from None


def accounts_for(
    settings: StackSettings, idents: list[DeviceIdentity], register: bool, tls: bool
) -> list[SimAccount]:
    """Each device's connection file (registered now if missing, or when ``register``
    and the file names another listener) and its site secret."""
    broker = Mosquitto(settings)
    out = []
    for ident in idents:
        path = config_path(settings, ident)
        if register:
            conn = DeviceConnection.load(path) if path.exists() else None
            if conn is None or (conn.mqtt.ca_file is not None) != tls:
                path = Path(register_device(settings, ident, tls=tls, broker=broker))
        elif not path.exists():
            raise ConfigError(
                f"device {ident.username} is not registered ({path} is missing); run without"
                " --no-register, or: facegate devices add"
            )
        data_dir = settings.state_dir / "edge" / ident.username
        out.append(SimAccount(DeviceConnection.load(path), gate_site_secret(ident, data_dir)))
    return out


def _print_progress(p: LoadProgress) -> None:
    click.echo(
        f"[simulate] t={p.elapsed_s:6.1f}s made {p.made:,} published {p.published:,}"
        f" confirmed {p.confirmed:,} connected {p.connected}/{p.devices}"
    )


def _summary(report: LoadReport, spec: LoadSpec) -> None:
    kinds = ", ".join(f"{k}={n:,}" for k, n in sorted(report.by_kind.items()))
    click.echo(
        f"[simulate] done in {report.elapsed_s:.1f}s: made {report.made:,}, published"
        f" {report.published:,} ({report.publish_rate:,.0f}/s), confirmed durable"
        f" {report.confirmed:,}, unconfirmed {report.unconfirmed:,}, refused {report.refused:,}"
    )
    click.echo(
        f"[simulate] expected stored {report.expected_stored:,} (all but unknown faces);"
        f" re-send rounds {report.resend_rounds}, reconnects {report.reconnects}; {kinds}"
    )
    if spec.confirms and report.published and not report.confirmed:
        click.echo(
            "[simulate] no delivery confirmation arrived: is the bridge running"
            " (facegate bridge run)?", err=True,
        )  # fmt: skip


@click.command()
@click.option("--sites", type=click.IntRange(1, 10_000), default=2, show_default=True,
              help="simulated sites (site-1, site-2, ...)")
@click.option("--devices-per-site", type=click.IntRange(1, 1000), default=2, show_default=True,
              help="simulated gates per site, one device account each")
@click.option("--rate", type=click.FloatRange(0), default=100.0, show_default=True,
              help="events/s over all devices; 0 = as fast as the broker takes them")
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=None,
              help="seconds to publish")
@click.option("--events", type=click.IntRange(1), default=None, help="events to publish")
@click.option("--tenant", default="demo", show_default=True,
              help="tenant of the simulated gates (demo: the demo policy is applied)")
@click.option("--register/--no-register", default=True, show_default=True,
              help="register missing device accounts; --no-register uses existing ones only")
@click.option("--consent/--no-consent", default=True, show_default=True,
              help="grant every simulated resident consent first")
@click.option("--tls", is_flag=True, help="devices use the TLS listener (default: loopback plain)")
@click.option("--processes", type=click.IntRange(1, 256), default=None,
              help="publishing processes (default: one per core)")
@click.option("--confirm/--no-confirm", default=True, show_default=True,
              help="keep events until the bridge confirms them durable")
@click.option("--confirm-timeout", type=click.FloatRange(0, min_open=True), default=30.0,
              show_default=True,
              help="seconds without a confirmation before unconfirmed events are sent again")
@click.option("--drain-timeout", type=click.FloatRange(0), default=30.0, show_default=True,
              help="seconds to wait at the end for confirmations")
@click.option("--seed", type=int, default=None, help="random seed of the event mix")
def simulate(
    sites: int, devices_per_site: int, rate: float, duration: float | None,
    events: int | None, tenant: str, register: bool, consent: bool, tls: bool,
    processes: int | None, confirm: bool, confirm_timeout: float, drain_timeout: float,
    seed: int | None,
) -> None:  # fmt: skip
    """Publish a realistic event mix from many simulated gates (no vision cost).

    Exits 69 when MQTT cannot be reached or nothing was published.
    """
    if duration is None and events is None:
        raise click.UsageError("give --duration SECONDS or --events N")
    spec = LoadSpec(
        sites=sites, devices_per_site=devices_per_site, rate=rate, duration_s=duration,
        events=events, seed=seed, processes=processes, confirms=confirm,
        confirm_timeout_s=confirm_timeout, drain_timeout_s=drain_timeout,
    )  # fmt: skip
    settings = StackSettings()
    _reachable(settings.host, settings.mqtt_port)
    try:
        idents = identities(tenant, sites, devices_per_site)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tenant") from None
    accounts = accounts_for(settings, idents, register, tls)
    click.echo(f"[simulate] {len(accounts)} device accounts ready ({sites} sites x"
               f" {devices_per_site}, MQTT {settings.host}:{settings.mqtt_port})")  # fmt: skip
    if consent:
        data_dirs = [(i, settings.state_dir / "edge" / i.username) for i in idents]
        grants = seed_demo(settings.kafka_bootstrap, Topics(), data_dirs,
                           residents=spec.residents, consenting=1.0,
                           auth=kafka_python_auth(settings, Role.OFFICE))  # fmt: skip
        click.echo(f"[simulate] {grants:,} consents granted (every simulated resident)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    report = run_load(spec, accounts, stop=stop, on_progress=_print_progress)
    _summary(report, spec)
    if not report.published:
        raise BrokerError(
            f"published nothing: the MQTT broker at {settings.host}:{settings.mqtt_port}"
            f" acknowledged none of {report.made:,} events"
            + (f" ({report.last_refusal})" if report.last_refusal else "")
        )
