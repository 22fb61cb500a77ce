"""Issue 11 section 2: a bad --data-dir fails at start-up naming the file, the row and the field."""

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

DATA = Path(str(resources.files("accelplan_server.data")))


def serve(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accelplan.cli", "serve", "--port", "0", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def copy(tmp_path: Path) -> Path:
    for name in ("models.json", "accelerators.json", "cloud_instances.json"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def set_field(key: str, index: int, field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data[key][index][field] = value

    return change


def drop_field(key: str, index: int, field: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        del data[key][index][field]

    return change


@pytest.mark.parametrize(
    ("file", "change", "expected"),
    [
        ("accelerators.json", set_field("accelerators", 2, "type", "cuda_gpus"), "row 2 (h200-sxm): field 'type'"),
        ("accelerators.json", set_field("accelerators", 0, "memory_bytes", "80GB"), "row 0 (h100-sxm): field 'memory"),
        ("models.json", drop_field("models", 1, "parameter_count"), "row 1 (llama-3.1-70b): field 'parameter_count'"),
        (
            "accelerators.json",
            set_field("accelerators", 1, "supported_quantizations", ["bf16", "fp9"]),
            "row 1 (h100-pcie): field 'supported_quantizations': unknown precision 'fp9'",
        ),
        ("cloud_instances.json", set_field("instances", 0, "accelerator_sku", "h100"), "did you mean h100-sxm"),
        ("models.json", set_field("models", 0, "architecture", {"model_type": "jamba"}), "not supported yet"),
    ],
)
def test_bad_row_fails_at_start_up(tmp_path: Path, file: str, change: Any, expected: str) -> None:
    edit(copy(tmp_path) / file, change)
    out = serve(tmp_path)
    assert out.returncode == 2
    assert str(tmp_path / file) in out.stderr and expected in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_file_and_malformed_json(tmp_path: Path) -> None:
    copy(tmp_path)
    (tmp_path / "cloud_instances.json").unlink()
    out = serve(tmp_path)
    assert out.returncode == 2 and "cloud_instances.json: no such file" in out.stderr
    (tmp_path / "cloud_instances.json").write_text("{not json")
    out = serve(tmp_path)
    assert out.returncode == 2 and "cloud_instances.json: not valid JSON" in out.stderr
    assert "Traceback" not in out.stderr
