"""Smaller bounds of issue 9 (finding 11): LoRA targets, memory derived from sku x chips, --data-dir duplicates."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import grpc
import pytest

from accelplan.v1 import hardware_pb2, models_pb2, training_pb2
from accelplan_server.core.catalog import Catalog, CatalogError, load_catalog
from accelplan_server.core.memory.finetune import ALL_LINEAR
from accelplan_server.rpc import convert, limits
from accelplan_server.rpc.convert import Violations
from accelplan_server.rpc.planner import PlannerServicer
from tests.unit.test_caps_property import call


@pytest.fixture(scope="module")
def servicer(catalog: Catalog) -> PlannerServicer:
    return PlannerServicer(catalog, remember_answers=False)


def _lora(targets: list[str]) -> training_pb2.EstimateTrainingMemoryRequest:
    return training_pb2.EstimateTrainingMemoryRequest(
        model=models_pb2.ModelSpec(model_id="llama-3.1-8b"),
        method=training_pb2.TRAINING_METHOD_LORA,
        lora_target_modules=targets,
    )


def test_lora_target_duplicates_are_rejected(servicer: PlannerServicer) -> None:
    code, status = call(servicer, "EstimateTrainingMemory", _lora(["q_proj", "v_proj", "Q_PROJ "]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "lora_target_modules: lists 'q_proj' more than once" in status.details


def test_the_lora_target_count_in_the_error_is_the_one_checked(servicer: PlannerServicer) -> None:
    most = [*ALL_LINEAR, "all-linear"]  # every distinct value once
    code, _ = call(servicer, "EstimateTrainingMemory", _lora(most))
    assert code == grpc.StatusCode.OK
    code, status = call(servicer, "EstimateTrainingMemory", _lora([*most, "x"]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"at most {len(most)}" in status.details


@pytest.mark.parametrize(
    "device",
    [
        hardware_pb2.Accelerator(sku="b200", tpu_chip_count=65536),  # 192 GB x 65,536
        hardware_pb2.Accelerator(
            type=hardware_pb2.ACCELERATOR_TYPE_TPU, tpu_version=hardware_pb2.TPU_VERSION_V5P, tpu_chip_count=16384
        ),
    ],
    ids=["sku", "tpu_version"],
)
def test_the_per_device_memory_cap_applies_to_memory_worked_out_from_chips(
    device: hardware_pb2.Accelerator, catalog: Catalog
) -> None:
    bad = Violations()
    skus = {a.sku.lower(): a for a in catalog.accelerators}
    assert convert.accelerator(device, "fleet.accelerators[0]", bad, skus) is None
    assert [v.field for v in bad.items] == ["fleet.accelerators[0].tpu_chip_count"]
    assert str(limits.MAX_MEMORY_BYTES) in bad.items[0].description


def _data_dir(tmp_path: Path) -> Path:
    for name in ("models.json", "accelerators.json", "cloud_instances.json"):
        with resources.as_file(resources.files("accelplan_server.data").joinpath(name)) as path:
            shutil.copy(path, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize(
    ("file", "table", "key", "what"),
    [("models.json", "models", "id", "id"), ("accelerators.json", "accelerators", "sku", "sku")],
)
def test_data_dir_rows_that_repeat_a_name_are_refused_with_the_file_and_row(
    tmp_path: Path, file: str, table: str, key: str, what: str
) -> None:
    data = _data_dir(tmp_path)
    doc = json.loads((data / file).read_text())
    rows = doc[table]
    repeat = dict(rows[1])
    repeat[key] = rows[1][key].upper()  # names compare case-insensitively
    rows.append(repeat)
    (data / file).write_text(json.dumps(doc))
    with pytest.raises(CatalogError) as err:
        load_catalog(data)
    message = str(err.value)
    assert str(data / file) in message
    assert f"row {len(rows) - 1} " in message and f"repeats the {what}" in message
    assert "of row 1;" in message
