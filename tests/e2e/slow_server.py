"""``accelplan serve`` with one extra interceptor that holds PlanSharding calls, for the SIGTERM drain test.

Run: python -m tests.e2e.slow_server SECONDS GRACE [DRAIN_DELAY]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import grpc

from accelplan_server.runtime import serve


class Hold(grpc.ServerInterceptor):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or not details.method.endswith("/PlanSharding"):
            return handler
        inner = handler.unary_unary

        def slow(request: Any, context: grpc.ServicerContext) -> Any:
            print("entered", flush=True)
            time.sleep(self.seconds)
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            slow, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )


if __name__ == "__main__":
    seconds, grace = float(sys.argv[1]), float(sys.argv[2])
    drain_delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    config = serve.ServerConfig(port=0, grace_seconds=grace, drain_delay_seconds=drain_delay)
    raise SystemExit(serve.serve(config, interceptors=[Hold(seconds)]))
