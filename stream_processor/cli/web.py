"""``facegate web serve``: the web app (composition root): notices, rights API, metrics."""

from __future__ import annotations

import click

from stream_processor.runtime.settings import BrokerSettings


@click.group()
def web() -> None:
    """The web app: camera notice pages, key-card requests, health, metrics."""


@web.command()
@click.option("--host", default=None, help="listen address (FACEGATE_WEB_HOST)")
@click.option("--port", type=int, default=None, help="listen port (FACEGATE_WEB_PORT)")
def serve(host: str | None, port: int | None) -> None:
    """Serve until interrupted."""
    from aiohttp import web as aioweb
    from prometheus_client import CollectorRegistry

    from stream_processor.audit.wiring import open_audit
    from stream_processor.web.app import add_housekeeping, create_app
    from stream_processor.web.deps import build_deps
    from stream_processor.web.settings import WebSettings

    stack = BrokerSettings()
    settings = WebSettings()
    follower = None
    retention_from = str(settings.retention(stack.state_dir))
    if settings.retention_source == "kafka":
        from stream_processor.notices.policy_retention import PolicyTopicRetention
        from stream_processor.runtime.settings import Topics

        topic = Topics().policies
        follower = PolicyTopicRetention(stack.kafka_bootstrap, topic).start()
        if not follower.wait_caught_up(30):
            click.echo(f"warning: {topic} not read yet; notices show no rule until it is", err=True)
        retention_from = f"kafka {stack.kafka_bootstrap} {topic}"
    audit = open_audit(stack.state_dir)
    deps = build_deps(
        stack.state_dir,
        settings,
        CollectorRegistry(),
        audit.log,
        audit_paths=audit.paths,
        retention=follower,
    )
    app = create_app(deps)
    add_housekeeping(app, settings.keycard_contact_retention_days * 86400)
    bind_host, bind_port = host or settings.host, port or settings.port
    click.echo(
        f"facegate web on http://{bind_host}:{bind_port} (public {settings.public_url}); "
        f"cameras {settings.cameras(stack.state_dir)}; retention from {retention_from}"
    )
    try:
        aioweb.run_app(app, host=bind_host, port=bind_port, print=None)
    finally:
        if follower is not None:
            follower.stop()
        audit.close()


@web.command("token")
def token() -> None:
    """Print the operator API token (created on first use under <state>/secrets/)."""
    from stream_processor.web.deps import load_or_create_token

    click.echo(load_or_create_token(BrokerSettings().state_dir / "secrets"))
