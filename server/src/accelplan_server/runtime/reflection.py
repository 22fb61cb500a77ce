"""Server reflection (grpc_reflection's aio servicer) with requests parsed here: garbage gets one log line.

grpc parses a stream's messages itself and, when one does not decode, logs the
exception with its traceback for every such call; anyone can send garbage to an
unauthenticated reflection service and fill the log. Here the raw messages are
parsed by the handler: an undecodable one ends the call with INVALID_ARGUMENT
and a single INFO line.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

from accelplan_server.runtime.context import HandlerCapture

log = logging.getLogger("accelplan.reflection")

SERVICE_NAME = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"].full_name


def add_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> None:
    """Serve grpc.reflection.v1alpha for ``service_names`` on ``server``."""
    servicer = ReflectionServicer(tuple(service_names))
    capture = HandlerCapture()
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, capture)
    original = capture.handlers["ServerReflectionInfo"]

    async def info(raw_requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        bad: list[str] = []

        async def parsed() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
            async for raw in raw_requests:
                try:
                    yield reflection_pb2.ServerReflectionRequest.FromString(raw)
                except DecodeError:
                    bad.append(context.peer())
                    return

        async for response in servicer.ServerReflectionInfo(parsed(), context):
            yield response
        if bad:
            log.info("reflection: undecodable request from %s; call ended with INVALID_ARGUMENT", bad[0])
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "not a ServerReflectionRequest")

    handlers = {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            info, request_deserializer=None, response_serializer=original.response_serializer
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
