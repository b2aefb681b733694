"""Text written for operations staff in the Temporal UI: summaries of the course, its timers and
its activities. It is left unencrypted on purpose, so staff who watch courses need no decryption
rights; it is therefore built only from codes, step names, numbers and opaque ids.

The mark is an invisible separator (U+2063) the payload codec recognises. Only strings made by
`for_operations` carry it; every other payload, including every other string, is encrypted.
"""

from __future__ import annotations

OPERATIONS_TEXT_MARK = "\u2063"


def for_operations(text: str) -> str:
    return text if text.startswith(OPERATIONS_TEXT_MARK) else OPERATIONS_TEXT_MARK + text


def is_for_operations(value: object) -> bool:
    return isinstance(value, str) and value.startswith(OPERATIONS_TEXT_MARK)
