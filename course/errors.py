"""The one way a rule says no."""

from __future__ import annotations


class RuleViolation(Exception):
    """A command breaks a clinical or process rule.

    `code` is stable (tools and tests match on it); `message` is a sentence a clinician can act
    on. Neither ever contains patient data: they are built from codes, step names and numbers.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def require(condition: bool, code: str, message: str) -> None:
    if not condition:
        raise RuleViolation(code, message)
