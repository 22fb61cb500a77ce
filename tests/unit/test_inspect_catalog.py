"""Exact header counts of checkpoints shaped like the catalogue's decoder rows equal the rows' counts.

Each checkpoint is full-size (the real tensor names and shapes of Hugging Face's Llama/Mistral/Qwen2
/Mixtral/Gemma 2/Phi-3 layouts for the row's config.json) but sparse on disk, so a 405B row costs no space.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelplan.inspect import inspect_path
from tests.unit.model_files import hf_config, write_sparse_checkpoint

CATALOG = Path(__file__).parents[2] / "server/src/accelplan_server/data/models.json"
ROWS = [
    m
    for m in json.loads(CATALOG.read_text())["models"]
    if (m.get("architecture") or {}).get("model_type") in ("llama", "mistral", "qwen2", "mixtral", "gemma2", "phi3")
]


@pytest.mark.parametrize("row", ROWS, ids=[m["id"] for m in ROWS])
def test_header_count_equals_catalogue_row(tmp_path: Path, row: dict) -> None:
    written = write_sparse_checkpoint(tmp_path, hf_config(row["architecture"]))
    result = inspect_path(tmp_path)
    assert result.parameter_count == written == row["parameter_count"]
    assert result.precision == "BF16"


def test_rows_cover_the_families() -> None:
    assert len(ROWS) >= 19
