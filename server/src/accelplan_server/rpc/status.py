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

from accelplan_server.core.errors import InvalidArgument, NotFound

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


def not_found_status(error: NotFound) -> grpc.Status:
    """NOT_FOUND carrying a google.rpc.ResourceInfo naming the missing thing."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ResourceInfo(resource_type=error.field, description=error.description))
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.NOT_FOUND, message=str(error), details=[detail]))


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
        except Exception:
            if context.code() is not None:  # type: ignore[attr-defined]  # already aborted: abort() raises
                raise
            log.exception("unexpected error in %s", handler.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {handler.__name__}")

    return wrapper  # type: ignore[return-value]
