"""``facegate stack up|down|status``: the local Mosquitto and Kafka."""

from __future__ import annotations

import json
from typing import Any

import click

from stream_processor.cli.options import json_option
from stream_processor.stack.settings import StackSettings
from stream_processor.stack.stack import Stack, StackStatus


def _print(status: StackStatus, settings: StackSettings) -> None:
    m, k = status.mosquitto, status.kafka
    click.echo(f"state dir : {settings.state_dir}")
    click.echo(
        f"mosquitto : {'running pid ' + str(m.pid) if m.running else 'stopped'}"
        f" on {settings.host}:{settings.mqtt_port}"
    )
    if len(k.nodes) == 1:
        state = f"running pid {k.pid}" if k.running else "stopped"
    else:
        up = [i for i, n in enumerate(k.nodes, start=1) if n.running]
        state = f"running {len(up)} of {len(k.nodes)} nodes" if up else "stopped"
        state = "running" if len(up) == len(k.nodes) else state
    click.echo(f"kafka     : {state} on {settings.kafka_bootstrap}")
    if status.postgres is not None:
        pg = status.postgres
        click.echo(
            f"postgres  : {'running pid ' + str(pg.pid) if pg.running else 'stopped'}"
            f" on {settings.host}:{pg.port}"
        )
    if status.prometheus is not None:
        pr = status.prometheus
        click.echo(
            f"prometheus: running pid {pr.pid}{'' if pr.ready else ' (not ready)'}"
            f" on http://{pr.address}"
        )


def _settings(kafka_nodes: int | None) -> StackSettings:
    # The node count is part of the state dir (a voter set is fixed at format time):
    # down and status read it back from there when not given.
    import os

    from stream_processor.runtime.settings import BrokerSettings

    if kafka_nodes is not None:
        return StackSettings(kafka_nodes=kafka_nodes)
    size = BrokerSettings().state_dir / "kafka" / "cluster.nodes"
    if "FACEGATE_KAFKA_NODES" not in os.environ and size.exists():
        return StackSettings(kafka_nodes=int(size.read_text().strip()))
    return StackSettings()


@click.group()
def stack() -> None:
    """Start, stop and inspect the local brokers (state under FACEGATE_STATE_DIR)."""


@stack.command()
@click.option(
    "--with-monitoring", is_flag=True,
    help="also run Prometheus (Debian package) scraping every announced process, with"
    " the rules of deploy/prometheus/ (FACEGATE_PROMETHEUS_PORT, default 9090)",
)
@click.option("--kafka-nodes", type=click.IntRange(1, 9), default=None,
              help="KRaft nodes to run (default FACEGATE_KAFKA_NODES, 1); 3 replicates"
              " every topic three times with min.insync.replicas=2")
def up(with_monitoring: bool, kafka_nodes: int | None) -> None:
    """Install what is missing, start Mosquitto and Kafka, create topics. Idempotent."""
    settings = _settings(kafka_nodes)
    _print(Stack(settings).up(with_monitoring=with_monitoring), settings)


@stack.command()
@click.option("--replication-factor", type=click.IntRange(1, 16), default=None,
              help="replicas of each new topic; default as the cluster's size gives"
              " (FACEGATE_KAFKA_NODES or the local stack's: 3 from three brokers up, else 1)")
@click.option("--add-replicas", is_flag=True,
              help="give each topic reported with too few replicas the missing ones (a"
              " partition reassignment; waits until they are in sync), then its"
              " min.insync.replicas")
def topics(replication_factor: int | None, add_replicas: bool) -> None:
    """Create the pipeline's topics on FACEGATE_KAFKA_BOOTSTRAP (e.g. an external cluster)
    and bring existing ones' configs up to date; starts no broker. Idempotent.

    Then checks every pipeline topic, the workers' own (changelogs, leader topics)
    included: one with fewer replicas or a lower min.insync.replicas than asked for is
    printed as a problem, and the exit status is 1 (fix: docs/operations.md)."""
    from stream_processor.runtime.kafka_auth import Role, check_login, kafka_python_auth
    from stream_processor.runtime.settings import BrokerSettings, Topics
    from stream_processor.runtime.topics import (
        ensure_topics,
        min_insync,
        replication_for,
        topic_specs,
        topics_in_force,
    )

    broker = BrokerSettings()
    bootstrap = broker.kafka_bootstrap
    rf = replication_factor or replication_for(broker.kafka_nodes)[0]
    # Topics and their configs are the admin's (FACEGATE_KAFKA_AUTH: its login).
    auth = kafka_python_auth(broker, Role.ADMIN)
    check_login(bootstrap, auth)
    # Retention as the policies in force set it (policy apply), never back to defaults.
    specs = topic_specs(topics_in_force(bootstrap, Topics(), auth), rf)
    created = ensure_topics(bootstrap, specs, replication=rf, auth=auth)
    click.echo(f"kafka {bootstrap}: {len(specs)} topics, {len(created)} created now"
               f"{' (' + ', '.join(created) + ')' if created else ''}; replication factor {rf}")
    problems = _report_replication(bootstrap, rf, int(min_insync(rf)), auth, add_replicas)
    if problems and add_replicas:
        from stream_processor.runtime.reassign import add_replicas as reassign

        for name, plan in reassign(bootstrap, problems, rf, auth).items():
            click.echo(f"added replicas: topic {name}: " + ", ".join(
                f"partition {p} on brokers {replicas}" for p, replicas in plan.items()))
        problems = _report_replication(bootstrap, rf, int(min_insync(rf)), auth, False)
    if problems:
        raise SystemExit(1)


