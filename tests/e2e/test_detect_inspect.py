"""`--fleet detect`, `--fleet @detected.json` and `--model @PATH` against the real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ServerProcess
from tests.unit.model_files import hf_config, write_gguf, write_sparse_checkpoint
from tests.unit.test_detect import host_tree, tool

CATALOG = Path(__file__).parents[2] / "server/src/accelplan_server/data/models.json"


def cli(server: ServerProcess, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accelplan.cli", "--server", server.address, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("detect-inspect")
    row = next(m for m in json.loads(CATALOG.read_text())["models"] if m["id"] == "llama-3.1-8b")
    write_sparse_checkpoint(tmp / "llama-8b", hf_config(row["architecture"]))
    write_gguf(tmp / "tiny-q4k.gguf", "Q4_K")
    # an 8x H100 SXM host, detected from recorded nvidia-smi output, saved as `accelplan detect --json` writes it
    host_tree(tmp / "root")
    tool(tmp / "bin", "nvidia-smi", ("topo", "h100_topo.txt"), ("--query-gpu", "h100_query.csv"))
    out = subprocess.run(
        [sys.executable, "-m", "accelplan.cli", "detect", "--json", "--root", str(tmp / "root")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": str(tmp / "bin")},
        check=True,
    )
    (tmp / "detected.json").write_text(out.stdout)
    return {"llama": tmp / "llama-8b", "gguf": tmp / "tiny-q4k.gguf", "fleet": tmp / "detected.json"}


def as_json(out: subprocess.CompletedProcess[str]) -> dict:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_inspected_llama_sizes_like_its_catalogue_row(server: ServerProcess, files: dict[str, Path]) -> None:
    est = ["estimate", "--quant", "bf16", "--context", "8192"]
    mine = as_json(cli(server, "--json", *est, "--model", f"@{files['llama']}"))
    cat = as_json(cli(server, "--json", *est, "--model-id", "llama-3.1-8b"))
    assert mine["parameterCount"] == cat["parameterCount"] == "8030261248"
    for key in ("weightsBytes", "kvCacheBytes", "activationBytes", "totalBytes"):
        assert mine[key] == cat[key], key


def test_plan_with_detected_fleet_and_inspected_model(server: ServerProcess, files: dict[str, Path]) -> None:
    plan = ["plan", "--quant", "fp8", "--fleet", f"@{files['fleet']}"]
    mine = as_json(cli(server, "--json", *plan, "--model", f"@{files['llama']}"))
    cat = as_json(cli(server, "--json", *plan, "--model-id", "llama-3.1-8b"))
    assert mine["fitsInMemory"] and mine["totalMemoryBytes"] == cat["totalMemoryBytes"]
    assert mine["strategy"] == cat["strategy"] and mine["deviceCount"] == cat["deviceCount"]
    gpu = [s for s in mine["shards"] if s["accelerator"]["type"] == "ACCELERATOR_TYPE_CUDA_GPU"]
    assert gpu and all(s["accelerator"]["sku"] == "h100-sxm" for s in gpu)
    readable = cli(server, "plan", "--quant", "fp8", "--fleet", f"@{files['fleet']}", "--model-id", "llama-3.1-70b")
    assert readable.returncode == 0, readable.stderr
    assert "fits:          yes" in readable.stdout


def test_fleet_detect_on_this_machine(server: ServerProcess) -> None:
    out = cli(server, "--json", "plan", "--quant", "int4", "--fleet", "detect", "--model-id", "llama-3.2-1b")
    plan = as_json(out)
    assert {s["accelerator"]["type"] for s in plan["shards"]} <= {"ACCELERATOR_TYPE_CPU"}
    assert "detect:" in out.stderr  # the backends that found nothing say so


def test_gguf_model_through_the_server(server: ServerProcess, files: dict[str, Path]) -> None:
    est = as_json(cli(server, "--json", "estimate", "--quant", "int4", "--model", f"@{files['gguf']}"))
    assert int(est["parameterCount"]) > 0


@pytest.mark.parametrize(
    "command",
    [
        ["capacity", "--quant", "bf16"],
        ["perf", "--quant", "bf16"],
        ["suggest"],
        ["filter"],
    ],
)
def test_every_fleet_command_takes_a_detected_fleet(
    server: ServerProcess, files: dict[str, Path], command: list[str]
) -> None:
    model = [] if command[0] == "filter" else ["--model", f"@{files['llama']}"]
    out = cli(server, *command, *model, "--fleet", f"@{files['fleet']}")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    "command", [["train", "--method", "lora"], ["cost", "--quant", "bf16"], ["estimate", "--quant", "int8"]]
)
def test_every_model_command_takes_an_inspected_model(
    server: ServerProcess, files: dict[str, Path], command: list[str]
) -> None:
    out = cli(server, *command, "--model", f"@{files['llama']}")
    assert out.returncode == 0, out.stderr


def test_bad_model_file_is_a_clear_cli_error(server: ServerProcess, tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"PK\x03\x04junk")
    out = cli(server, "estimate", "--quant", "bf16", "--model", f"@{bad}")
    assert out.returncode == 2 and "model.pt: a PyTorch pickle checkpoint: refused" in out.stderr
