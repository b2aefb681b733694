"""A clearinghouse on 127.0.0.1 for tests: answers 270s with scripted, recorded-shape 271s.

Each member id has a script: a list of replies served in order (the last one repeats), so a test
can say "503, then an active 271". Every request is kept for the test to inspect.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    delay: float = 0.0


@dataclass
class Clearinghouse:
    url: str
    scripts: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    served: dict[str, int] = field(default_factory=dict)

    def script(self, member_id: str, *replies: Reply) -> None:
        self.scripts[member_id] = list(replies)
        self.served[member_id] = 0

    def next_reply(self, member_id: str) -> Reply:
        replies = self.scripts.get(member_id) or [Reply(404, {"message": "no script"})]
        served = self.served.get(member_id, 0)
        self.served[member_id] = served + 1
        return replies[min(served, len(replies) - 1)]


def _handler(house: Clearinghouse) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            house.requests.append(request)
            house.headers.append(dict(self.headers))
            reply = house.next_reply(str(request.get("subscriber", {}).get("memberId")))
            if reply.delay:
                time.sleep(reply.delay)
            payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler


@contextmanager
def running_clearinghouse(tls: ssl.SSLContext | None = None) -> Iterator[Clearinghouse]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Clearinghouse(url="")))
    house = Clearinghouse(url=f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}/eligibility/v3")
    server.RequestHandlerClass = _handler(house)
    server.daemon_threads = True
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield house
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
