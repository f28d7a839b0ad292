"""``facegate audit follow``: consent changes and policy versions into the audit log."""

from __future__ import annotations

import click

from stream_processor.audit.settings import AuditSettings
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings, Topics


@click.command()
@click.option(
    "--metrics-port", type=click.IntRange(0, 65535), default=0, show_default=True,
    help="Prometheus port on FACEGATE_AUDIT_METRICS_HOST (quarantined records, outage"
    " retries); 0 = off",
)  # fmt: skip
def follow(metrics_port: int) -> None:
    """Write consent changes and policy versions from their topics into the log (until SIGTERM).

    A record that cannot be logged goes to the dead-letter topic with its coordinates."""
    import signal

    from stream_processor.audit.follower import LedgerAuditor, OffsetFile
    from stream_processor.audit.follower import follow as follow_ledgers
    from stream_processor.audit.wiring import open_audit
    from stream_processor.quarantine import ConsumerMetrics, KafkaDeadLetters, Quarantine
    from stream_processor.runtime.targets import announce

    stack = BrokerSettings()
    topics = Topics()
    a = open_audit(stack.state_dir, role=Role.AUDIT)
    stop = {"now": False}

    def _stop(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    auditor = LedgerAuditor(a.log, topics.consent, topics.policies)
    click.echo(f"audit follower: {topics.consent}, {topics.policies} → {a.paths.log}")
    if metrics_port:
        from prometheus_client import start_http_server

        host = AuditSettings().metrics_host
        start_http_server(metrics_port, addr=host)
        announce(stack.state_dir, "facegate-audit", metrics_port, host=host)
    # The ledgers' records name a subject in fields the redaction does not know: no bytes.
    quarantine = Quarantine("audit_follower", ConsumerMetrics(), keep_bytes=False)
    login = kafka_python_auth(stack, Role.AUDIT)
    dead_letters = KafkaDeadLetters(stack.kafka_bootstrap, topics.dlq, auth=login)
    try:
        n = follow_ledgers(
            stack.kafka_bootstrap,
            auditor,
            OffsetFile(a.paths.root / "follower-offsets.json"),
            lambda: stop["now"],
            quarantine=quarantine,
            dead_letters=dead_letters,
            auth=login,
        )
    finally:
        dead_letters.close()
        a.close()
    click.echo(f"audit follower stopped after {n} entries")
