"""Codec server: authorised staff read encrypted payloads in the Temporal UI, nobody else does.

Temporal's remote codec protocol: POST `/decode` and `/encode` take and return `{"payloads": [...]}`
in protobuf JSON; the UI sends `X-Namespace` and, with "Pass the user access token", the
`Authorization` header of its own sign-in. Staff authenticate with a personal bearer token
(`CODEC_TOKENS` holds only its sha256): the `temporal` CLI sends it with
`--codec-auth "Bearer <token>"`; a browser signs in once at `/login` and the UI, with "Include
cross-origin credentials", then sends the session cookie (the dev UI has no sign-in of its own, so
there is no access token for it to pass).

Standard library only (asyncio streams): one request per connection, bounded size and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import json
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import structlog
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from worker.codec import EncryptionCodec, PayloadCodecError, keyring_from_settings, private_file
from worker.logging import configure_logging
from worker.settings import Settings
from worker.signals import until_signalled

log = structlog.get_logger(__name__)

DEV_TOKEN_FILE = "codec-token"  # noqa: S105 - a file name, not a secret
DEV_STAFF_ID = "developer"
SESSION_COOKIE = "course_codec_session"
SESSION_SECONDS = 8 * 3600  # one clinic shift, then sign in again
MAX_BODY_BYTES = 16 * 1024 * 1024  # a page of history; Temporal caps one payload at 2 MiB
READ_TIMEOUT_SECONDS = 15.0
MIN_TOKEN_LENGTH = 16
HASHED = "sha256:"  # a CODEC_TOKENS entry holding the token's hash, not the token
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"


class HttpError(Exception):
    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class Request:
    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes = b""


@dataclass
class Response:
    status: HTTPStatus
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def parse_tokens(spec: str) -> dict[str, bytes]:
    """`CODEC_TOKENS` (`staff_id:sha256:<hex>,...`) as staff id -> sha256 of the staff member's token.

    Only the hash need be configured, so the secret store and the process environment hold nothing
    that signs anyone in. A plain `staff_id:token` entry (the format before hashing) still works,
    hashed on reading, with a warning naming the staff id, until the operator replaces it.
    """
    tokens: dict[str, bytes] = {}
    plain: list[str] = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        staff, sep, token = entry.partition(":")
        if not sep or not staff:
            raise ValueError("CODEC_TOKENS entries are `staff_id:sha256:<64 hex digits>`")
        if token.startswith(HASHED):
            try:
                digest = bytes.fromhex(token.removeprefix(HASHED))
            except ValueError:
                digest = b""
            if len(digest) != hashlib.sha256().digest_size:
                raise ValueError(f"CODEC_TOKENS entry for {staff!r}: `sha256:` needs 64 hex digits")
            tokens[staff] = digest
        elif len(token) >= MIN_TOKEN_LENGTH:
            tokens[staff] = _digest(token)
            plain.append(staff)
        else:
            raise ValueError(
                f"CODEC_TOKENS entries are `staff_id:sha256:<hex>` (or a plain token of {MIN_TOKEN_LENGTH}+ characters)"
            )
    if not tokens:
        raise ValueError("CODEC_TOKENS is set but holds no tokens")
    if plain:
        log.warning(
            "CODEC_TOKENS holds plain tokens; replace each with its hash (python -m worker.codec_server hash)",
            staff=plain,
        )
    return tokens


def staff_tokens(settings: Settings) -> dict[str, bytes]:
    """Staff id -> sha256 of their token; in development, the one token in the data folder."""
    if settings.codec_tokens is not None:
        return parse_tokens(settings.codec_tokens.get_secret_value())
    path = settings.course_data_dir / DEV_TOKEN_FILE
    # The developer pastes this token into /login, so the file keeps it whole (0600, local only).
    token, created = private_file(path, lambda: secrets.token_urlsafe(32) + "\n")
    if created:
        log.warning("created a local codec token; production must set CODEC_TOKENS", path=str(path))
    return {DEV_STAFF_ID: _digest(token.strip())}


def token_entry(staff: str, token: str) -> str:
    """The `CODEC_TOKENS` entry for a staff member's token: its hash, never the token."""
    return f"{staff}:{HASHED}{_digest(token).hex()}"


def dev_token_file(settings: Settings) -> Path | None:
    """Where the development token lives, or None when CODEC_TOKENS configures real staff tokens."""
    return None if settings.codec_tokens is not None else settings.course_data_dir / DEV_TOKEN_FILE


