"""Mapping core errors to gRPC statuses with google.rpc error details."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from accelplan_server.core.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound

log = logging.getLogger(__name__)

Handler = TypeVar("Handler", bound=Callable[..., Any])


MAX_MESSAGE_CHARS = 400
"""Longest grpc-message: the first violation and how many more (C-core clients drop trailers past 8-16 KiB)."""
MAX_VIOLATIONS = 50
"""Most field violations listed in a BadRequest, the last of them saying how many were left out."""
MAX_DETAILS_BYTES = 4096
"""Most bytes of BadRequest listed (about 5.5 KiB once base64-encoded in grpc-status-details-bin)."""
MAX_FIELD_CHARS = 200
"""Longest field path shown."""
MAX_DESCRIPTION_CHARS = 300
"""Longest violation description shown."""


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    note = f"... ({len(text) - limit} more characters)"
    return text[: max(0, limit - len(note))] + note


def _violation(v: FieldViolation) -> error_details_pb2.BadRequest.FieldViolation:
    return error_details_pb2.BadRequest.FieldViolation(
        field=_clip(v.field, MAX_FIELD_CHARS), description=_clip(v.description, MAX_DESCRIPTION_CHARS)
    )


def listed_violations(violations: Sequence[FieldViolation]) -> list[error_details_pb2.BadRequest.FieldViolation]:
    """The violations a BadRequest lists, within MAX_VIOLATIONS and MAX_DETAILS_BYTES; the last says what is cut."""
    listed: list[error_details_pb2.BadRequest.FieldViolation] = []
    size = 0
    for v in violations:
        item = _violation(v)
        size += item.ByteSize() + 4  # tag and length of the repeated field
        if len(listed) == MAX_VIOLATIONS - 1 or size > MAX_DETAILS_BYTES - 400:  # room for the closing line
            break
        listed.append(item)
    left = len(violations) - len(listed)
    if left == 1:
        listed.append(_violation(violations[-1]))
    elif left:
        first_left = violations[len(listed)]
        listed.append(
            error_details_pb2.BadRequest.FieldViolation(
                field=_clip(first_left.field, MAX_FIELD_CHARS),
                description=f"this and {left - 1} more violations were left out ({len(violations)} in all); "
                "fix the ones listed and call again to see the rest",
            )
        )
    return listed


def short_message(violations: Sequence[FieldViolation]) -> str:
    """grpc-message for INVALID_ARGUMENT: the first violation, and how many more the details list."""
    first = violations[0] if violations else FieldViolation("", "invalid argument")
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    text = f"{_clip(first.field, MAX_FIELD_CHARS)}: {first.description}"
    return _clip(text, MAX_MESSAGE_CHARS - len(more)) + more


def invalid_argument_status(error: InvalidArgument) -> grpc.Status:
    """INVALID_ARGUMENT carrying a google.rpc.BadRequest with one violation per bad field (bounded in size)."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.BadRequest(field_violations=listed_violations(error.violations)))
    return rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=short_message(error.violations), details=[detail])
    )


ERROR_DOMAIN = "accelplan.dev"
"""google.rpc.ErrorInfo.domain of accelplan's errors."""


def not_found_status(error: NotFound) -> grpc.Status:
    """NOT_FOUND with a google.rpc.ResourceInfo and, for unknown names, a google.rpc.ErrorInfo.

    The ErrorInfo's reason is UNKNOWN_MODEL or UNKNOWN_SKU and its metadata holds ``name``, ``field``
    and ``suggestions`` (the closest known names, comma-separated) so every SDK can show them.
    """
    resource = any_pb2.Any()
    field, description = _clip(error.field, MAX_FIELD_CHARS), _clip(error.description, MAX_DESCRIPTION_CHARS)
    resource.Pack(error_details_pb2.ResourceInfo(resource_type=field, description=description))
    details = [resource]
    if error.reason:
        info = any_pb2.Any()
        info.Pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason,
                domain=ERROR_DOMAIN,
                metadata={
                    "name": _clip(error.name, MAX_FIELD_CHARS),
                    "field": field,
                    "suggestions": ",".join(error.suggestions),
                },
            )
        )
        details.append(info)
    message = _clip(f"{field}: {description}", MAX_MESSAGE_CHARS)
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.NOT_FOUND, message=message, details=details))


def failed_precondition_status(error: FailedPrecondition) -> grpc.Status:
    """FAILED_PRECONDITION carrying a google.rpc.PreconditionFailure with one violation per unmet condition."""
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=v.type, subject=v.subject, description=v.description
                )
                for v in error.violations
            ]
        )
    )
    return rpc_status.to_status(
        status_pb2.Status(
            code=code_pb2.FAILED_PRECONDITION, message=_clip(str(error), MAX_MESSAGE_CHARS), details=[detail]
        )
    )


class Offload(Exception):
    """The call costs more than the serving process runs inline: it is to run again in the heavy lane.

    Raised before any costly work; the serving process (runtime/) catches it.
    """

    def __init__(self, estimate_seconds: float) -> None:
        self.estimate_seconds = estimate_seconds
        super().__init__(f"about {estimate_seconds * 1e3:.0f} ms of work")


def translate_errors(handler: Handler) -> Handler:
    """Turn core errors into statuses; anything unexpected becomes INTERNAL, never UNKNOWN (Offload passes)."""

    @functools.wraps(handler)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return handler(self, request, context)
        except Offload:
            raise
        except InvalidArgument as e:
            context.abort_with_status(invalid_argument_status(e))
        except NotFound as e:
            context.abort_with_status(not_found_status(e))
        except FailedPrecondition as e:
            context.abort_with_status(failed_precondition_status(e))
        except Exception:
            if context.code() is not None:  # type: ignore[attr-defined]  # already aborted: abort() raises
                raise
            log.exception("unexpected error in %s", handler.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {handler.__name__}")

    return wrapper  # type: ignore[return-value]
