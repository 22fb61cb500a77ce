"""Recent answers of RPCs whose response is a pure function of the request.

Schedulers ask the same question again and again (the same fleet every few
seconds); building a 1,000-shard plan costs milliseconds while looking it up
costs microseconds. Answers are keyed by the RPC and the request's
deterministic wire bytes, in one least-recently-used table bounded in bytes
(core.cache). Failed calls are not remembered, nor answers too large to send.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import Message

from accelplan_server.core.cache import ByteCache
from accelplan_server.rpc import limits

Handler = TypeVar("Handler", bound=Callable[..., Any])

ANSWERS_SHARE = 0.45
"""Share of the process's cache budget that remembered answers may hold."""
MESSAGE_BYTES_PER_WIRE_BYTE = 8
"""A parsed response held in memory weighs up to ~7x its wire size (measured: 1.6x for a 16,384-shard plan
with long names, 5x without, 7x for a 370-byte plan); this and MESSAGE_OVERHEAD_BYTES bound it."""
MESSAGE_OVERHEAD_BYTES = 1024
"""The Python object and arena of even a tiny message (measured: ~920 bytes for an 86-byte GetModelResponse)."""

_ANSWERS: ByteCache[tuple[object, str, bytes], Message] = ByteCache("answers", ANSWERS_SHARE)


def answer_weight(key: bytes, answer: Message, wire_bytes: int) -> int:
    """Bytes an answer of ``wire_bytes`` kept under ``key`` holds alive (a measured upper estimate)."""
    return len(key) + MESSAGE_BYTES_PER_WIRE_BYTE * wire_bytes + MESSAGE_OVERHEAD_BYTES


def remembered(handler: Handler) -> Handler:
    """Serve a repeated request from the answers of earlier identical ones (per servicer instance)."""
    name = handler.__name__

    @functools.wraps(handler)
    def wrapper(self: Any, request: Message, context: Any) -> Any:
        if not getattr(self, "remember_answers", True):
            return handler(self, request, context)
        # A token object rather than id(self): ids are reused once an instance is gone.
        owner = self.__dict__.setdefault("_answers_owner", object())
        wire = request.SerializeToString(deterministic=True)
        key = (owner, name, wire)
        answer = _ANSWERS.get(key)
        if answer is None:
            answer = handler(self, request, context)
            size = answer.ByteSize()
            if size <= limits.MAX_RESPONSE_BYTES:  # one too large to send is never kept
                _ANSWERS.put(key, answer, answer_weight(wire, answer, size))
        return answer

    return wrapper  # type: ignore[return-value]