def ui_codec_endpoint(settings: Settings, port: int | None = None) -> str:
    """The URL the browser calls: for `temporal server start-dev --ui-codec-endpoint`."""
    host = settings.codec_server_host
    shown = "localhost" if host in {"127.0.0.1", "0.0.0.0", "::", "::1", "localhost"} else host  # noqa: S104
    return f"http://{shown}:{port or settings.codec_server_port}"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class CodecHttp:
    def __init__(self, codec: EncryptionCodec, tokens: Mapping[str, bytes], origin: str, namespace: str) -> None:
        """`tokens`: staff id -> sha256 of their token (see `parse_tokens`)."""
        self._codec = codec
        self._tokens = list(tokens.items())
        self._origin = origin
        self._namespace = namespace
        self._sessions: dict[str, tuple[str, float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> CodecHttp:
        codec = EncryptionCodec(keyring_from_settings(settings))
        return cls(codec, staff_tokens(settings), settings.codec_cors_origin, settings.temporal_namespace)

    async def handle(self, request: Request) -> Response:
        action = request.path.rstrip("/").rsplit("/", 1)[-1]
        if request.method == "OPTIONS":
            response = Response(HTTPStatus.NO_CONTENT, content_type="")
            if request.headers.get("origin") == self._origin:
                response.headers |= {
                    "Access-Control-Allow-Methods": "POST, OPTIONS",
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": "600",
                }
        elif action in {"decode", "encode"}:
            if request.method == "POST":
                response = await self._transform(request, action)
            else:
                response = _json_error(HTTPStatus.METHOD_NOT_ALLOWED, f"POST /{action}")
                response.headers["Allow"] = "POST, OPTIONS"
        elif action == "login" and request.method in {"GET", "POST"}:
            response = self._login(request)
        elif action == "logout" and request.method == "POST":
            self._sessions.pop(self._cookie(request) or "", None)
            response = _page(HTTPStatus.OK, "Signed out.", cookie=f"{SESSION_COOKIE}=; Max-Age=0")
        else:
            response = _json_error(HTTPStatus.NOT_FOUND, "POST /decode or /encode")
        if request.headers.get("origin") == self._origin:
            response.headers["Access-Control-Allow-Origin"] = self._origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
        return response

    async def _transform(self, request: Request, action: str) -> Response:
        staff = self._staff(request)
        anonymous = staff is None and not self._presents_credentials(request)
        if staff is None and not (anonymous and action == "decode"):
            response = _json_error(HTTPStatus.UNAUTHORIZED, "a staff token is required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="course-codec"'
            return response
        namespace = request.headers.get("x-namespace") or self._namespace
        if namespace != self._namespace:
            return _json_error(HTTPStatus.FORBIDDEN, f"this codec serves namespace {self._namespace!r} only")
        try:
            payloads = json_format.Parse(request.body, Payloads())
        except (json_format.ParseError, UnicodeDecodeError):
            return _json_error(HTTPStatus.BAD_REQUEST, 'expected {"payloads": [...]} in protobuf JSON')
        if staff is None:
            # The Temporal UI asks on every page, before anyone signs in (operations never need
            # to): the payloads go back as they came, still sealed, so the UI opens without an
            # error banner and shows the summaries and search attributes it reads in plaintext.
            # A wrong token or an expired session is still a 401: the person meant to sign in.
            response = Response(HTTPStatus.OK, request.body)
            response.headers["X-Course-Codec"] = "not-signed-in; nothing decoded"
            return response
        if action == "encode":
            out = await self._codec.encode(payloads.payloads)
        else:
            out = [await self._decode_one(payload, staff) for payload in payloads.payloads]
        # Who looked, how much, where: never what.
        log.info(f"payloads {action}d", staff=staff, count=len(out), namespace=namespace)
        return Response(HTTPStatus.OK, json_format.MessageToJson(Payloads(payloads=out), indent=None).encode())

    async def _decode_one(self, payload: Payload, staff: str) -> Payload:
        # The UI sends payloads only, no workflow id (the protocol carries none): a payload bound
        # to a course decrypts under the id it names, which the tag authenticates. So the UI shows
        # what a course's payload really is, and a copy in another course shows as its origin's;
        # refusing it there is the worker's job, which knows the course it reads for.
        try:
            return self._codec.unseal(payload)
        except PayloadCodecError as error:
            # The rest of the page still decodes; this payload stays as it came (encrypted, or a
            # plaintext payload some client sent without the codec, which the worker refused).
            log.warning("payload not decoded", staff=staff, reason=str(error))
            return payload

    def _presents_credentials(self, request: Request) -> bool:
        return bool(request.headers.get("authorization", "").strip() or self._cookie(request))

    def _staff(self, request: Request) -> str | None:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and presented.strip():
            return self._staff_for_token(presented.strip())
        staff, expires = self._sessions.get(self._cookie(request) or "", ("", 0.0))
        return staff if staff and time.monotonic() < expires else None

    def _staff_for_token(self, presented: str) -> str | None:
        digest, found = _digest(presented), None
        for staff, expected in self._tokens:  # every token compared, in constant time each
            if hmac.compare_digest(digest, expected):
                found = staff
        return found

    @staticmethod
    def _cookie(request: Request) -> str | None:
        try:
            morsel = SimpleCookie(request.headers.get("cookie", "")).get(SESSION_COOKIE)
        except CookieError:
            return None
        return morsel.value if morsel else None

    def _login(self, request: Request) -> Response:
        if request.method == "GET":
            return _page(HTTPStatus.OK, _LOGIN_FORM)
        presented = parse_qs(request.body.decode(errors="replace")).get("token", [""])[0].strip()
        staff = self._staff_for_token(presented) if presented else None
        if staff is None:
            return _page(HTTPStatus.UNAUTHORIZED, "<p>That token is not valid.</p>" + _LOGIN_FORM)
        session = secrets.token_urlsafe(32)
        self._sessions = {k: v for k, v in self._sessions.items() if v[1] > time.monotonic()}
        self._sessions[session] = (staff, time.monotonic() + SESSION_SECONDS)
        log.info("codec sign-in", staff=staff)
        secure = "; Secure" if self._origin.startswith("https://") else ""
        cookie = f"{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_SECONDS}{secure}"
        text = (
            f"<p>Signed in as {html.escape(staff)}. In the Temporal UI's codec server settings, turn on "
            "<em>Include cross-origin credentials</em>; encrypted payloads then show decoded.</p>"
        )
        return _page(HTTPStatus.OK, text, cookie=cookie)


_LOGIN_FORM = (
    '<form method="post" action="login"><label>Staff codec token '
    '<input type="password" name="token" autocomplete="current-password" autofocus></label> '
    '<button type="submit">Sign in</button></form>'
)


def _page(status: HTTPStatus, body: str, cookie: str | None = None) -> Response:
    document = f"<!doctype html><title>Course codec server</title><h1>Course codec server</h1>{body}"
    response = Response(status, document.encode(), "text/html; charset=utf-8")
    if cookie:
        response.headers["Set-Cookie"] = cookie
    return response


def _json_error(status: HTTPStatus, message: str) -> Response:
    return Response(status, json.dumps({"error": message}).encode())


async def _read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request:
    try:
        method, target, _version = (await reader.readuntil(b"\r\n")).decode("latin-1").split()
        headers: dict[str, str] = {}
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
            if len(headers) > 100:
                raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many headers")
        length = int(headers.get("content-length", "0"))
        if "transfer-encoding" in headers:
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "send Content-Length, not chunked")
        if not 0 <= length <= MAX_BODY_BYTES:
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await reader.readexactly(length)
    except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise HttpError(HTTPStatus.BAD_REQUEST, "malformed request") from None
    return Request(method.upper(), urlsplit(target).path, headers, body)


def _render(response: Response) -> bytes:
    headers = {
        "Content-Length": str(len(response.body)),
        "Connection": "close",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        **({"Content-Type": response.content_type} if response.content_type else {}),
        **response.headers,
    }
    head = f"HTTP/1.1 {response.status.value} {response.status.phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (head + "\r\n").encode("latin-1") + response.body


async def start(settings: Settings, host: str | None = None, port: int | None = None) -> asyncio.Server:
    """Listen (port 0: any free port) and answer until the returned server is closed."""
    app = CodecHttp.from_settings(settings)

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                request = await asyncio.wait_for(_read_request(reader, writer), READ_TIMEOUT_SECONDS)
                response = await app.handle(request)
            except HttpError as error:
                response = _json_error(error.status, str(error))
            except TimeoutError:
                response = _json_error(HTTPStatus.REQUEST_TIMEOUT, "request not received in time")
            except Exception:  # one bad request must not take the server down; logged with its trace
                log.exception("codec request failed")
                response = _json_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")
            writer.write(_render(response))
            await writer.drain()
        except ConnectionError:
            pass  # the browser went away; nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(
        connection,
        host or settings.codec_server_host,
        settings.codec_server_port if port is None else port,
    )


async def serve(
    settings: Settings, host: str | None = None, port: int | None = None, stop_event: asyncio.Event | None = None
) -> None:
    """Run the codec server until `stop_event` is set (for `course codec-server` and `course dev`)."""
    server = await start(settings, host, port)
    bound = server.sockets[0].getsockname()[1]
    log.info("codec server listening", endpoint=ui_codec_endpoint(settings, bound), ui=settings.codec_cors_origin)
    async with server:
        await (stop_event or asyncio.Event()).wait()
    log.info("codec server stopped")


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)

    asyncio.run(until_signalled(lambda stop: serve(settings, stop_event=stop)))


def hash_tokens() -> None:
    """`python -m worker.codec_server hash`: a new token per staff id given on stdin (one a line),
    printed with the CODEC_TOKENS entry that holds only its hash. Hand the token to the person;
    put the entry in the secret store."""
    entries = []
    for staff in filter(None, (line.strip() for line in sys.stdin)):
        token = secrets.token_urlsafe(32)
        print(f"{staff} token (give to them, once): {token}")
        entries.append(token_entry(staff, token))
    print("CODEC_TOKENS=" + ",".join(entries))


if __name__ == "__main__":
    hash_tokens() if sys.argv[1:] == ["hash"] else main()
