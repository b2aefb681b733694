"""Fixtures shared by the integration tests."""

from tests.integration.staff_cli import cli

__all__ = ["cli"]
