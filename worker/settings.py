"""Configuration from the environment (12-factor); every field has a working local default."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from workflows.inputs import TASK_QUEUE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    course_task_queue: str = TASK_QUEUE
    database_url: str | None = None
    course_data_dir: Path = Path(".course-data")
    notify_channel: Literal["console"] = "console"
    eligibility_provider: str = "manual"
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    worker_graceful_shutdown_seconds: float = 10.0
    temporal_ui_port: int = 8233
