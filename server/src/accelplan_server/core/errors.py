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
    """A named thing (a catalogue model, an accelerator sku) does not exist; ``suggestions`` are the closest names."""

    def __init__(
        self, field: str, description: str, *, reason: str = "", name: str = "", suggestions: tuple[str, ...] = ()
    ) -> None:
        self.field = field
        self.description = description
        self.reason = reason
        """UNKNOWN_MODEL or UNKNOWN_SKU (google.rpc.ErrorInfo.reason); empty for other things."""
        self.name = name
        self.suggestions = suggestions
        super().__init__(f"{field}: {description}")


def invalid(field: str, description: str) -> InvalidArgument:
    """An InvalidArgument with a single violation."""
    return InvalidArgument([FieldViolation(field, description)])


@dataclass(frozen=True)
class Precondition:
    """One unmet condition: its type (``PRECISION``, ``MEMORY``), the subject it is about, and why."""

    type: str
    subject: str
    description: str


class FailedPrecondition(Exception):
    """The request is well formed but the hardware cannot do what it asks (a precision it lacks)."""

    def __init__(self, violations: list[Precondition]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{v.subject}: {v.description}" for v in violations))


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
