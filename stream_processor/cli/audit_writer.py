"""``facegate audit writer``: the chaining writer of a multi-host audit log."""

from __future__ import annotations

import click

from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings, Topics


@click.command("writer")
@click.option(
    "--metrics-port", type=click.IntRange(0, 65535), default=0, show_default=True,
    help="Prometheus port on FACEGATE_AUDIT_METRICS_HOST (active, chained, refused,"
    " fenced, take-overs); 0 = off",
)  # fmt: skip
def writer(metrics_port: int) -> None:
    """Chain every host's audit facts into the one audit chain (until SIGTERM).

    Needs FACEGATE_AUDIT_MODE=topic. Run one on each host: the instance the
    consumer group assigns the facts partition writes, the others stand by and
    take over when it stops or dies."""
    import signal
    import threading

    from stream_processor.audit.chain_writer import ChainWriter
    from stream_processor.audit.settings import AuditSettings

    settings = AuditSettings()
    if settings.mode != "topic":
        raise click.UsageError(
            "the audit writer runs in the multi-host mode: FACEGATE_AUDIT_MODE=topic"
        )
    stack = BrokerSettings()
    topics = Topics()
    chain = ChainWriter(
        stack.kafka_bootstrap,
        topics.audit_facts,
        topics.audit_chain,
        auth=kafka_python_auth(stack, Role.AUDIT),
        group=settings.writer_group,
        transactional_id=settings.writer_group,
    )
    if metrics_port:
        from prometheus_client import REGISTRY, start_http_server

        from stream_processor.audit.writer_metrics import register_writer_metrics
        from stream_processor.runtime.targets import announce

        register_writer_metrics(chain, REGISTRY)
        start_http_server(metrics_port, addr=settings.metrics_host)
        announce(stack.state_dir, "facegate-audit", metrics_port, settings.metrics_host, "writer")
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"audit writer: {topics.audit_facts} → {topics.audit_chain} (standing by)")
    try:
        chain.run(stop)
    finally:
        chain.close()
    s = chain.stats
    click.echo(
        f"audit writer stopped: {s.chained} chained, {s.refused} refused, "
        f"{s.fenced} fenced batches, {s.takeovers} take-overs"
    )
