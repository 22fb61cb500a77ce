import json
from pathlib import Path

import pytest

from accelplan_server.core.catalog import Catalog
from accelplan_server.core.cost import find_compatible_models, recommend_instances
from accelplan_server.core.errors import NotFound
from accelplan_server.core.memory.hwaccel_serving import estimate_memory
from accelplan_server.core.quantization import Quantization as Q

DATA = Path(__file__).resolve().parents[2] / "server" / "src" / "accelplan_server" / "data"
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "ai-hwaccel" / "models.json"

AI_HWACCEL_MODELS = [
    "Llama 3.1 8B",
    "Llama 3.1 70B",
    "Llama 3.1 405B",
    "Llama 3.2 1B",
    "Llama 3.2 3B",
    "Mistral 7B",
    "Mixtral 8x7B",
    "Mixtral 8x22B",
    "Mistral Large 2",
    "Gemma 2 2B",
    "Gemma 2 9B",
    "Gemma 2 27B",
    "Phi-3 Mini",
    "Phi-3 Medium",
    "Qwen 2.5 7B",
    "Qwen 2.5 14B",
    "Qwen 2.5 72B",
    "DeepSeek V3",
    "DeepSeek R1",
    "Falcon 7B",
    "Falcon 40B",
    "Falcon 180B",
    "Command R+",
    "DBRX",
    "Stable Diffusion XL",
    "Whisper Large V3",
]


def test_every_row_has_a_source() -> None:
    for name, key, source_keys in [
        ("models.json", "models", ("parameter_count_source",)),
        ("accelerators.json", "accelerators", ("source",)),
        ("cloud_instances.json", "instances", ("source",)),
    ]:
        rows = json.loads((DATA / name).read_text())[key]
        assert rows
        for row in rows:
            for s in source_keys:
                assert row.get(s), f"{name}: {row.get('id') or row.get('sku') or row.get('name')} lacks {s}"
            assert row.get("retrieved"), f"{name}: row without a retrieval date"


def test_covers_ai_hwaccel_models(catalog: Catalog) -> None:
    names = " | ".join(m.name.replace("Qwen2.5", "Qwen 2.5") for m in catalog.models)
    for wanted in AI_HWACCEL_MODELS:
        assert wanted.lower() in names.lower(), wanted
    assert len(catalog.models) >= 26


def test_exact_published_counts(catalog: Catalog) -> None:
    # Counts from the models' safetensors indexes / model cards (see models.json sources).
    assert catalog.model("llama-3.1-8b").parameter_count == 8_030_261_248
    assert catalog.model("llama-3.1-70b").parameter_count == 70_553_706_496
    assert catalog.model("llama-3.1-405b").parameter_count == 405_853_388_800
    assert catalog.model("mixtral-8x7b").parameter_count == 46_702_792_704


def test_lookup_is_case_insensitive_and_accepts_hf_repo(catalog: Catalog) -> None:
    m = catalog.model("LLAMA-3.1-70B")
    assert catalog.model(m.hf_repo.upper()) is m
    with pytest.raises(NotFound):
        catalog.model("no-such-model")


def test_moe_active_parameters(catalog: Catalog) -> None:
    m = catalog.model("mixtral-8x7b")
    assert m.active_parameter_count < m.parameter_count


def test_instances_reference_catalogue_accelerators(catalog: Catalog) -> None:
    skus = {a.sku for a in catalog.accelerators}
    for i in catalog.instances:
        assert i.accelerator_sku in skus
        assert i.accelerator_count >= 1 and i.accelerator_memory_bytes > 0


def test_known_wrong_reference_row_is_corrected(catalog: Catalog) -> None:
    # ai-hwaccel lists Standard_ND96amsr_A100_v4 as 8x MI300X; it is 8x A100 80GB.
    row = next(i for i in catalog.instances if i.name == "Standard_ND96amsr_A100_v4")
    assert row.accelerator_sku.startswith("a100-80gb")


def test_recommendations_cheapest_first_and_fit(catalog: Catalog) -> None:
    need = estimate_memory(70_000_000_000, Q.BFLOAT16).total_bytes
    fits = recommend_instances(catalog, need)
    prices = [f.instance.price_per_hour_usd for f in fits]
    assert prices == sorted(prices) and prices and min(prices) > 0
    assert all(f.instance.total_accelerator_memory_bytes >= need for f in fits)
    assert all(f.headroom_bytes == f.instance.total_accelerator_memory_bytes - need for f in fits)
    fitting_priced = [
        i for i in catalog.instances if i.total_accelerator_memory_bytes >= need and i.price_per_hour_usd > 0
    ]
    assert len(fits) == len(fitting_priced)


def test_recommendations_by_provider(catalog: Catalog) -> None:
    fits = recommend_instances(catalog, 1, "GCP")
    assert fits and {f.instance.provider for f in fits} == {"gcp"}


def test_compatible_models_largest_first(catalog: Catalog) -> None:
    budget = 80 * 2**30

    def need(m: object) -> int:
        return estimate_memory(m.parameter_count, Q.INT4).total_bytes  # type: ignore[attr-defined]

    fits = find_compatible_models(catalog, need, budget)
    counts = [f.model.parameter_count for f in fits]
    assert counts == sorted(counts, reverse=True)
    assert all(f.required_memory_bytes <= budget for f in fits)
    assert all(f.required_memory_bytes + f.headroom_bytes == budget for f in fits)
    outside = {m.id for m in catalog.models} - {f.model.id for f in fits}
    assert all(estimate_memory(catalog.model(i).parameter_count, Q.INT4).total_bytes > budget for i in outside)


def test_catalogue_memory_is_what_the_runtime_reports_where_sourced(catalog: Catalog) -> None:
    """Issue 11: an L40S exposes about 44.5 GiB to CUDA (ECC on), not 48 GiB."""
    l40s = catalog.accelerator("l40s")
    assert l40s is not None and l40s.memory_bytes == 47_803_596_800


def test_peak_flops_follow_one_convention(catalog: Catalog) -> None:
    """Dense FP16/BF16 with FP32 accumulate: the RTX 4090 and 5090 rows agree; Apple GPUs have sourced peaks."""
    for sku in ("rtx-3090", "rtx-4090", "rtx-5090"):
        a = catalog.accelerator(sku)
        assert a is not None
        assert a.fp16_accumulate_tflops == pytest.approx(2 * a.peak_tflops["fp16"], rel=0.01), sku
    r5090 = catalog.accelerator("rtx-5090")
    assert r5090 is not None and r5090.peak_tflops["bf16"] == pytest.approx(209.5)
    for sku in ("apple-m2-max", "apple-m2-ultra", "apple-m3-max", "apple-m3-ultra"):
        a = catalog.accelerator(sku)
        assert a is not None and a.peak_tflops.get("fp16", 0) > 10, sku


def test_measured_decode_mbu_rows_name_their_source(catalog: Catalog) -> None:
    measured = [a for a in catalog.accelerators if a.decode_mbu]
    assert len(measured) >= 4
    assert all(0 < a.decode_mbu <= 0.95 and a.decode_mbu_source for a in measured)
