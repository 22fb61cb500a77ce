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
