"""Where a RankNodes call over gRPC spends its time: client encode, server phases, transport, client decode.

    .venv/bin/python -m bench.scheduler_breakdown [--rounds 3]

Same requests as bench.scheduler_bench's gRPC rows (5,000 nodes in 18 shapes, the labels accelplan
reads, 60 distinct workloads), in three forms: nodes with per-node verdicts, nodes with grouped
verdicts, node groups with grouped verdicts. Each phase is timed on its own, in this process (the
server's phases after the first call for a workload find its shape results remembered):

* client encode / decode: ``SerializeToString`` of the request, ``FromString`` of the response;
* server: ``SchedulerServicer.rank_bytes`` (what the aio handler runs for RankNodes: request bytes
  in, response bytes out), and inside it ``_read`` (the request read; its nodes found among the node
  sets kept from earlier requests, ``rpc/node_sets.py``) beside what reading a new node set costs
  (``rank_wire.read_request``, nodes read as bytes; a request of node groups alone is parsed as a
  message and ranked per group instead), the checks and core ranking (``_ranking``), and the
  rest: encoding the response;
* transport floor: a bare grpc.aio server in a thread of this process (as the bench runs
  accelplan's) answering requests of the same size with a fixed answer of the same size.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from accelplan.v1 import scheduling_pb2
from accelplan_server.core.catalog import load_catalog
from accelplan_server.core.scheduling.labels import KEYS
from accelplan_server.rpc import rank_wire
from accelplan_server.rpc.scheduler import SchedulerServicer
from bench.scheduler_bench import node_groups, node_labels, workloads


def _floor(request_bytes: int, response_bytes: int, calls: int) -> list[float]:
    """Round trips of a bare aio server answering ``response_bytes`` fixed bytes to ``request_bytes``."""
    answer = b"\x0a" * response_bytes
    ready = threading.Event()
    port: list[int] = []
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])

        async def behavior(_requests: Any, context: Any) -> bytes:
            await context.read()
            return answer

        handler = grpc.stream_unary_rpc_method_handler(behavior)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("floor.Floor", {"Echo": handler}),))
        port.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        ready.set()
        await server.wait_for_termination()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(30)
    payload = b"\x12" * request_bytes
    out = []
    with grpc.insecure_channel(
        f"127.0.0.1:{port[0]}", options=[("grpc.max_receive_message_length", 64 << 20)]
    ) as channel:
        call = channel.unary_unary("/floor.Floor/Echo")
        for _ in range(3):
            call(payload)
        for _ in range(calls):
            t = time.perf_counter()
            call(payload)
            out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--workloads", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    servicer = SchedulerServicer(load_catalog())
    slim = [
        scheduling_pb2.NodeInventory(name=f"node-{i}", labels={k: v for k, v in node_labels(i).items() if k in KEYS})
        for i in range(args.nodes)
    ]
    loads = workloads(args.workloads)
    grouped = scheduling_pb2.VERDICT_LAYOUT_GROUPED
    forms = {
        "nodes, per-node verdicts": [scheduling_pb2.RankNodesRequest(workload=w, nodes=slim) for w in loads],
        "nodes, grouped verdicts": [
            scheduling_pb2.RankNodesRequest(workload=w, nodes=slim, verdict_layout=grouped) for w in loads
        ],
        "node groups, grouped verdicts": [
            scheduling_pb2.RankNodesRequest(workload=w, node_groups=node_groups(slim), verdict_layout=grouped)
            for w in loads
        ],
    }
    gc.collect()
    gc.freeze()
    for form, requests in forms.items():
        times: dict[str, list[float]] = {}

        def timed(name: str, call: Callable[..., Any], *args: Any, times: dict[str, list[float]] = times) -> Any:
            t = time.perf_counter()
            out = call(*args)
            times.setdefault(name, []).append(time.perf_counter() - t)
            return out

        raw = answer = b""
        for _ in range(args.rounds):
            for request in requests:
                raw = timed("client: encode the request", request.SerializeToString)
                answer = timed("server: rank_bytes (all of the handler's work)", servicer.rank_bytes, raw)
                timed("  a new node set: read the nodes as bytes (rank_wire.read_request)", rank_wire.read_request, raw)
                header, wire, nodes = timed("  read the request, its node set kept (_read)", servicer._read, raw)
                if wire is not None:
                    timed("  checks, core ranking (_ranking)", servicer._ranking, header, wire, nodes)
                    timed("  the above and the response's encoding", servicer._rank_encoded, header, wire, nodes)
                else:  # node groups alone: parsed as a message, ranked and encoded per group
                    header = timed("  parse the request", scheduling_pb2.RankNodesRequest.FromString, raw)
                    timed("  checks, groups, ranking, encoding", servicer._rank_groups_encoded, header)
                timed("client: decode the response", scheduling_pb2.RankNodesResponse.FromString, answer)
        times["transport floor (bare aio server, same sizes)"] = _floor(len(raw), len(answer), len(requests))
        print(f"{form}: request {len(raw):,} bytes, response {len(answer):,} bytes; ms per call")
        width = max(map(len, times))
        for name, samples in times.items():
            s = sorted(samples)
            print(
                f"  {name:<{width}}  p50 {statistics.median(s) * 1e3:6.2f}  min {s[0] * 1e3:6.2f}  "
                f"p99 {s[min(len(s) - 1, int(len(s) * 0.99))] * 1e3:6.2f}"
            )


if __name__ == "__main__":
    main()
