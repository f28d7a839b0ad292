"""``facegate witness``: run an independent witness of an operator's audit log (composition root).

Meant for a third party (a residents' committee, a notary, a regulator) on its
own machine: its own key and state (``FACEGATE_WITNESS_STATE_DIR``), the
operator's web app as its only input.
"""

from __future__ import annotations

import click

from stream_processor.witness.settings import WitnessSettings


def _settings(**overrides: object) -> WitnessSettings:
    values = {k: v for k, v in overrides.items() if v not in (None, ())}
    return WitnessSettings(**values)  # type: ignore[arg-type]


@click.group()
def witness() -> None:
    """An independent witness: cosigns audit checkpoints that extend what it saw."""


@witness.command("public-key")
def public_key() -> None:
    """Print the witness's verifier key (created on first use) for operators and verifiers."""
    from stream_processor.audit.note import COSIGNATURE_V1, Signer
    from stream_processor.witness.state import load_or_create_key

    s = _settings()
    key = load_or_create_key(s.state_dir)
    click.echo(Signer(s.name, key, COSIGNATURE_V1).verifier.vkey())


@witness.command()
@click.option("--log-url", default=None, help="the operator's web app [FACEGATE_WITNESS_LOG_URL]")
@click.option(
    "--log-key",
    "log_keys",
    multiple=True,
    help="the log's checkpoint verifier key (repeatable) [FACEGATE_WITNESS_LOG_KEYS]",
)
@click.option("--once", is_flag=True, help="one round, print its result; exit 1 unless cosigned")
@click.option("--interval", type=float, default=None, help="seconds between rounds")
@click.option("--port", type=int, default=None, help="port of /metrics, /add-checkpoint, …")
@click.option(
    "--pull/--push-only",
    default=True,
    help="fetch the log's checkpoints every interval, or only answer POST /add-checkpoint",
)
def run(
    log_url: str | None,
    log_keys: tuple[str, ...],
    once: bool,
    interval: float | None,
    port: int | None,
    pull: bool,
) -> None:
    """Watch the log: cosign each checkpoint that extends the last one cosigned; on a
    rewritten or forked log refuse, keep a signed fork statement and raise
    facegate_witness_fork_detected. Logs may also push (C2SP tlog-witness,
    POST /add-checkpoint on --port)."""
    from aiohttp import web
    from prometheus_client import CollectorRegistry

    from stream_processor.audit.note import Verifier
    from stream_processor.witness.client import HttpLogClient
    from stream_processor.witness.http import create_witness_app
    from stream_processor.witness.service import Result, WitnessMetrics, WitnessService
    from stream_processor.witness.state import WitnessState, load_or_create_key

    s = _settings(log_url=log_url, log_keys=list(log_keys), interval_s=interval, port=port)
    if not s.log_keys:
        raise click.UsageError("give the log's key: --log-key or FACEGATE_WITNESS_LOG_KEYS")
    registry = CollectorRegistry()
    state = WitnessState(s.state_dir / "witness.sqlite")
    service = WitnessService(
        name=s.name,
        key=load_or_create_key(s.state_dir),
        state=state,
        client=HttpLogClient(s.log_url, s.timeout_s),
        log_keys=[Verifier.parse(k) for k in s.log_keys],
        metrics=WitnessMetrics(registry),
    )
    try:
        if once:
            out = service.run_once()
            if out.result == Result.UNAVAILABLE:
                raise click.ClickException(f"the log is unavailable: {out.reason}")
            click.echo(f"{out.result}: size {out.size}: {out.reason}")
            raise SystemExit(0 if out.result == Result.COSIGNED else 1)
        click.echo(f"witness {service.vkey} watching {s.log_url} every {s.interval_s}s")
        web.run_app(
            create_witness_app(service, registry, s.interval_s, pull),
            host=s.host,
            port=s.port,
            print=None,
        )
    finally:
        state.close()


@witness.command("fork-statements")
def fork_statements() -> None:
    """Print the fork statements this witness has made (one JSON document per line)."""
    from stream_processor.witness.state import WitnessState

    s = _settings()
    state = WitnessState(s.state_dir / "witness.sqlite")
    try:
        for statement in state.fork_statements():
            click.echo(statement)
    finally:
        state.close()
