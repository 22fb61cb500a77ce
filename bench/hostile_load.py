"""Hostile clients, shared by tests/e2e/test_hostile.py and bench/hostile.py: each one bounded in count and time.

Every function here opens sockets to a loopback server and returns what it
needs to keep them open; the caller closes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import grpc
import h2.config
import h2.connection
import h2.exceptions
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from accelplan.v1 import hardware_pb2, models_pb2, planning_pb2, quantization_pb2, scheduling_pb2

PLANNER = "/accelplan.v1.PlannerService/"
SCHEDULER = "/accelplan.v1.SchedulerService/"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def split(address: str) -> tuple[str, int]:
    """(ip, port) of ``host:port``, localhost as 127.0.0.1."""
    host, port = address.rsplit(":", 1)
    host = host.strip("[]")
    return ("127.0.0.1" if host == "localhost" else host), int(port)


def connect(address: str, tls: ssl.SSLContext | None = None) -> socket.socket:
    """A TCP (or TLS with ALPN h2) connection to ``address``."""
    sock = socket.create_connection(split(address), timeout=5)
    if tls is not None:
        sock = tls.wrap_socket(sock, server_hostname="localhost")
    return sock


def client_tls(ca_pem: bytes) -> ssl.SSLContext:
    """A TLS client context trusting ``ca_pem``, offering h2."""
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    ctx.set_alpn_protocols(["h2"])
    return ctx


def half_open(
    address: str, path: str, streams: int, *, tls: ssl.SSLContext | None = None, token: str | None = None
) -> socket.socket:
    """One connection with ``streams`` calls that send HEADERS and never a body (nor END_STREAM)."""
    sock = connect(address, tls)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    headers = [
        (":method", "POST"),
        (":scheme", "https" if tls else "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    if token:
        headers.append(("authorization", f"Bearer {token}"))
    for _ in range(streams):
        conn.send_headers(conn.get_next_available_stream_id(), headers, end_stream=False)
    sock.sendall(conn.data_to_send())
    return sock


def unread(address: str, path: str, payload: bytes, streams: int, seconds: float = 10.0) -> socket.socket:
    """One connection with ``streams`` complete calls whose responses are never read.

    The client takes in the server's frames (to learn its flow-control windows
    and send the requests) but never acknowledges response data, so the server
    can send only the first 64 KiB and must hold the rest. Returns once every
    request is sent, or after ``seconds``.
    """
    sock = connect(address)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    body = b"\x00" + len(payload).to_bytes(4, "big") + payload
    pending: dict[int, int] = {}  # stream -> bytes of the body sent
    for _ in range(streams):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, headers, end_stream=False)
        pending[sid] = 0
    sock.sendall(conn.data_to_send())
    sock.settimeout(2)
    end = time.monotonic() + seconds
    while pending and time.monotonic() < end:
        for sid in list(pending):
            sent = pending[sid]
            try:
                window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if window > 0:
                    chunk = body[sent : sent + window]
                    conn.send_data(sid, chunk, end_stream=sent + len(chunk) >= len(body))
                    pending[sid] = sent + len(chunk)
            except h2.exceptions.ProtocolError:  # refused (over the stream limit) or reset
                pending.pop(sid)
                continue
            if pending[sid] >= len(body):
                pending.pop(sid)
        try:
            sock.sendall(conn.data_to_send())
            if select.select([sock], [], [], 0.05)[0]:
                data = sock.recv(1 << 20)
                if not data:
                    break
                conn.receive_data(data)  # window updates and settings; response data is never acknowledged
                sock.sendall(conn.data_to_send())
        except (TimeoutError, h2.exceptions.ProtocolError):
            break
    return sock


def idle(address: str, count: int) -> list[socket.socket]:
    """``count`` TCP connections that say nothing (no HTTP/2 preface); stops early when refused."""
    out = []
    for _ in range(count):
        try:
            out.append(socket.create_connection(split(address), timeout=2))
        except OSError:
            break
    return out


def close_all(socks: Sequence[socket.socket]) -> None:
    """Close sockets, ignoring errors."""
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()


def tpu_fleet(devices: int, chips: int, offset: int) -> hardware_pb2.Fleet:
    """``devices`` TPU v5p devices of ``chips`` chips each, with ids from ``offset`` (distinct fleets)."""
    return hardware_pb2.Fleet(
        accelerators=[
            hardware_pb2.Accelerator(
                type=hardware_pb2.ACCELERATOR_TYPE_TPU,
                tpu_version=hardware_pb2.TPU_VERSION_V5P,
                tpu_chip_count=chips,
                device_id=offset + i,
            )
            for i in range(devices)
        ]
    )


def heavy_plan(i: int) -> planning_pb2.PlanShardingRequest:
    """A distinct 16,384-chip plan (4,096 four-chip TPUs, a 405B model: one shard per chip)."""
    return planning_pb2.PlanShardingRequest(
        model=models_pb2.ModelSpec(model_id="llama-3.1-405b"),
        quantization=quantization_pb2.QUANTIZATION_LEVEL_BFLOAT16,
        fleet=tpu_fleet(4096, 4, 100_000 * (i + 1)),
    )


def many_shapes_rank(i: int, nodes: int = 2000) -> scheduling_pb2.RankNodesRequest:
    """A distinct RankNodes over ``nodes`` nodes that are all different device shapes (each H100 node's
    reported memory differs by a MiB), within every cap: each shape is sized (~0.3 ms apiece)."""
    return scheduling_pb2.RankNodesRequest(
        workload=scheduling_pb2.Workload(model=models_pb2.ModelSpec(model_id="llama-3.1-70b"), concurrency=1 + i),
        nodes=[
            scheduling_pb2.NodeInventory(
                name=f"node-{k}",
                labels={
                    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                    "nvidia.com/gpu.count": "8",
                    "nvidia.com/gpu.memory": str(60_000 + k),
                },
            )
            for k in range(nodes)
        ],
    )


def heavy_right_size(i: int) -> scheduling_pb2.RightSizeRequest:
    """A distinct RightSize over the whole catalogue up to 64 devices with a speed target no sku meets:
    every precision and replica size of every sku is sized, speed included (~30-65 ms of CPU)."""
    return scheduling_pb2.RightSizeRequest(
        workload=scheduling_pb2.Workload(
            model=models_pb2.ModelSpec(model_id="llama-3.1-8b"),
            concurrency=64 + i,
            context_length=32768,
            min_decode_tokens_per_second=10_000,
        ),
        max_devices=64,
    )


def cheap_request() -> bytes:
    """A GetModel request, serialized."""
    return models_pb2.GetModelRequest(model_id="llama-3.1-8b").SerializeToString()


@dataclass
class Probe:
    """Cheap-call latencies and health results while something else goes on."""

    latencies_ms: list[float]
    cheap_errors: int
    health_ok: int
    health_total: int

    def p99(self) -> float:
        """99th percentile of the cheap calls, ms (inf when none succeeded)."""
        if not self.latencies_ms:
            return float("inf")
        values = sorted(self.latencies_ms)
        return values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]


def probe(address: str, seconds: float, *, credentials: grpc.ChannelCredentials | None = None) -> Probe:
    """GetModel one at a time and a health Check every 50 ms for ``seconds``, on a fresh connection."""

    async def run() -> Probe:
        options = [("grpc.use_local_subchannel_pool", 1)]
        channel = (
            grpc.aio.secure_channel(address, credentials, options=options)
            if credentials
            else grpc.aio.insecure_channel(address, options=options)
        )
        async with channel:
            get = channel.unary_unary(PLANNER + "GetModel", request_serializer=None, response_deserializer=None)
            health = health_pb2_grpc.HealthStub(channel)
            result = Probe([], 0, 0, 0)
            end = time.monotonic() + seconds

            async def cheap() -> None:
                payload = cheap_request()
                while time.monotonic() < end:
                    t0 = time.perf_counter()
                    try:
                        await get(payload, timeout=2)
                        result.latencies_ms.append((time.perf_counter() - t0) * 1e3)
                    except grpc.aio.AioRpcError:
                        result.cheap_errors += 1

            async def checks() -> None:
                while time.monotonic() < end:
                    result.health_total += 1
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        r = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                        result.health_ok += r.status == health_pb2.HealthCheckResponse.SERVING
                    await asyncio.sleep(0.05)

            await asyncio.gather(cheap(), checks())
            return result

    return asyncio.run(run())


@contextlib.contextmanager
def heavy_in_flight(
    address: str,
    count: int,
    timeout: float = 60,
    connections: int = 4,
    method: str = PLANNER + "PlanSharding",
    build: Callable[[int], Message] = heavy_plan,
) -> Iterator[list[grpc.Future[object]]]:
    """``count`` distinct heavy calls (``build(i)`` to ``method``; by default 16,384-chip plans) sent at once
    over ``connections`` connections; yields their futures."""
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.insecure_channel(address, options=options) for _ in range(connections)]
    futures: list[grpc.Future[object]] = []
    try:
        for i in range(count):
            call = channels[i % connections].unary_unary(method, request_serializer=None, response_deserializer=None)
            futures.append(call.future(build(i).SerializeToString(), timeout=timeout))
        yield futures
    finally:
        for f in futures:
            f.cancel()
        for channel in channels:
            channel.close()
