"""Response headers that keep patient data out of caches and the console out of other sites' pages.

Every response but a static file: `Cache-Control: no-store` (course reads, events and console pages
hold patient data: no browser, proxy or back-forward cache may keep them), `nosniff`, and no
framing. Console pages: a Content-Security-Policy that allows this service's own style sheet and
nothing else (the console has no JavaScript: `script-src 'none'`). `Referrer-Policy: same-origin`
there, not `no-referrer`: under `no-referrer` browsers send `Origin: null` with a form POST, and
the console refuses POSTs whose Origin is not its own; `same-origin` still sends nothing to another
site. The API's JSON: `no-referrer` and a CSP that allows nothing. `/docs`: the Swagger UI served
from this service (api/docs.py), its own CSP.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONSOLE_CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI: its script and ours from /static (no inline script); React sets inline styles;
# its icons are data: URLs; it fetches /openapi.json and nothing else.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
STATIC_PREFIX = "/static/"

_ALWAYS = {"X-Content-Type-Options": "nosniff"}
_PAGES = {**_ALWAYS, "Cache-Control": "no-store", "X-Frame-Options": "DENY"}
CONSOLE = {**_PAGES, "Content-Security-Policy": CONSOLE_CSP, "Referrer-Policy": "same-origin"}
DOCS = {**_PAGES, "Content-Security-Policy": DOCS_CSP, "Referrer-Policy": "no-referrer"}
API = {**_PAGES, "Content-Security-Policy": API_CSP, "Referrer-Policy": "no-referrer"}


def headers_for(path: str) -> dict[str, str]:
    if path.startswith(STATIC_PREFIX):
        return _ALWAYS  # style sheets and the docs' scripts: no patient data, may be cached
    if path in {"/", "/console"} or path.startswith("/console/"):
        return CONSOLE
    if path == "/docs":
        return DOCS
    return API


class SecurityHeaders:
    """Adds the headers above to every HTTP response (a route may set its own first)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope["path"])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)
