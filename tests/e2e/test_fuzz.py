"""Hostile input: generated messages for every RPC, undecodable bytes, truncated HTTP/2 frames.

Every call must answer OK, INVALID_ARGUMENT, NOT_FOUND or RESOURCE_EXHAUSTED (never
UNKNOWN or INTERNAL), and the server must stay up and answer the next call correctly.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelplan.v1 import hardware_pb2, planner_service_pb2, quantization_pb2
from accelplan_server.rpc import limits
from tests.e2e.conftest import ServerProcess

SERVICE = planner_service_pb2.DESCRIPTOR.services_by_name["PlannerService"]
METHODS = list(SERVICE.methods)
ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
MAX_EXAMPLES = 40
F = FieldDescriptor

_INT_RANGES = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}
WORDS = ["", "bf16", "int4", "fp8", "llama-3.1-70b", "llama-3.1-8b", "aws", "gcp", "llama", " ", "\x00", "h100-sxm"]


def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = (lo, lo + 1, 0, 1, 4, 8, 16, 32, 4096, 4097, 65536, 10**18, 10**18 + 1, hi - 1, hi)
    return st.one_of(st.sampled_from([v for v in edges if lo <= v <= hi]), st.integers(lo, hi))


def _huge_fleet() -> st.SearchStrategy[list[Any]]:
    """Fleets around the accelerator cap, built from one device so that generating them stays cheap."""
    device = hardware_pb2.Accelerator(type=hardware_pb2.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=80 << 30)
    sizes = st.sampled_from([limits.MAX_FLEET_ACCELERATORS, limits.MAX_FLEET_ACCELERATORS + 1, 20_000, 200_000])
    return sizes.map(lambda n: [device] * n)


def field_strategy(fd: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if fd.type in _INT_RANGES:
        single: st.SearchStrategy[Any] = _ints(*_INT_RANGES[fd.type])
    elif fd.type == F.TYPE_ENUM:
        known = [v.number for v in fd.enum_type.values]
        single = st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    elif fd.type == F.TYPE_BOOL:
        single = st.booleans()
    elif fd.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        width = 64 if fd.type == F.TYPE_DOUBLE else 32
        single = st.one_of(st.sampled_from([0.0, -0.0, 1e-300, 1e300, -1.0]), st.floats(width=width))
    elif fd.type == F.TYPE_STRING:
        single = st.one_of(
            st.sampled_from(WORDS),
            st.text(max_size=40),
            st.integers(250, 5000).map(lambda n: "x" * n),
        )
    elif fd.type == F.TYPE_BYTES:
        single = st.binary(max_size=64)
    elif depth >= 4:
        single = st.just(message_factory.GetMessageClass(fd.message_type)())
    else:
        single = message_strategy(fd.message_type, depth + 1)
    if not fd.is_repeated:
        return single
    small = st.lists(single, max_size=6)
    if fd.name == "accelerators":
        return st.one_of(small, _huge_fleet())
    return small


def message_strategy(desc: Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    cls = message_factory.GetMessageClass(desc)
    optional = {fd.name: field_strategy(fd, depth) for fd in desc.fields}

    def build(values: dict[str, Any]) -> Any:
        msg = cls()
        for name, value in values.items():
            fd = desc.fields_by_name[name]
            if fd.is_repeated:
                getattr(msg, name).extend(value)
            elif fd.type == F.TYPE_MESSAGE:
                getattr(msg, name).CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    return st.fixed_dictionaries({}, optional=optional).map(build)  # type: ignore[arg-type]


def _path(method: Any) -> str:
    return f"/{SERVICE.full_name}/{method.name}"


def _call(channel: grpc.Channel, method: Any, payload: bytes) -> grpc.StatusCode:
    rpc = channel.unary_unary(_path(method), request_serializer=None, response_deserializer=None)
    try:
        rpc(payload, timeout=30)
    except grpc.RpcError as e:
        return e.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _assert_healthy(channel: grpc.Channel) -> None:
    resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    rpc = channel.unary_unary(
        f"/{SERVICE.full_name}/ResolveQuantizationLevel",
        request_serializer=quantization_pb2.ResolveQuantizationLevelRequest.SerializeToString,
        response_deserializer=quantization_pb2.QuantizationLevelInfo.FromString,
    )
    got = rpc(quantization_pb2.ResolveQuantizationLevelRequest(bits=4), timeout=10)
    assert got.level == quantization_pb2.QUANTIZATION_LEVEL_INT4


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Any:
    ch = grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 64 << 20)])
    yield ch
    ch.close()


@pytest.mark.parametrize("method", METHODS, ids=[m.name for m in METHODS])
def test_generated_messages(method: Any, channel: grpc.Channel) -> None:
    seen: dict[grpc.StatusCode, int] = {}

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(message_strategy(method.input_type))
    def check(request: Any) -> None:
        payload = request.SerializeToString()
        code = _call(channel, method, payload)
        seen[code] = seen.get(code, 0) + 1
        assert code in ALLOWED, f"{method.name} answered {code} for {len(payload)} bytes: {str(request)[:500]}"
        if len(payload) > 4 * 1024 * 1024:
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED

    check()
    _assert_healthy(channel)


@pytest.mark.parametrize("method", METHODS, ids=[m.name for m in METHODS])
def test_undecodable_bytes(method: Any, channel: grpc.Channel) -> None:
    @settings(max_examples=25, deadline=None, database=None)
    @given(
        st.one_of(
            st.binary(min_size=1, max_size=200),
            st.sampled_from([b"\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x08", b"\x12\x05ab", b"\x0b", b"\xff" * 64]),
        )
    )
    def check(payload: bytes) -> None:
        code = _call(channel, method, payload)
        assert code in ALLOWED, f"{method.name} answered {code} for {payload!r}"

    check()
    assert _call(channel, method, b"\x12\x05ab") == grpc.StatusCode.INVALID_ARGUMENT
    _assert_healthy(channel)


def test_fleet_over_the_cap_names_the_field_and_the_cap(channel: grpc.Channel) -> None:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    from accelplan.v1 import models_pb2, planning_pb2

    device = hardware_pb2.Accelerator(type=hardware_pb2.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=80 << 30)
    cases = [
        (
            hardware_pb2.Fleet(accelerators=[device] * (limits.MAX_FLEET_ACCELERATORS + 1)),
            "fleet.accelerators",
            str(limits.MAX_FLEET_ACCELERATORS),
        ),
        (
            hardware_pb2.Fleet(accelerators=[device], interconnects=[hardware_pb2.Interconnect(kind=1)] * 65),
            "fleet.interconnects",
            str(limits.MAX_FLEET_INTERCONNECTS),
        ),
        (
            hardware_pb2.Fleet(
                # 16,384 v4 chips (512 TiB) each: within the per-device caps, twice the fleet's chips
                accelerators=[hardware_pb2.Accelerator(type=9, tpu_version=1, tpu_chip_count=16384)] * 2
            ),
            "fleet.accelerators",
            str(limits.MAX_FLEET_TPU_CHIPS),
        ),
        (
            hardware_pb2.Fleet(accelerators=[hardware_pb2.Accelerator(type=2, memory_bytes=1, name="n" * 257)]),
            "fleet.accelerators[0].name",
            str(limits.MAX_STRING_LENGTH),
        ),
    ]
    stub = channel.unary_unary(
        f"/{SERVICE.full_name}/PlanSharding",
        request_serializer=planning_pb2.PlanShardingRequest.SerializeToString,
        response_deserializer=planning_pb2.ShardingPlan.FromString,
    )
    for fleet, field, cap in cases:
        request = planning_pb2.PlanShardingRequest(
            model=models_pb2.ModelSpec(parameter_count=70_000_000_000),
            quantization=quantization_pb2.QUANTIZATION_LEVEL_BFLOAT16,
            fleet=fleet,
        )
        with pytest.raises(grpc.RpcError) as err:
            stub(request, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(err.value)
        assert status is not None
        bad = error_details_pb2.BadRequest()
        status.details[0].Unpack(bad)
        assert [(v.field, cap in v.description) for v in bad.field_violations] == [(field, True)], bad


def test_message_over_4_mib_is_resource_exhausted(channel: grpc.Channel) -> None:
    code = _call(channel, METHODS[0], b"\x0a" + b"\x80\x80\x80\x02" + b"x" * (4 * 1024 * 1024 + 1))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    _assert_healthy(channel)


# Raw HTTP/2: a connection preface, then frames cut short. The server must shrug them off.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _frames(data: bytes) -> list[tuple[int, int]]:
    """(type, stream) of each whole frame in ``data``."""
    out, i = [], 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i : i + 3], "big")
        out.append((data[i + 3], int.from_bytes(data[i + 5 : i + 9], "big") & 0x7FFFFFFF))
        i += 9 + length
    return out


def _raw(address: str, data: bytes, *, read: float = 0.3, until_stream_ends: bool = False) -> bytes:
    """Send ``data`` on a fresh TCP connection and collect what comes back for up to ``read`` seconds."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection(("127.0.0.1" if host == "localhost" else host, int(port)), timeout=5) as s:
        s.sendall(data)
        s.settimeout(0.1)
        got = b""
        end = time.monotonic() + read
        while time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
            # HEADERS (trailers) or RST_STREAM on stream 1, or GOAWAY: the server has answered.
            if until_stream_ends and any((t in (0x1, 0x3) and sid == 1) or t == 0x7 for t, sid in _frames(got)):
                break
        return got


