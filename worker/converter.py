"""The one data converter every client and worker uses.

Pydantic models cross Temporal as JSON. The payload codec (encryption) plugs in here, so the
worker, the CLI and the tests can never disagree about how payloads are encoded.
"""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter


def data_converter() -> DataConverter:
    return pydantic_data_converter
