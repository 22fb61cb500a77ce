"""The part of grpc.ServicerContext the planner's (synchronous) handlers use, for every way they are run.

The servicer in rpc/ is written against the sync ``grpc.ServicerContext``: it
asks ``time_remaining()`` and ``is_active()``, and ends a call with ``abort()``
or ``abort_with_status()``. The serving process runs it inline on the event
loop, on a thread, or in a heavy-lane process, where the real (asyncio) context
is not reachable or not synchronous; this stand-in records the abort as an
exception the caller turns into the call's status.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc

Metadata = tuple[tuple[str, str | bytes], ...]


class Aborted(Exception):
    """A handler ended its call with a status (what ``context.abort`` raises here)."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Metadata = ()) -> None:
        super().__init__(code, details)
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


class HandlerContext:
    """A sync ServicerContext stand-in: a deadline (monotonic seconds), a liveness probe and abort."""

    __slots__ = ("_active", "_code", "_deadline", "_metadata")

    def __init__(
        self,
        deadline: float | None,
        active: Callable[[], bool] | None = None,
        metadata: Metadata = (),
    ) -> None:
        self._deadline = deadline
        self._active = active
        self._code: grpc.StatusCode | None = None
        self._metadata = metadata

    def time_remaining(self) -> float | None:
        """Seconds left before the deadline; None without one."""
        return None if self._deadline is None else self._deadline - time.monotonic()

    def is_active(self) -> bool:
        """False once the caller has gone."""
        return self._active() if self._active is not None else True

    def invocation_metadata(self) -> Metadata:
        """The call's metadata (empty where it is not carried)."""
        return self._metadata

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        """End the call with ``code``."""
        self._code = code
        raise Aborted(code, details)

    def abort_with_status(self, status: grpc.Status) -> None:
        """End the call with a status carrying details (google.rpc error details in its trailing metadata)."""
        self._code = status.code
        raise Aborted(status.code, status.details, tuple(status.trailing_metadata or ()))

    def code(self) -> grpc.StatusCode | None:
        """The status code set by an abort, else None."""
        return self._code


class HandlerCapture:
    """Collects the method handlers a generated ``add_*Servicer_to_server`` registers, to wrap them."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, _handlers: Any) -> None:
        """Ignored: the generated code registers the same handlers by name too."""

    def add_registered_method_handlers(self, _service: str, handlers: dict[str, Any]) -> None:
        """Keep ``handlers`` (method name to handler)."""
        self.handlers.update(handlers)
