"""Errors the core raises for bad input; the transport maps them to status codes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its path in the request (``fleet.accelerators[2].memory_bytes``) and why."""

    field: str
    description: str


class InvalidArgument(Exception):
    """The request is malformed; nothing was computed."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))


class NotFound(Exception):
    """A named thing (a catalogue model, an accelerator sku) does not exist."""

    def __init__(self, field: str, description: str) -> None:
        self.field = field
        self.description = description
        super().__init__(f"{field}: {description}")


def invalid(field: str, description: str) -> InvalidArgument:
    """An InvalidArgument with a single violation."""
    return InvalidArgument([FieldViolation(field, description)])


MAX_SHOWN_CHARS = 64
"""Longest piece of a request echoed back in an error."""


def shown(value: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """``value`` as an error message shows it: repr'd, long integers and strings cut, saying how long they were."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > 14_000:  # past what str() converts (4,300 digits): give its size instead
            return f"{'-' if value < 0 else ''}an integer of {value.bit_length()} bits"
        digits = str(abs(value))
        if len(digits) > 24:
            return f"{'-' if value < 0 else ''}{digits[:12]}... ({len(digits)} digits)"
        return str(value)
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(text) if isinstance(value, str) else text
    cut = text[:limit]
    return f"{cut!r}... ({len(text)} characters)" if isinstance(value, str) else f"{cut}... ({len(text)} characters)"
