"""The same servicer on grpc.aio (sync handlers on its migration thread pool), for the serving-mode comparison.

Run: .venv/bin/python -m bench.aio_server --port 0   (prints the same "listening on" line as accelplan serve)
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from accelplan.v1 import planner_service_pb2_grpc
from accelplan_server.core.catalog import load_catalog
from accelplan_server.rpc.planner import PlannerServicer
from accelplan_server.runtime.serve import MAX_MESSAGE_BYTES


async def main(port: int, threads: int) -> None:
    server = grpc.aio.server(
        migration_thread_pool=futures.ThreadPoolExecutor(max_workers=threads),
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    planner_service_pb2_grpc.add_PlannerServiceServicer_to_server(PlannerServicer(load_catalog()), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"localhost:{port}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    print(f"accelplan listening on localhost:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(5)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--max-workers", type=int, default=16)
    a = p.parse_args()
    asyncio.run(main(a.port, a.max_workers))