def _headers_block(method: str) -> bytes:
    import hpack

    return bytes(
        hpack.Encoder().encode(
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", f"/{SERVICE.full_name}/{method}"),
                (":authority", "localhost"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ]
        )
    )


def test_truncated_frames_do_not_hurt_the_server(server: ServerProcess, channel: grpc.Channel) -> None:
    settings_frame = _frame(0x4, 0, 0, b"")
    headers = _frame(0x1, 0x4, 1, _headers_block("EstimateMemory"))  # END_HEADERS
    grpc_message_cut = b"\x00" + struct.pack(">I", 100) + b"\x08\x01"  # claims 100 bytes, carries 2
    cases = [
        PREFACE[:10],  # half a preface
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # not HTTP/2 at all
        PREFACE + settings_frame[:5],  # a frame header cut short
        PREFACE + settings_frame + headers[:7],  # HEADERS cut inside its header
        PREFACE + settings_frame + headers + _frame(0x0, 0x1, 1, grpc_message_cut),  # gRPC message cut, END_STREAM
        PREFACE + settings_frame + headers + _frame(0x0, 0x0, 1, grpc_message_cut)[:9],  # DATA frame cut, no end
        PREFACE + settings_frame + _frame(0x0, 0x1, 1, b"\x00\x00\x00\x00\x00"),  # DATA on a stream never opened
        PREFACE + settings_frame + struct.pack(">I", 0xFFFFFF)[1:] + b"\x00\x00\x00\x00\x00\x01",  # 16 MiB frame
    ]
    for data in cases:
        _raw(server.address, data)
    _raw(server.address, PREFACE + settings_frame + headers, read=0)  # hang up mid-call
    answer = _raw(
        server.address,
        PREFACE + settings_frame + headers + _frame(0x0, 0x1, 1, grpc_message_cut),
        read=5,
        until_stream_ends=True,
    )
    # The server ended the cut call (trailers, a reset or a GOAWAY); it did not hang.
    assert any((t in (0x1, 0x3) and sid == 1) or t == 0x7 for t, sid in _frames(answer))
    assert server.process.poll() is None
    _assert_healthy(channel)
