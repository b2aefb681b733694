"""Request bodies are bounded before anything else looks at them, the bearer-token check included.

A step is a few kilobytes of JSON. Without a limit anyone who reaches the port, token or not, can
make the API read (and parse) as much as they care to send. The middleware refuses a declared
`Content-Length` over the limit without reading a byte, and counts a streamed (chunked) body as it
arrives: the body is read here, up to the limit, before the app runs, so no route, dependency or
form parser sees a request that is too large, whatever order it reads things in.
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import Problem, problem_response

DEFAULT_MAX_BODY_BYTES = 64 * 1024


def too_large(limit: int) -> Problem:
    return Problem(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        f"The request body is larger than this API accepts ({limit} bytes).",
        code="body_too_large",
    )


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._declared(scope) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    def _declared(self, scope: Scope) -> int:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0  # the server refuses a malformed length; the body is counted anyway
        return 0

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Connection: close, so the server does not read the rest of the body to reuse the connection.
        response = problem_response(too_large(self.limit), headers={"Connection": "close"})
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, once; then whatever the server says next (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
