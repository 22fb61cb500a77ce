"""Issue 11 section 2: the CLI refuses ambiguous input and says what it assumed."""

import subprocess
import sys

import pytest

from tests.e2e.conftest import ServerProcess
from tests.e2e.test_cli import cli


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "accelplan.cli", *args], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("accelplan ")


def test_global_flags_after_the_subcommand(server: ServerProcess) -> None:
    out = run("models", "--server", server.address, "--json", "--timeout", "5")
    assert out.returncode == 0, out.stderr
    assert out.stdout.lstrip().startswith("{")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("plan", "--params", "7B", "--quant", "bf16", "--fleet", "cuda:80"), "80 what? Say cuda:80GiB"),
        (("plan", "--params", "7B", "--quant", "bf16", "--fleet", "tpu:4"), "tpu:4chips (chips)"),
        (("compatible", "--quant", "bf16", "--memory", "24"), "24 what? Say e.g. 80GiB"),
        (("estimate", "--params", "7", "--quant", "bf16"), "7 parameters? Say 7B"),
        (("suggest", "--params", "7B"), "the following arguments are required: --fleet"),
    ],
)
def test_ambiguous_input_is_refused(server: ServerProcess, args: tuple[str, ...], expected: str) -> None:
    out = cli(server, *args)
    assert out.returncode == 2, out.stdout
    assert expected in out.stderr
    assert "Traceback" not in out.stderr


def test_suggest_on_a_cpu_fleet(server: ServerProcess) -> None:
    out = cli(server, "suggest", "--params", "7B", "--fleet", "cpu:64GiB")
    assert out.returncode == 0, out.stderr


def test_link_with_unit_and_bare_link_from_the_catalogue(server: ServerProcess) -> None:
    base = ("plan", "--model-id", "llama-3.1-70b", "--quant", "bf16", "--fleet", "4xh100-sxm", "--json")
    with_unit = cli(server, *base, "--link", "nvlink:900GB/s")
    bare = cli(server, *base, "--link", "nvlink")
    assert with_unit.returncode == 0 and bare.returncode == 0, (with_unit.stderr, bare.stderr)
    assert with_unit.stdout == bare.stdout  # the catalogue's H100 SXM NVLink figure is 900 GB/s
    assert "using 900 GB/s, the catalogue's nvlink figure for h100-sxm" in bare.stderr
    no_figure = cli(server, "plan", "--params", "7B", "--quant", "bf16", "--fleet", "cuda:80GiB", "--link", "nvlink")
    assert no_figure.returncode == 2 and "--link nvlink:900" in no_figure.stderr


def test_unknown_sku_and_model_suggest_the_closest(server: ServerProcess) -> None:
    out = cli(server, "plan", "--params", "7B", "--quant", "bf16", "--fleet", "h100")
    assert out.returncode == 1
    assert "no accelerator sku 'h100'; did you mean h100-sxm, h100-pcie" in out.stderr
    assert "`accelplan hardware`" in out.stderr and "ListAcceleratorModels" not in out.stderr
    out = cli(server, "estimate", "--model-id", "llama-3.1-8", "--quant", "bf16")
    assert out.returncode == 1
    assert "no model 'llama-3.1-8'; did you mean llama-3.1-8b" in out.stderr and "`accelplan models`" in out.stderr


def test_compatible_is_sorted_by_memory_needed(server: ServerProcess) -> None:
    out = cli(server, "compatible", "--quant", "int4", "--memory", "80GiB")
    assert out.returncode == 0, out.stderr
    needs = [float(line.split()[1].replace(",", "")) for line in out.stdout.splitlines()[2:]]
    assert needs == sorted(needs, reverse=True) and len(needs) > 3


def test_help_lists_fp8_and_defaults() -> None:
    for command in ("estimate", "capacity", "perf", "plan", "cost", "compatible"):
        out = run(command, "--help")
        assert "fp8" in out.stdout, command
    train = run("train", "--help").stdout
    assert "(default gpu)" in train and "(default adamw)" in train


def test_cost_says_which_skus_were_left_out(server: ServerProcess) -> None:
    out = cli(server, "cost", "--model-id", "llama-3.1-8b", "--quant", "fp8", "--limit", "3")
    assert out.returncode == 0, out.stderr
    assert "Left out instances whose accelerator cannot run FP8" in out.stdout and "a100-80gb-sxm" in out.stdout
