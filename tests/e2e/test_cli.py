"""The accelplan CLI against the real server: readable tables and proto3 JSON."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ServerProcess


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accelplan.cli", "--server", server.address, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_plan_catalogue_70b_readable(server: ServerProcess) -> None:
    out = cli(
        server,
        "plan",
        "--model-id",
        "llama-3.1-70b",
        "--quant",
        "bf16",
        "--fleet",
        "8xcuda:80GiB",
        "--link",
        "nvswitch:900",
    )
    assert out.returncode == 0, out.stderr
    assert "TENSOR_PARALLEL over 8 device(s)" in out.stdout
    assert "tokens/s" in out.stdout
    shard_rows = [line for line in out.stdout.splitlines() if line[:1].isdigit() and "CUDA_GPU" in line]
    assert len(shard_rows) == 8


def test_plan_json_is_proto3_json(server: ServerProcess) -> None:
    out = cli(
        server,
        "--json",
        "plan",
        "--model-id",
        "llama-3.1-70b",
        "--quant",
        "bf16",
        "--fleet",
        "4xcuda:24GiB@1,4xcuda:24GiB@0",
    )
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["strategy"] == "SHARDING_STRATEGY_PIPELINE_PARALLEL"
    assert plan["deviceCount"] == 8
    assert isinstance(plan["totalMemoryBytes"], str)  # 64-bit integers are strings in proto3 JSON
    assert [s["accelerator"].get("numaNode") for s in plan["shards"]] == [0] * 4 + [1] * 4


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("quant",), "INT4"),
        (("quant", "8"), "INT8: 8 bits"),
        (("estimate", "--params", "70B", "--quant", "bf16"), "168000000000"),
        (("suggest", "--model-id", "llama-3.1-70b", "--fleet", "8xcuda:24GiB", "--shard"), "suggested: FP16"),
        (("train", "--params", "7000M", "--method", "lora"), "15.6 GiB"),
        (("cost", "--model-id", "llama-3.1-8b", "--quant", "bf16", "--provider", "aws", "--limit", "2"), "aws"),
        (("models",), "llama-3.1-405b"),
        (("models", "mixtral-8x7b"), "46.70B"),
        (("compatible", "--quant", "int4", "--memory", "24GiB"), "qwen2.5-32b"),
        (("filter", "--fleet", "cpu:64GiB,tpu-v5p:4chips", "--require", "tpu"), "380.0 GiB"),
    ],
)
def test_subcommands(server: ServerProcess, args: tuple[str, ...], expect: str) -> None:
    out = cli(server, *args)
    assert out.returncode == 0, out.stderr
    assert expect in out.stdout


def test_errors_name_the_field(server: ServerProcess) -> None:
    out = cli(server, "estimate", "--params", "0", "--quant", "bf16")
    assert out.returncode == 1
    assert "INVALID_ARGUMENT" in out.stderr and "model.parameter_count" in out.stderr
    out = cli(server, "plan", "--model-id", "nope", "--quant", "bf16", "--fleet", "cuda:80GiB")
    assert out.returncode == 1 and "NOT_FOUND" in out.stderr


def test_bad_fleet_notation(server: ServerProcess) -> None:
    out = cli(server, "plan", "--params", "7B", "--quant", "bf16", "--fleet", "8x cuda@@0")
    assert out.returncode == 2 and "bad device" in out.stderr


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (
            ("estimate", "--model-id", "llama-3.1-8b", "--quant", "bf16", "--context", "8192", "--batch", "4"),
            "kv cache     4.0 GiB",
        ),
        (
            ("capacity", "--model-id", "llama-3.1-8b", "--quant", "bf16", "--fleet", "h100-sxm", "--context", "8192"),
            "most sequences:         55 of 8192 tokens",
        ),
        (("perf", "--model-id", "llama-3.1-8b", "--quant", "bf16", "--fleet", "h100-sxm"), "memory_bandwidth bound"),
        (("hardware",), "tpu-v5p"),
        (
            (
                "plan",
                "--model-id",
                "llama-3.1-70b",
                "--quant",
                "bf16",
                "--fleet",
                "8xh100-sxm",
                "--link",
                "nvswitch:900",
            ),
            "TENSOR_PARALLEL over 8 device(s)",
        ),
    ],
)
def test_sizing_subcommands(server: ServerProcess, args: tuple[str, ...], expect: str) -> None:
    out = cli(server, *args)
    assert out.returncode == 0, out.stderr
    assert expect in out.stdout


def test_unknown_sku_in_fleet(server: ServerProcess) -> None:
    out = cli(server, "plan", "--params", "7B", "--quant", "bf16", "--fleet", "2xh1000")
    assert out.returncode == 1 and "NOT_FOUND" in out.stderr


def test_rank_reads_kubectl_nodes_and_prints_a_table(server: ServerProcess, tmp_path: Path) -> None:
    nodes = {
        "items": [
            {
                "metadata": {
                    "name": "h100",
                    "labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8"},
                }
            },
            {
                "metadata": {
                    "name": "l4",
                    "labels": {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "2"},
                }
            },
        ]
    }
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps(nodes))
    r = cli(server, "rank", "--model-id", "llama-3.1-70b", "--quant", "fp8", "--devices", "2", "--nodes", str(path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "1 of 2 nodes fit (2 device shapes)"
    assert lines[3].split()[:5] == ["h100", "yes", "12", "2", "FP8"]
    assert lines[4].split()[:2] == ["l4", "never"] and "Needs 35.4 GiB per device at FP8 on 2 devices" in lines[4]
    j = cli(
        server, "--json", "rank", "--model-id", "llama-3.1-70b", "--quant", "fp8", "--nodes", str(path), "--top", "1"
    )
    assert json.loads(j.stdout)["verdicts"][0]["nodeName"] == "h100"


def test_right_size_prints_variants_artifacts_and_rejections(server: ServerProcess) -> None:
    r = cli(server, "right-size", "--model-id", "llama-3.1-70b", "--quant", "bf16", "--sku", "h100-sxm", "--sku", "t4")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[2].split()[:4] == ["h100-sxm", "2", "2x1", "BF16"]
    assert "--tensor-parallel-size 2 --pipeline-parallel-size 1" in r.stdout
    assert 'resources.limits {"nvidia.com/gpu": "2"}' in r.stdout
    assert "t4: NVIDIA T4 16GB does not run BF16" in r.stdout
    j = cli(server, "--json", "right-size", "--model-id", "llama-3.1-70b", "--sku", "h100-sxm", "--top", "1")
    assert json.loads(j.stdout)["variants"][0]["artifacts"]["slurmGres"].startswith("gpu:h100:")
