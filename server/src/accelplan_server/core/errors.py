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
