"""How the worker talks to a production cluster: SDK metrics (Prometheus) and TLS / API key.

A `Runtime` owns the SDK's metrics exporter, and its Prometheus endpoint binds a port for the life
of the process; so one runtime is made per bind address and reused (a second `Runtime` on the same
address would fail to bind).
"""

from __future__ import annotations

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from worker.settings import Settings

_runtimes: dict[str, Runtime] = {}


class MisconfiguredTLS(Exception):
    """TLS settings that cannot work (a certificate without its key, an unreadable file)."""


def metrics_runtime(bind_address: str) -> Runtime:
    """The process's runtime exporting SDK metrics on `bind_address` (created once per address)."""
    runtime = _runtimes.get(bind_address)
    if runtime is None:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))
        _runtimes[bind_address] = runtime
    return runtime


def runtime_for(settings: Settings) -> Runtime | None:
    """The metrics runtime when METRICS_BIND is set; None: the SDK's default runtime."""
    return metrics_runtime(settings.metrics_bind) if settings.metrics_bind else None


def _read(path: object, what: str) -> bytes:
    try:
        with open(str(path), "rb") as file:
            return file.read()
    except OSError as error:
        raise MisconfiguredTLS(f"{what}: cannot read {path}: {error.strerror}") from None


def tls_config(settings: Settings) -> bool | TLSConfig:
    """False: plaintext. True: TLS with the system roots. A TLSConfig: custom CA, mTLS, SNI name.

    A client certificate or an API key implies TLS (Temporal Cloud refuses either over plaintext).
    """
    if bool(settings.temporal_tls_cert) != bool(settings.temporal_tls_key):
        raise MisconfiguredTLS("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together")
    custom = settings.temporal_tls_ca or settings.temporal_tls_cert or settings.temporal_tls_server_name
    if not custom:
        return settings.temporal_tls or api_key(settings) is not None
    return TLSConfig(
        server_root_ca_cert=_read(settings.temporal_tls_ca, "TEMPORAL_TLS_CA") if settings.temporal_tls_ca else None,
        domain=settings.temporal_tls_server_name,
        client_cert=_read(settings.temporal_tls_cert, "TEMPORAL_TLS_CERT") if settings.temporal_tls_cert else None,
        client_private_key=_read(settings.temporal_tls_key, "TEMPORAL_TLS_KEY") if settings.temporal_tls_key else None,
    )


def api_key(settings: Settings) -> str | None:
    """TEMPORAL_API_KEY, or None when unset or empty (an empty variable from a compose default)."""
    return (settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None) or None
