"""The codec server as the Temporal UI and the `temporal` CLI call it: real sockets, real HTTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import socket
import stat
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import WorkflowSerializationContext

from worker.codec import EncryptionCodec, keyring_from_settings
from worker.codec_server import dev_token_file, parse_tokens, serve, staff_tokens, token_entry
from worker.settings import Settings

pytestmark = pytest.mark.integration

MARKER = "Mary-Seacole-07700-900789"
UI = "http://localhost:8233"
NURSE_TOKEN = "nurse-token-" + "n" * 24
PRESCRIBER_TOKEN = "prescriber-token-" + "p" * 24


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CodecServer:
    url: str
    codec: EncryptionCodec

    async def call(self, method: str, path: str, body: bytes | None = None, **headers: str) -> Reply:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)

        def send() -> Reply:
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return Reply(response.status, dict(response.headers), response.read())
            except urllib.error.HTTPError as error:
                return Reply(error.code, dict(error.headers), error.read())

        return await asyncio.to_thread(send)

    async def decode(self, payloads: list[Payload], **headers: str) -> Reply:
        body = json_format.MessageToJson(Payloads(payloads=payloads)).encode()
        return await self.call("POST", "/decode", body, Content_Type="application/json", **headers)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[CodecServer]:
    settings = Settings(
        course_data_dir=tmp_path,
        payload_keys=f"2026-a:{base64.b64encode(os.urandom(32)).decode()}",
        # The nurse's entry as production stores it (a hash); the prescriber's in the older plain form.
        codec_tokens=f"{token_entry('nurse-7', NURSE_TOKEN)},prescriber-2:{PRESCRIBER_TOKEN}",
        codec_cors_origin=UI,
        temporal_namespace="clinic",
    )
    port, stop = _free_port(), asyncio.Event()
    task = asyncio.create_task(serve(settings, "127.0.0.1", port, stop))
    for _ in range(100):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        await asyncio.sleep(0.05)
    yield CodecServer(f"http://127.0.0.1:{port}", EncryptionCodec(keyring_from_settings(settings)))
    stop.set()
    await asyncio.wait_for(task, 10)


def goals() -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"goals": MARKER}).encode())


async def test_a_nurse_with_their_token_reads_the_patients_goals_in_the_ui(
    server: CodecServer, capfd: pytest.CaptureFixture[str]
) -> None:
    sealed = await server.codec.encode([goals()])
    reply = await server.decode(sealed, Authorization=f"Bearer {NURSE_TOKEN}", Origin=UI, X_Namespace="clinic")
    assert reply.status == 200
    assert json_format.ParseDict(reply.json(), Payloads()).payloads[:] == [goals()]
    assert reply.headers["Access-Control-Allow-Origin"] == UI
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"
    out, err = capfd.readouterr()
    assert "nurse-7" in out + err  # who looked is logged ...
    assert MARKER not in out + err  # ... what they saw is not


async def test_without_a_valid_token_nothing_is_decoded(server: CodecServer) -> None:
    sealed = await server.codec.encode([goals()])
    wrong = ({"Authorization": "Bearer wrong-token-xxxxxxxxxxxxxxxx"}, {"Authorization": NURSE_TOKEN})
    for headers in (*wrong, {"Cookie": "course_codec_session=expired-or-made-up"}):
        reply = await server.decode(sealed, Origin=UI, **headers)
        assert reply.status == 401, headers
        assert MARKER.encode() not in reply.body
        assert reply.headers["Access-Control-Allow-Origin"] == UI  # so the UI can show why


async def test_the_ui_before_anyone_signs_in_gets_the_payloads_back_still_sealed(server: CodecServer) -> None:
    """No credentials at all (the Temporal UI on first open): 200, nothing decoded, so the UI shows
    no error banner; only the sealed payloads come back."""
    sealed = await server.codec.encode([goals()])
    reply = await server.decode(sealed, Origin=UI, X_Namespace="clinic")
    assert reply.status == 200 and reply.headers["X-Course-Codec"].startswith("not-signed-in")
    assert json_format.ParseDict(reply.json(), Payloads()).payloads[:] == sealed
    assert MARKER.encode() not in reply.body
    encode = await server.call("POST", "/encode", reply.body, Origin=UI)
    assert encode.status == 401  # encoding (sending data into a course) always needs a person


async def test_the_ui_origin_passes_the_preflight_and_another_site_does_not(server: CodecServer) -> None:
    allowed = await server.call(
        "OPTIONS",
        "/decode",
        Origin=UI,
        Access_Control_Request_Method="POST",
        Access_Control_Request_Headers="authorization,content-type,x-namespace",
    )
    assert allowed.status == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == UI
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert {h.strip().lower() for h in allowed.headers["Access-Control-Allow-Headers"].split(",")} == {
        "authorization",
        "content-type",
        "x-namespace",
    }
    elsewhere = await server.call("OPTIONS", "/decode", Origin="https://elsewhere.example")
    assert "Access-Control-Allow-Origin" not in elsewhere.headers


async def test_a_browser_signs_in_once_and_the_ui_then_decodes_with_the_session_cookie(server: CodecServer) -> None:
    refused = await server.call("POST", "/login", f"token={PRESCRIBER_TOKEN}x".encode())
    assert refused.status == 401 and "Set-Cookie" not in refused.headers
    signed_in = await server.call("POST", "/login", f"token={PRESCRIBER_TOKEN}".encode())
    assert signed_in.status == 200 and b"prescriber-2" in signed_in.body
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    sealed = await server.codec.encode([goals()])
    reply = await server.decode(sealed, Cookie=cookie.split(";", 1)[0], Origin=UI)
    assert reply.status == 200
    assert json_format.ParseDict(reply.json(), Payloads()).payloads[:] == [goals()]


async def test_encode_then_decode_and_other_namespaces_are_refused(server: CodecServer) -> None:
    nurse = f"Bearer {NURSE_TOKEN}"
    body = json_format.MessageToJson(Payloads(payloads=[goals()])).encode()
    encoded = await server.call("POST", "/encode", body, Authorization=nurse)
    assert encoded.status == 200 and MARKER.encode() not in encoded.body
    sealed = json_format.ParseDict(encoded.json(), Payloads()).payloads
    assert await server.codec.decode(sealed) == [goals()]
    other = await server.decode(list(sealed), Authorization=nurse, X_Namespace="another-clinic")
    assert other.status == 403


async def test_a_payload_under_an_unknown_key_stays_encrypted_while_the_rest_decode(server: CodecServer) -> None:
    [sealed] = await server.codec.encode([goals()])
    foreign = Payload(metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"retired"}, data=sealed.data)
    reply = await server.decode([foreign, sealed], Authorization=f"Bearer {NURSE_TOKEN}")
    assert reply.status == 200
    assert json_format.ParseDict(reply.json(), Payloads()).payloads[:] == [foreign, goals()]


async def test_malformed_requests_get_a_clear_status(server: CodecServer) -> None:
    nurse = f"Bearer {NURSE_TOKEN}"
    assert (await server.call("POST", "/decode", b"not json", Authorization=nurse)).status == 400
    assert (await server.call("GET", "/decode")).status == 405
    assert (await server.call("POST", "/elsewhere", b"{}", Authorization=nurse)).status == 404


async def test_a_payload_bound_to_its_course_decodes_for_the_ui_which_sends_no_workflow_id(
    server: CodecServer,
) -> None:
    in_course = server.codec.with_context(WorkflowSerializationContext(namespace="clinic", workflow_id="course-A"))
    [sealed] = await in_course.encode([goals()])
    assert sealed.metadata["encoding"] == b"binary/encrypted-for-workflow"
    reply = await server.decode([sealed], Authorization=f"Bearer {NURSE_TOKEN}", Origin=UI, X_Namespace="clinic")
    assert reply.status == 200
    assert json_format.ParseDict(reply.json(), Payloads()).payloads[:] == [goals()]


async def test_a_payload_some_client_sent_unencrypted_is_shown_as_it_is_and_logged(
    server: CodecServer, capfd: pytest.CaptureFixture[str]
) -> None:
    reply = await server.decode([goals()], Authorization=f"Bearer {NURSE_TOKEN}")
    assert reply.status == 200
    assert json_format.ParseDict(reply.json(), Payloads()).payloads[:] == [goals()]
    out, err = capfd.readouterr()
    assert "payload is not encrypted" in out + err and MARKER not in out + err


def test_tokens_are_stored_as_hashes_per_staff_member_and_plain_ones_still_read(
    capfd: pytest.CaptureFixture[str],
) -> None:
    nurse = hashlib.sha256(NURSE_TOKEN.encode()).digest()
    assert token_entry("nurse-7", NURSE_TOKEN) == f"nurse-7:sha256:{nurse.hex()}"
    assert parse_tokens(f" nurse-7:sha256:{nurse.hex().upper()} ,prescriber-2:{PRESCRIBER_TOKEN}") == {
        "nurse-7": nurse,
        "prescriber-2": hashlib.sha256(PRESCRIBER_TOKEN.encode()).digest(),
    }
    out, err = capfd.readouterr()
    assert "prescriber-2" in out + err and "plain tokens" in out + err  # named, so it gets replaced
    assert PRESCRIBER_TOKEN not in out + err
    with pytest.raises(ValueError, match="16"):
        parse_tokens("nurse-7:short")
    with pytest.raises(ValueError, match="64 hex"):
        parse_tokens("nurse-7:sha256:abc")


def test_in_development_one_private_token_is_created_for_the_developer(tmp_path: Path) -> None:
    settings = Settings(course_data_dir=tmp_path, codec_tokens=None)
    tokens = staff_tokens(settings)
    assert dev_token_file(settings) == tmp_path / "codec-token"
    assert stat.S_IMODE((tmp_path / "codec-token").stat().st_mode) == 0o600
    token = (tmp_path / "codec-token").read_text().strip()
    assert staff_tokens(settings) == tokens == {"developer": hashlib.sha256(token.encode()).digest()}
    assert len(token) >= 32
