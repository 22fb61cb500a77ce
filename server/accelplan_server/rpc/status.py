"""Mapping core errors to gRPC statuses with google.rpc error details."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from accelplan_server.core.errors import FailedPrecondition, InvalidArgument, NotFound

log = logging.getLogger(__name__)

Handler = TypeVar("Handler", bound=Callable[..., Any])


def invalid_argument_status(error: InvalidArgument) -> grpc.Status:
    """INVALID_ARGUMENT carrying a google.rpc.BadRequest with one violation per bad field."""
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
    )
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=str(error), details=[detail]))


ERROR_DOMAIN = "accelplan.dev"
"""google.rpc.ErrorInfo.domain of accelplan's errors."""


def not_found_status(error: NotFound) -> grpc.Status:
    """NOT_FOUND with a google.rpc.ResourceInfo and, for unknown names, a google.rpc.ErrorInfo.

    The ErrorInfo's reason is UNKNOWN_MODEL or UNKNOWN_SKU and its metadata holds ``name``, ``field``
    and ``suggestions`` (the closest known names, comma-separated) so every SDK can show them.
    """
    resource = any_pb2.Any()
    resource.Pack(error_details_pb2.ResourceInfo(resource_type=error.field, description=error.description))
    details = [resource]
    if error.reason:
        info = any_pb2.Any()
        info.Pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason,
                domain=ERROR_DOMAIN,
                metadata={"name": error.name, "field": error.field, "suggestions": ",".join(error.suggestions)},
            )
        )
        details.append(info)
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.NOT_FOUND, message=str(error), details=details))


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
        status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message=str(error), details=[detail])
    )


def translate_errors(handler: Handler) -> Handler:
    """Turn core errors into statuses; anything unexpected becomes INTERNAL, never UNKNOWN."""

    @functools.wraps(handler)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return handler(self, request, context)
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
