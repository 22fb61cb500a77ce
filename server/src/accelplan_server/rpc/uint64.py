"""Integers a response carries, checked to fit their uint64 fields.

Every byte and token count the service answers with is a product of request
values (layers x heads x head_dim x context x batch, ...). Each value alone may
be within its cap while the product passes 2**64 - 1, which a uint64 field cannot
carry. ``Fit`` converts each such count on its way into a response message and
raises InvalidArgument naming the request fields whose product is too large.
"""

from __future__ import annotations

import math

from google.protobuf.message import Message

from accelplan_server.core.errors import FieldViolation, InvalidArgument

UINT64_MAX = (1 << 64) - 1
"""Largest value a uint64 field holds."""


def _is_set(request: Message, path: str) -> bool:
    """Whether the request sets the field at a dotted ``path`` (a message field counts when present)."""
    msg: object = request
    for name in path.split("."):
        if not isinstance(msg, Message):
            return False
        field = msg.DESCRIPTOR.fields_by_name.get(name)
        if field is None:
            return False
        if field.message_type is not None and not field.is_repeated:
            if not msg.HasField(name):
                return False
        elif not getattr(msg, name):
            return False
        msg = getattr(msg, name)
    return True


def _expand(request: Message, path: str) -> str:
    """``path``, with a ModelSpec narrowed to the source it sets (``model`` -> ``model.architecture``)."""
    msg: object = request
    for name in path.split("."):
        msg = getattr(msg, name, None)
    if isinstance(msg, Message) and "source" in msg.DESCRIPTOR.oneofs_by_name:
        which = msg.WhichOneof("source")
        if which:
            return f"{path}.{which}"
    return path


class Fit:
    """Converts counts into uint64 response fields for one request.

    ``drivers`` are the request fields (dotted paths) the counts grow with.
    """

    def __init__(self, request: Message, *drivers: str) -> None:
        self.request = request
        self.drivers = drivers

    def __call__(self, field: str, value: float) -> int:
        """``value`` as an int for response field ``field``; InvalidArgument when it is beyond 2**64 - 1."""
        if type(value) is int and value <= UINT64_MAX:  # the common case, first
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise self.too_large(field, value)
        n = int(value)
        if n > UINT64_MAX:
            raise self.too_large(field, value)
        return n

    def too_large(self, field: str, value: float) -> InvalidArgument:
        """The error for a count ``value`` of response field ``field`` that does not fit: one violation per driver."""
        named = [_expand(self.request, d) for d in self.drivers if _is_set(self.request, d)]
        named = named or [_expand(self.request, d) for d in self.drivers]
        description = (
            f"the product of {', '.join(named)} makes the answer's {field} {value:.3g}, "
            f"more than a uint64 holds ({UINT64_MAX:.3g}); make one of them smaller"
        )
        return InvalidArgument([FieldViolation(path, description) for path in named])
