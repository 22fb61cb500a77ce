"""`accelplan inspect` on small real files written with the formats' own libraries; counts checked exactly."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import json_format

from accelplan.cli import main
from accelplan.inspect import InspectError, inspect_path
from accelplan.v1 import models_pb2
from tests.unit.model_files import GGUF_LLAMA, TINY_LLAMA, llama_count, write_gguf, write_llama, write_onnx


def test_tiny_llama_safetensors_with_config(tmp_path: Path) -> None:
    n = write_llama(tmp_path)
    assert n == 125_248  # 256*64*2 + 2*(64*64*2 + 2*64*32 + 3*64*176 + 2*64) + 64
    r = inspect_path(tmp_path)
    assert r.parameter_count == n and r.precision == "BF16" and r.bits_per_weight == 16
    assert r.architecture is not None and r.architecture.num_key_value_heads == 2
    assert json.loads(r.spec().hf_config_json) == TINY_LLAMA
    assert inspect_path(tmp_path / "model.safetensors").parameter_count == n


def test_sharded_index(tmp_path: Path) -> None:
    n = write_llama(tmp_path, shards=3)
    r = inspect_path(tmp_path / "model.safetensors.index.json")
    assert r.format == "safetensors-sharded" and r.parameter_count == n
    assert inspect_path(tmp_path).parameter_count == n  # the folder finds the index
    (tmp_path / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(InspectError, match=r"shard model-00002-of-00003\.safetensors .* is missing"):
        inspect_path(tmp_path)


@pytest.mark.parametrize(("qtype", "file_type", "bpw"), [("Q8_0", "Q8_0", 8.5), ("Q4_K", "Q4_K_M", 4.5)])
def test_gguf_two_quant_types(tmp_path: Path, qtype: str, file_type: str, bpw: float) -> None:
    path = tmp_path / f"tiny-{qtype}.gguf"
    n = write_gguf(path, qtype)
    assert n == llama_count(GGUF_LLAMA)
    r = inspect_path(path)
    assert r.parameter_count == n and r.precision == file_type
    norms = 5 * 256  # F32 norm weights: 2 per layer + final
    assert r.params_by_dtype == {qtype: n - norms, "F32": norms}
    assert r.bits_per_weight == pytest.approx(((n - norms) * bpw + norms * 32) / n)
    a = r.architecture
    assert a is not None
    assert (a.num_hidden_layers, a.hidden_size, a.num_attention_heads, a.num_key_value_heads) == (2, 256, 4, 2)
    assert (a.intermediate_size, a.vocab_size, a.max_position_embeddings) == (512, 256, 512)
    assert not a.tie_word_embeddings and a.model_type == "llama"
    assert r.spec().WhichOneof("source") == "architecture"


def test_onnx_graph(tmp_path: Path) -> None:
    n = write_onnx(tmp_path / "mlp.onnx")
    r = inspect_path(tmp_path / "mlp.onnx")
    assert r.parameter_count == n == 32 * 64 + 64 + 64 * 16 + 16
    assert r.precision == "FP16" and r.spec().parameter_count == n


def test_gptq_counts_unpacked_weights_and_group_size(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    cfg = dict(TINY_LLAMA, quantization_config={"quant_method": "gptq", "bits": 4, "group_size": 32})
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    # one 4-bit linear of 128 in x 64 out, GPTQ layout: 8 weights per int32 along the input
    save_file(
        {
            "l.qweight": np.zeros((128 // 8, 64), np.int32),
            "l.qzeros": np.zeros((128 // 32, 64 // 8), np.int32),
            "l.scales": np.zeros((128 // 32, 64), np.float16),
            "l.g_idx": np.zeros((128,), np.int32),
            "norm.weight": np.zeros((64,), np.float16),
        },
        str(tmp_path / "model.safetensors"),
    )
    r = inspect_path(tmp_path)
    assert r.parameter_count == 128 * 64 + 64
    assert r.precision == "INT4 (GPTQ, group 32)" and r.group_size == 32


def test_fp8_e4m3_scales_are_not_parameters(tmp_path: Path) -> None:
    import ml_dtypes
    from safetensors.numpy import save_file

    save_file(
        {
            "l.weight": np.zeros((64, 32), ml_dtypes.float8_e4m3fn),
            "l.weight_scale": np.ones((1,), np.float32),
            "l.input_scale": np.ones((1,), np.float32),
            "norm.weight": np.zeros((32,), np.float32),
        },
        str(tmp_path / "m.safetensors"),
    )
    r = inspect_path(tmp_path / "m.safetensors")
    assert r.parameter_count == 64 * 32 + 32 and r.precision == "FP8 E4M3"


def test_bad_files_are_named_with_the_problem(tmp_path: Path) -> None:
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"abc")
    with pytest.raises(InspectError, match=r"short\.safetensors: truncated header"):
        inspect_path(short)
    long = tmp_path / "long.safetensors"
    long.write_bytes(struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(InspectError, match=r"long\.safetensors: header length 1,000,000,000 is larger than the file"):
        inspect_path(long)
    header = json.dumps({"w": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 2]}}).encode()
    odd = tmp_path / "odd.safetensors"
    odd.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0")
    with pytest.raises(InspectError, match=r"odd\.safetensors: not a valid safetensors file: .*unknown variant `Q9`"):
        inspect_path(odd)
    gg = tmp_path / "cut.gguf"
    write_gguf(gg, "Q8_0")
    gg.write_bytes(gg.read_bytes()[:200])
    with pytest.raises(InspectError, match=r"cut\.gguf: not a valid GGUF file"):
        inspect_path(gg)


def test_pickle_checkpoints_are_refused_never_unpickled(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):  # what a malicious checkpoint does: run code on load
            return (Path.touch, (marker,))

    pt = tmp_path / "pytorch_model.bin"
    pt.write_bytes(pickle.dumps(Boom(), protocol=2))
    with pytest.raises(InspectError, match=r"pytorch_model\.bin: a PyTorch pickle checkpoint: refused, not unpickled"):
        inspect_path(pt)
    with pytest.raises(InspectError, match="refused"):
        inspect_path(tmp_path)  # a folder holding only the pickle
    assert not marker.exists()


def test_cli_inspect_text_json_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_llama(tmp_path)
    assert main(["inspect", str(tmp_path)]) == 0
    assert "parameters:  125,248" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path), "--json"]) == 0
    spec = json_format.Parse(capsys.readouterr().out, models_pb2.ModelSpec())
    assert spec.WhichOneof("source") == "hf_config_json"
    assert main(["inspect", str(tmp_path / "missing.gguf")]) == 2
    assert "missing.gguf: no such file" in capsys.readouterr().err


def test_headers_only_on_a_large_sparse_file(tmp_path: Path) -> None:
    """A 100 GiB checkpoint (sparse: no disk used) is inspected from its header in well under a second."""
    import time

    n = 100 * 2**30 // 2
    header = json.dumps({"w": {"dtype": "BF16", "shape": [n // 4096, 4096], "data_offsets": [0, 2 * n]}}).encode()
    header += b" " * (-len(header) % 8)
    p = tmp_path / "big.safetensors"
    with p.open("wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + 2 * n)
    t0 = time.monotonic()
    assert inspect_path(p).parameter_count == n
    assert time.monotonic() - t0 < 1.0


def test_missing_extra_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.gguf"
    write_gguf(path, "Q8_0")
    monkeypatch.setitem(__import__("sys").modules, "gguf", None)  # as if `accelplan[inspect]` were not installed
    with pytest.raises(InspectError, match=r"m\.gguf: the gguf package is missing: pip install 'accelplan\[inspect\]'"):
        inspect_path(path)


def test_no_server_code_depends_on_detect_or_inspect() -> None:
    server = Path(__file__).parents[2] / "server"
    users = [
        p
        for p in server.rglob("*.py")
        if "accelplan.detect" in p.read_text()
        or "accelplan.inspect" in p.read_text()
        or "accelplan import" in p.read_text()
    ]
    assert users == []
