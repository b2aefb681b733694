"""`/docs`: the Swagger UI, served from this service; nothing is fetched from another site.

The UI's script and style sheet come from the `fastapi-offline` wheel (Swagger UI 5, which reads
the OpenAPI 3.1 document FastAPI writes), mounted under /static/swagger-ui; the page's own start-up
script is a file of ours (api/static/swagger-init.js), so the page has no inline script and its
CSP (api/headers.py) allows scripts from this origin only.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
SWAGGER_UI = Path(str(resources.files("fastapi_offline") / "static"))

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API documentation</title>
<link rel="stylesheet" href="/static/swagger-ui/swagger-ui.css">
<link rel="icon" href="/static/swagger-ui/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Mount the static files (the console's style sheet, the Swagger UI) and serve /docs.
    The app is made with `docs_url=None, redoc_url=None`: FastAPI's own pages load from a CDN."""
    app.mount("/static/swagger-ui", StaticFiles(directory=SWAGGER_UI), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    page = PAGE.format(title=app.title)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)