def _report_replication(
    bootstrap: str, rf: int, isr: int, auth: dict[str, Any], fixing: bool
) -> list[str]:
    """Print each pipeline topic replicated below ``rf``/``isr``; returns their names."""
    from stream_processor.erasure.settings import ErasureSettings
    from stream_processor.processor.settings import ProcessorSettings
    from stream_processor.runtime.replication import describe_replication, replication_problems
    from stream_processor.runtime.settings import Topics

    processor = ProcessorSettings().app_id
    apps = [processor, ErasureSettings().app_id or f"{processor}-erasure"]
    problems = replication_problems(describe_replication(bootstrap, Topics(), apps, auth), rf, isr)
    for p in problems:
        click.echo(f"problem: topic {p.topic}: {p.detail}")
    if problems and not fixing:
        click.echo("fix: facegate stack topics --add-replicas, or reassign their partitions"
                   " (docs/operations.md, 'Topics with too few replicas'); Kafka never adds"
                   " replicas to an existing topic by itself")
    return [p.topic for p in problems]


@stack.command()
def down() -> None:
    """Stop Prometheus, Kafka (controlled shutdown) and Mosquitto. Idempotent."""
    settings = _settings(None)
    _print(Stack(settings).down(), settings)


def _as_dict(status: StackStatus, settings: StackSettings) -> dict[str, object]:
    m, k, pg = status.mosquitto, status.kafka, status.postgres
    doc: dict[str, object] = {
        "up": status.up,
        "state_dir": str(settings.state_dir),
        "mosquitto": {"running": m.running, "pid": m.pid,
                      "address": f"{settings.host}:{settings.mqtt_port}"},
        "kafka": {"running": k.running, "pid": k.pid, "address": settings.kafka_bootstrap,
                  "nodes": [{"node": i, "running": n.running, "pid": n.pid}
                            for i, n in enumerate(k.nodes, start=1)]},
    }  # fmt: skip
    if pg is not None:
        doc["postgres"] = {"running": pg.running, "pid": pg.pid,
                           "address": f"{settings.host}:{pg.port}"}  # fmt: skip
    if status.prometheus is not None:
        pr = status.prometheus
        doc["prometheus"] = {"running": pr.running, "pid": pr.pid, "ready": pr.ready,
                             "address": pr.address}  # fmt: skip
    return doc


@stack.command()
@json_option
def status(as_json: bool) -> None:
    """Show what runs; exit status 1 when the stack is not fully up."""
    settings = _settings(None)
    st = Stack(settings).status()
    if as_json:
        click.echo(json.dumps(_as_dict(st, settings), indent=2))
    else:
        _print(st, settings)
    raise SystemExit(0 if st.up else 1)


@stack.command()
def install() -> None:
    """Install what the stack needs without starting it: Debian packages, Kafka jars."""
    from stream_processor.runtime.system import ensure_debian_packages
    from stream_processor.stack.kafka import ensure_jars

    settings = StackSettings()
    ensure_debian_packages(
        {
            "mosquitto": "mosquitto",
            "mosquitto_passwd": "mosquitto",
            "java": "openjdk-17-jre-headless",
            "mvn": "maven",
            # --with-monitoring and the alert rules' tests (promtool)
            "prometheus": "prometheus",
            "promtool": "prometheus",
        }
    )
    click.echo(f"kafka jars: {ensure_jars(settings.kafka_libs)}")
    # Chinese labels on printed camera notices and receipts need a CJK font.
    from stream_processor.runtime.system import ensure_debian_files

    ensure_debian_files({"/usr/share/fonts/truetype/wqy/wqy-microhei.ttc": "fonts-wqy-microhei"})
    # PostgreSQL (Debian package) for FACEGATE_STORE=postgres and the store tests.
    from stream_processor.stack.postgres import find_bin_dir
    from stream_processor.store.settings import StoreSettings

    click.echo(f"postgresql: {find_bin_dir(StoreSettings().postgres_bin)}")
    # litewitness: the independent C2SP witness the audit log's interop test runs (Go, ~50 s
    # once). The pipeline and the demo do not need it: without Go, say so and go on.
    from stream_processor.errors import StackError
    from stream_processor.stack.litewitness import ensure_litewitness

    try:
        click.echo(f"litewitness: {ensure_litewitness(settings.state_dir / 'tools' / 'go')}")
    except StackError as exc:
        click.echo(f"litewitness: not installed ({exc}); only the interop test needs it", err=True)
    # The console: uPlot from npm (pinned, lock file), and Debian's Chromium + chromedriver
    # for the browser tests and the console benchmark (no browser download).
    from stream_processor.web.assets import ensure_assets

    ensure_debian_packages(
        {"npm": "npm", "chromium": "chromium", "chromedriver": "chromium-driver"}
    )
    ensure_assets()
    click.echo("console assets: uPlot installed; chromium and chromedriver present")
