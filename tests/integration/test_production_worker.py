"""The production worker in-process against the real dev server and PostgreSQL: SDK metrics on
METRICS_BIND, GET /healthz on HEALTH_BIND; and the TLS settings turned into the SDK's TLSConfig."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from application.courses import CourseClient
from tests import story
from tests.conftest import task_queue
from worker.health import Health, serve_health
from worker.main import connect, run_worker
from worker.settings import Settings
from worker.telemetry import MisconfiguredTLS, api_key, metrics_runtime, runtime_for, tls_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningWorker:
    settings: Settings
    client: CourseClient
    metrics_url: str
    health_url: str
    stop: asyncio.Event
    task: asyncio.Task[None]


async def _wait_healthy(url: str, task: asyncio.Task[None], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient() as http:
        while asyncio.get_running_loop().time() < deadline:
            if task.done():
                task.result()  # the worker failed to start: raise its error
                raise AssertionError("the worker exited before it became healthy")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered 200")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def production_worker(dev_env: WorkflowEnvironment, pg_dsn: str) -> AsyncIterator[RunningWorker]:
    """`run_worker` as `course worker` runs it, with metrics and health on free local ports.

    The Prometheus runtime binds its port for the life of the process: it is created once, here."""
    metrics_bind, health_bind = f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"
    settings = Settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        temporal_namespace=dev_env.client.namespace,
        course_task_queue=task_queue(),
        eligibility_provider="self_pay",
        metrics_bind=metrics_bind,
        health_bind=health_bind,
        worker_graceful_shutdown_seconds=1.0,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, pg_dsn, stop))
    try:
        await _wait_healthy(f"http://{health_bind}/healthz", task)
        # A CourseClient on the same (metrics) runtime, the way `course` would connect with these settings.
        client = CourseClient(await connect(settings), settings.course_task_queue)
        yield RunningWorker(
            settings, client, f"http://{metrics_bind}/metrics", f"http://{health_bind}/healthz", stop, task
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        for sig in (signal.SIGINT, signal.SIGTERM):  # run_worker took them over; give them back
            loop.remove_signal_handler(sig)


@pytest.mark.integration
async def test_metrics_endpoint_serves_temporal_sdk_metrics(production_worker: RunningWorker) -> None:
    client = production_worker.client
    course = await client.open(story.opening())
    await client.record(course, story.assessment(), story.PRESCRIBER)
    assert (await client.status(course)).phase is not None
    assert runtime_for(production_worker.settings) is metrics_runtime(production_worker.settings.metrics_bind or "")

    async with httpx.AsyncClient() as http:
        for _ in range(50):  # the worker's histograms are exported shortly after the task completes
            response = await http.get(production_worker.metrics_url)
            assert response.status_code == 200
            names = {line.split("{", 1)[0].split(" ", 1)[0] for line in response.text.splitlines()}
            if any(n.startswith("temporal_workflow_task_execution_latency") for n in names):
                break
            await asyncio.sleep(0.2)
    sdk = {n for n in names if n.startswith("temporal_")}
    assert any(n.startswith("temporal_request") for n in sdk), sorted(sdk)
    assert any(n.startswith("temporal_workflow_task_execution_latency") for n in sdk), sorted(sdk)
    assert any(n.startswith("temporal_activity_execution_latency") for n in sdk), sorted(sdk)


@pytest.mark.integration
async def test_healthz_is_200_while_the_worker_runs(production_worker: RunningWorker) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(production_worker.health_url)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "worker": "running", "database": "ok"}
        assert (await http.get(production_worker.health_url.replace("/healthz", "/nope"))).status_code == 404
        assert (await http.post(production_worker.health_url)).status_code == 405


async def test_healthz_is_503_when_the_database_fails_or_the_worker_is_not_running() -> None:
    async def broken() -> object:
        raise ConnectionRefusedError

    async def fine() -> object:
        return 1

    bind = f"127.0.0.1:{_free_port()}"
    health = Health(fine)
    server = await serve_health(health, bind)
    try:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://{bind}/healthz")
            assert response.status_code == 503
            assert response.json()["worker"] == "stopped"
            health.running = True
            assert (await http.get(f"http://{bind}/healthz")).status_code == 200
            health._database = broken
            response = await http.get(f"http://{bind}/healthz")
            assert response.status_code == 503
            assert response.json()["database"] == "error: ConnectionRefusedError"
    finally:
        server.close()
        await server.wait_closed()


# --- TLS settings -------------------------------------------------------------------------------


def _pem_pair(
    folder: Path, name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .sign(issuer[1] if issuer else key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key, cert_path, key_path


def test_mtls_settings_become_the_sdk_tls_config(tmp_path: Path) -> None:
    ca, ca_key, ca_path, _ = _pem_pair(tmp_path, "clinic-ca")
    _, _, cert_path, key_path = _pem_pair(tmp_path, "worker", issuer=(ca, ca_key))
    settings = Settings(
        temporal_tls=True,
        temporal_tls_ca=ca_path,
        temporal_tls_cert=cert_path,
        temporal_tls_key=key_path,
        temporal_tls_server_name="temporal.clinic.internal",
    )
    assert tls_config(settings) == TLSConfig(
        server_root_ca_cert=ca_path.read_bytes(),
        domain="temporal.clinic.internal",
        client_cert=cert_path.read_bytes(),
        client_private_key=key_path.read_bytes(),
    )
    loaded = tls_config(settings)
    assert isinstance(loaded, TLSConfig) and loaded.client_cert is not None
    assert x509.load_pem_x509_certificate(loaded.client_cert).issuer == ca.subject


def test_tls_settings_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, ca_path, _ = _pem_pair(tmp_path, "ca")
    monkeypatch.setenv("TEMPORAL_TLS", "true")
    monkeypatch.setenv("TEMPORAL_TLS_CA", str(ca_path))
    assert tls_config(Settings()) == TLSConfig(server_root_ca_cert=ca_path.read_bytes())


def test_plaintext_system_roots_and_api_key() -> None:
    assert tls_config(Settings()) is False
    assert tls_config(Settings(temporal_tls=True)) is True
    # Temporal Cloud API keys travel over TLS only.
    with_key = Settings(temporal_api_key=SecretStr("k-123"))
    assert tls_config(with_key) is True
    assert api_key(with_key) == "k-123"
    assert api_key(Settings(temporal_api_key=SecretStr(""))) is None  # empty variable: no key
    assert tls_config(Settings(temporal_api_key=SecretStr(""))) is False


def test_half_configured_mtls_refuses_to_start(tmp_path: Path) -> None:
    _, _, cert_path, _ = _pem_pair(tmp_path, "worker")
    with pytest.raises(MisconfiguredTLS, match="together"):
        tls_config(Settings(temporal_tls_cert=cert_path))
    with pytest.raises(MisconfiguredTLS, match="TEMPORAL_TLS_CA"):
        tls_config(Settings(temporal_tls=True, temporal_tls_ca=tmp_path / "missing.pem"))
