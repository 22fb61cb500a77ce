"""No answer the server cannot send (issue 9, finding 6).

A plan whose shards would pass the 4 MiB a client accepts is refused with the
reason before its shards are encoded (and is not remembered); FindCompatibleModels
over a large --data-dir catalogue pages, each page within the limit.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from accelplan.v1 import hardware_pb2, models_pb2, planner_service_pb2_grpc, planning_pb2
from accelplan_server.rpc import limits
from tests.e2e.conftest import ServerProcess, launch_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

BF16 = 4
CATALOGUE_MODELS = 20_000


def _pods(name_chars: int) -> hardware_pb2.Fleet:
    return hardware_pb2.Fleet(
        accelerators=[
            hardware_pb2.Accelerator(sku="tpu-v5p", tpu_chip_count=4096, name=f"pod-{i}-".ljust(name_chars, "n"))
            for i in range(4)
        ]
    )


def test_a_plan_too_large_to_send_is_refused_with_the_reason_and_not_kept(
    stub: planner_service_pb2_grpc.PlannerServiceStub,
) -> None:
    # 16,384 tensor-parallel shards, each echoing a pod with a 256-character name: ~5 MiB.
    request = planning_pb2.PlanShardingRequest(
        model=models_pb2.ModelSpec(parameter_count=10**15), quantization=BF16, fleet=_pods(256)
    )
    for _ in range(2):  # the second time too: a refused answer is not remembered
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            stub.PlanSharding(request, timeout=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        status = rpc_status.from_call(err.value)  # type: ignore[arg-type]
        assert status is not None
        bad = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(bad)
        assert [v.field for v in bad.field_violations] == ["fleet.accelerators"]
        assert "16384 shards" in bad.field_violations[0].description
        assert time.monotonic() - started < 30
    # With short names the same plan fits, and is answered.
    request.fleet.CopyFrom(_pods(8))
    plan = stub.PlanSharding(request, timeout=60)
    assert len(plan.shards) == 16384
    assert plan.ByteSize() <= limits.MAX_RESPONSE_BYTES


@pytest.fixture(scope="module")
def large_catalogue_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("catalogue")
    embedded = resources.files("accelplan_server.data")
    for name in ("accelerators.json", "cloud_instances.json"):
        with resources.as_file(embedded.joinpath(name)) as path:
            shutil.copy(path, data / name)
    models = [
        {
            "id": f"model-{i:05d}",
            "name": f"Model {i} ".ljust(200, "x"),
            "family": "synthetic",
            "parameter_count": 1_000_000_000 + i,
            "parameter_count_source": "https://example.org/synthetic ".ljust(200, "s"),
        }
        for i in range(CATALOGUE_MODELS)
    ]
    Path(data / "models.json").write_text(json.dumps({"models": models}), encoding="utf-8")
    s = launch_server("--data-dir", str(data))
    yield s
    s.process.terminate()
    s.process.wait(timeout=15)


def test_find_compatible_models_pages_a_large_catalogue(large_catalogue_server: ServerProcess) -> None:
    with grpc.insecure_channel(large_catalogue_server.address) as channel:
        stub = planner_service_pb2_grpc.PlannerServiceStub(channel)
        request = models_pb2.FindCompatibleModelsRequest(quantization=BF16, available_memory_bytes=1 << 50)
        first = stub.FindCompatibleModels(request, timeout=30)
        assert len(first.models) == limits.DEFAULT_PAGE_SIZE_MODELS
        assert first.next_page_token

        request.page_size = limits.MAX_PAGE_SIZE_MODELS
        seen: list[str] = []
        pages = 0
        while True:
            resp = stub.FindCompatibleModels(request, timeout=30)
            assert resp.ByteSize() <= limits.MAX_RESPONSE_BYTES
            seen.extend(m.model.id for m in resp.models)
            pages += 1
            if not resp.next_page_token:
                break
            request.page_token = resp.next_page_token
        assert len(seen) == len(set(seen)) == CATALOGUE_MODELS
        assert pages == CATALOGUE_MODELS // limits.MAX_PAGE_SIZE_MODELS
        # Largest first across pages.
        assert seen[0] == f"model-{CATALOGUE_MODELS - 1:05d}"

        # A token belongs to its query.
        request.available_memory_bytes = 1 << 49
        with pytest.raises(grpc.RpcError) as err:
            stub.FindCompatibleModels(request, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_page_ends_before_it_passes_the_response_limit() -> None:
    from accelplan_server.rpc.paging import page

    items = list(range(100))
    got, token = page(
        items, 100, "", "q", default_size=50, max_size=1000, size_of=lambda _: 100_000, max_bytes=1_000_000
    )
    assert len(got) == 9  # 9 x (100,000 + 8) fit in 1,000,000; a 10th would not
    assert token
    rest, _ = page(items, 100, token, "q", default_size=50, max_size=1000, size_of=lambda _: 100_000)
    assert rest[0] == 9
