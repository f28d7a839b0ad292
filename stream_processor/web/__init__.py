"""The project's web app (aiohttp): camera notice pages, the rights API, health, metrics.

aiohttp because it is already in every cloud install (Faust is built on it),
it is asyncio-native like the rest of the cloud side, and it serves pages,
JSON and streaming responses without a second framework; the dashboard grows
here as more route modules.

    settings.py   WebSettings (FACEGATE_WEB_*)
    app.py        create_app(deps): the routes, built from injected parts
    notices.py    /notice/... pages and the resident key-card form
    api.py        /api/v1/... operator JSON API (bearer token)
"""
