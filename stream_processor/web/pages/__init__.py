"""The console's HTML pages (zh/en): sign-in, overview, site, gate, retention, compliance."""

from aiohttp import web


def add_routes(app: web.Application) -> None:
    from stream_processor.web import assets, live
    from stream_processor.web.pages import (
        compliance,
        console,
        keycards,
        retention,
        signin,
        subject,
    )

    signin.add_routes(app)
    console.add_routes(app)
    retention.add_routes(app)
    compliance.add_routes(app)
    subject.add_routes(app)
    keycards.add_routes(app)
    assets.add_routes(app)
    live.install(app)
