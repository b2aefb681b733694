"""Configuration from the environment (12-factor); every field has a working local default."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from course.publication import DEFAULT_POLICY_NAME, POLICY_NAME_PATTERN
from workflows.inputs import TASK_QUEUE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    course_task_queue: str = TASK_QUEUE
    database_url: str | None = None
    course_data_dir: Path = Path(".course-data")
    notify_channel: Literal["console", "smtp"] = "console"
    eligibility_provider: str = "manual"
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    worker_graceful_shutdown_seconds: float = 10.0
    # Courses kept in worker memory between workflow tasks. Measured (bench/RESULTS.md): 1,000
    # holds the worker at about 320 MiB however many courses are open (10,000: 318 MiB); without a
    # bound, 10,000 open courses took 1.8 GiB. An evicted course replays its run's history (at most
    # about 2,000 events) on its next task, which maintenance courses have every few months.
    worker_max_cached_workflows: int = 1000
    temporal_ui_port: int = 8233
    # Bulk FHIR exports (interop/bulk.py): workers write each export's NDJSON files and manifest
    # here, the API serves them from here, so on more than one host it is shared storage. Unset:
    # COURSE_DATA_DIR/fhir-exports.
    fhir_export_dir: Path | None = None
    # Courses per batch of a bulk export: held in memory at once, and redone after a restart.
    fhir_export_batch_courses: int = Field(100, ge=1, le=10_000)
    # How long `course record` (and hold, release, ...) waits for a course's answer before saying
    # so, naming the request id to retry with; with no worker polling, "no worker is serving courses".
    step_deadline_seconds: float = 30.0

    # Payload encryption (worker/codec.py): `id:base64key,...` and the id new payloads use.
    # Unset keys: a local keyring file under course_data_dir (development only).
    payload_keys: SecretStr | None = None
    payload_key_id: str | None = None
    # Signed steps (trust/signing.py): the edge's Ed25519 key `id:base64 seed` (the API; keep it
    # off workers) and the public keys workers accept, `id:base64,...` (rotation: add the new
    # key's public half everywhere, then switch SIGNING_KEY, then retire the old one). Neither
    # set: a local key under course_data_dir (development only).
    signing_key: SecretStr | None = None
    verify_keys: str | None = None
    # Break-glass (trust/signing.py): an operator's own key `id:base64 seed` (their shell only),
    # and the break-glass public keys workers accept, `id:base64,...`. Unset on a laptop (no
    # VERIFY_KEYS): a local break-glass key under course_data_dir.
    break_glass_key: SecretStr | None = None
    break_glass_verify_keys: str | None = None
    # Codec server for the Temporal UI (worker/codec_server.py): `staff_id:token,...`.
    # Unset tokens: one generated into course_data_dir/codec-token (development only).
    codec_tokens: SecretStr | None = None
    codec_cors_origin: str = "http://localhost:8233"
    codec_server_host: str = "127.0.0.1"
    codec_server_port: int = 8081

    # HTTP API and clinician console (api/): where `course api` / `course dev` listen, and staff
    # tokens from configuration as `staff_id:role:sha256hex,...` (hashes only; the `staff` table,
    # filled by `course staff add`, holds more). API_SECURE_COOKIES: the console's cookie is
    # `Secure` unless this is false, which only `course dev` (http://localhost) sets.
    # API_PUBLIC_ORIGIN: the origin staff browse to (`https://course.clinic.example`, behind the TLS
    # proxy); console POSTs from any other Origin are refused. Unset: the request's own scheme and
    # host, which is right only without a proxy (local development).
    # CONSOLE_IDLE_MINUTES / CONSOLE_SESSION_HOURS: a console session ends after this long without
    # a request, and this long after sign-in whatever happens.
    # API_MAX_BODY_BYTES: larger request bodies are refused (413) before the token is checked.
    api_host: str = "127.0.0.1"
    api_port: int = 8082
    # Where the `course` CLI finds the API for staff commands (unset: http://localhost:API_PORT).
    api_url: str | None = None
    api_tokens: SecretStr | None = None
    api_secure_cookies: bool = True
    api_public_origin: str | None = None
    console_idle_minutes: int = Field(30, ge=1, le=24 * 60)
    console_session_hours: int = Field(10, ge=1, le=7 * 24)
    api_max_body_bytes: int = Field(64 * 1024, ge=1024)

    # Eligibility (activities/x12.py), used when ELIGIBILITY_PROVIDER=x12_http: the clearinghouse's
    # real-time 270/271 JSON endpoint, the clinic's NPI, and its API key (sent as Authorization).
    eligibility_url: str | None = None
    eligibility_provider_npi: str | None = None
    eligibility_organization_name: str = ""
    eligibility_api_key: SecretStr | None = None
    eligibility_timeout_seconds: float = 20.0
    eligibility_ca_bundle: Path | None = None

    # Notifications (activities/channels.py, activities/templates.py). NOTIFY_CHANNEL=smtp sends mail
    # through this relay; SMTP_TLS: starttls (587) | implicit (465) | none (a relay on localhost).
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "reminders@treatment-courses.invalid"
    smtp_from_name: str | None = None
    smtp_tls: Literal["none", "starttls", "implicit"] = "starttls"
    smtp_timeout_seconds: float = 20.0
    smtp_ca_bundle: Path | None = None
    # Operations' team mailbox; unset: the `operations` row of staff_contacts.
    notify_operations_email: str | None = None
    # What patient messages say about the clinic, and the zone their times are shown in.
    clinic_name: str = "the clinic"
    clinic_phone: str | None = None
    clinic_time_zone: str = "UTC"
    # The published policy (`course policy publish`) courses open on unless they name another;
    # `default` is published by migrations/0007_policies.sql until a clinic admin publishes more.
    clinic_policy: str = Field(DEFAULT_POLICY_NAME, pattern=POLICY_NAME_PATTERN)

    # The clinic's schedules (worker/schedules.py, workflows/clinic.py), created by `course dev` and
    # `course setup-cluster`. HUDDLE_AT: the morning huddle's local time (HH:MM) in
    # HUDDLE_TIME_ZONE (IANA; unset: CLINIC_TIME_ZONE). The reconciliation runs every
    # RECONCILE_EVERY_MINUTES; a notification `sending` for longer than
    # RECONCILE_STUCK_SENDING_MINUTES is stuck; a disagreement must be seen twice,
    # RECONCILE_CONFIRM_SECONDS apart (a step in flight is stored a moment before it is folded).
    huddle_at: str = Field("07:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    huddle_time_zone: str | None = None
    reconcile_every_minutes: int = Field(60, ge=5, le=24 * 60)
    reconcile_stuck_sending_minutes: int = Field(10, ge=1, le=24 * 60)
    reconcile_confirm_seconds: float = Field(2.0, ge=0, le=60)

    # Production (worker/telemetry.py, worker/health.py). METRICS_BIND: Prometheus endpoint of the
    # SDK runtime (`0.0.0.0:9464`), HEALTH_BIND: GET /healthz (`0.0.0.0:8080`); unset: off.
    metrics_bind: str | None = None
    health_bind: str | None = None
    # Temporal Cloud or a secured cluster. TEMPORAL_TLS=true turns TLS on (system roots unless
    # TEMPORAL_TLS_CA); TEMPORAL_TLS_CERT + TEMPORAL_TLS_KEY add a client certificate (mTLS), and
    # imply TLS; TEMPORAL_API_KEY is sent as a bearer token (and implies TLS too).
    temporal_tls: bool = False
    temporal_tls_ca: Path | None = None
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None

    @field_validator("huddle_time_zone")
    @classmethod
    def _a_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        return value

    @property
    def huddle_zone(self) -> str:
        return self.huddle_time_zone or self.clinic_time_zone

    def export_dir(self) -> Path:
        return self.fhir_export_dir or self.course_data_dir / "fhir-exports"

    @field_validator("api_public_origin", mode="before")
    @classmethod
    def _an_origin(cls, value: object) -> object:
        return public_origin(value) if isinstance(value, str) else value


def public_origin(value: str) -> str | None:
    """`scheme://host[:port]` as a browser sends it in `Origin` (lower case, no default port, no
    path); empty: None. Anything else is refused, so a typo cannot turn the check off."""
    value = value.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError("API_PUBLIC_ORIGIN is `https://host[:port]`, with no path")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("API_PUBLIC_ORIGIN is `https://host[:port]`, with no path")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"
