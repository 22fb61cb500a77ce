"""`accelplan detect` on recorded tool outputs and fake /proc, /sys and /dev trees (no hardware needed).

Tool outputs in detect_fixtures/ follow each tool's documented format; fake executables that print
them come first (and alone) on PATH.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from accelplan.cli import main
from accelplan.detect import detect, render
from accelplan.v1 import hardware_pb2 as hw

FIX = Path(__file__).parent / "detect_fixtures"
GiB = 2**30


def tool(bin_dir: Path, name: str, *cases: tuple[str, str], hang: bool = False) -> None:
    """A fake executable: the first case whose pattern occurs in its arguments prints that fixture."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    lines = ["#!/bin/sh"]
    if hang:
        lines.append("exec /bin/sleep 30")
    else:
        lines.append('case "$*" in')
        lines += [f'  *"{pat}"*) /bin/cat "{FIX / fixture}" ;;' for pat, fixture in cases]
        lines += ['  *) echo "unexpected arguments: $*" >&2; exit 3 ;;', "esac"]
    p = bin_dir / name
    p.write_text("\n".join(lines) + "\n")
    p.chmod(0o755)


def write(root: Path, path: str, text: str) -> None:
    f = root / path.lstrip("/")
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text)


def host_tree(root: Path, mem_kib: int = 2_113_000_000, nodes: int = 1, model: str = "Intel(R) Xeon(R) Platinum 8480+"):
    """/proc/meminfo, /proc/cpuinfo (2 threads per socket here) and NUMA nodes as the kernel writes them."""
    write(root, "/proc/meminfo", f"MemTotal:       {mem_kib} kB\nMemFree:        {mem_kib // 2} kB\n")
    blocks = []
    for cpu in range(2 * nodes):
        blocks.append(
            f"processor\t: {cpu}\nvendor_id\t: GenuineIntel\nmodel name\t: {model}\n"
            f"physical id\t: {cpu // 2}\ncore id\t\t: {cpu % 2}\n"
        )
    write(root, "/proc/cpuinfo", "\n".join(blocks) + "\n")
    for n in range(nodes):
        write(
            root,
            f"/sys/devices/system/node/node{n}/meminfo",
            f"Node {n} MemTotal:       {mem_kib // nodes} kB\nNode {n} MemFree:        1000 kB\n",
        )


def pci_numa(root: Path, bus: str, node: int) -> None:
    write(root, f"/sys/bus/pci/devices/{bus}/numa_node", f"{node}\n")


def run(tmp: Path, env: dict[str, str] | None = None, timeout: float = 5.0, backends=None):
    return detect(root=tmp / "root", path=str(tmp / "bin"), env=env or {}, timeout_s=timeout, backends=backends)


def of_type(d, t):
    return [a for a in d.fleet.accelerators if a.type == t]


def test_h100_sxm_with_nvswitch(tmp_path: Path) -> None:
    host_tree(tmp_path / "root", nodes=2)
    for i, bus in enumerate(["0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0"]):
        pci_numa(tmp_path / "root", bus, 0 if i < 4 else 1)
    pci_numa(tmp_path / "root", "0000:db:00.0", 1)
    tool(tmp_path / "bin", "nvidia-smi", ("topo", "h100_topo.txt"), ("--query-gpu", "h100_query.csv"))
    d = run(tmp_path)
    gpus = of_type(d, hw.ACCELERATOR_TYPE_CUDA_GPU)
    assert len(gpus) == 8
    assert {g.sku for g in gpus} == {"h100-sxm"}
    assert gpus[0].memory_bytes == 81559 * 2**20
    assert gpus[0].numa_node == 0 and gpus[7].numa_node == 1
    assert not gpus[5].HasField("numa_node")  # no sysfs entry written for it: unknown, not guessed
    (link,) = d.fleet.interconnects
    assert link.kind == hw.INTERCONNECT_KIND_NVSWITCH
    assert link.bandwidth_gigabytes_per_second == 900
    assert len(of_type(d, hw.ACCELERATOR_TYPE_CPU)) == 2  # two NUMA nodes
    assert (
        "nvidia: GPU 0 GPU-00000000-1111-2222-3333-444455556666, PCI 00000000:18:00.0, "
        "compute capability 9.0, 18 NVLink links" in d.notes
    )
    lab = render.labels(d)
    assert lab["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert lab["nvidia.com/gpu.count"] == "8"
    assert lab["nvidia.com/gpu.memory"] == "81559"
    assert lab["accelplan.dev/accelerator.sku"] == "h100-sxm"
    assert lab["accelplan.dev/accelerator.count"] == "8"
    assert lab["accelplan.dev/accelerator.memory-mib"] == "81559"
    assert lab["accelplan.dev/accelerator.interconnect"] == "nvswitch"


def test_a100_pcie_without_nvlink(tmp_path: Path) -> None:
    host_tree(tmp_path / "root")
    tool(tmp_path / "bin", "nvidia-smi", ("topo", "a100pcie_topo.txt"), ("--query-gpu", "a100pcie_query.csv"))
    d = run(tmp_path)
    gpus = of_type(d, hw.ACCELERATOR_TYPE_CUDA_GPU)
    assert [g.sku for g in gpus] == ["a100-80gb-pcie"] * 4
    assert not d.fleet.interconnects
    assert any("no NVLink" in n for n in d.notes)
    assert render.labels(d)["accelplan.dev/accelerator.interconnect"] == "none"


def test_mig_partitioned_a100(tmp_path: Path) -> None:
    host_tree(tmp_path / "root")
    tool(tmp_path / "bin", "nvidia-smi", ("-L", "mig_list.txt"), ("--query-gpu", "mig_query.csv"))
    d = run(tmp_path)
    gpus = of_type(d, hw.ACCELERATOR_TYPE_CUDA_GPU)
    assert [g.name for g in gpus] == ["NVIDIA A100-SXM4-40GB MIG 3g.20gb"] * 2
    assert [g.memory_bytes for g in gpus] == [20 * GiB] * 2
    assert all(not g.sku for g in gpus)  # a slice is not the whole GPU: no sku bandwidth claimed
    lab = render.labels(d)
    assert lab["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB-MIG-3g.20gb"
    assert lab["nvidia.com/gpu.count"] == "2"
    assert "accelplan.dev/accelerator.sku" not in lab  # only catalogue skus are published
    assert lab["accelplan.dev/accelerator.memory-mib"] == str(20 * 1024)


def test_nvml_is_preferred_when_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The NVML path, against a stand-in for nvidia-ml-py's documented functions (2 GPUs, 12 NVLinks to each other)."""
    import types

    class Mem:
        total = 80 * GiB

    class Pci:
        def __init__(self, bus: str) -> None:
            self.busId = bus

    buses = ["00000000:07:00.0", "00000000:0f:00.0"]
    nv = types.SimpleNamespace(
        NVML_DEVICE_MIG_ENABLE=1,
        NVML_FEATURE_ENABLED=1,
        NVML_NVLINK_MAX_LINKS=18,
        NVML_NVLINK_DEVICE_TYPE_SWITCH=2,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: "NVIDIA A100-SXM4-80GB",
        nvmlDeviceGetMemoryInfo=lambda h: Mem(),
        nvmlDeviceGetUUID=lambda h: f"GPU-{h}",
        nvmlDeviceGetPciInfo=lambda h: Pci(buses[h]),
        nvmlDeviceGetCudaComputeCapability=lambda h: (8, 0),
        nvmlDeviceGetNumaNodeId=lambda h: h,
        nvmlDeviceGetMigMode=lambda h: (0, 0),
        nvmlDeviceGetNvLinkState=lambda h, link: 1 if link < 12 else 0,
        nvmlDeviceGetNvLinkRemoteDeviceType=lambda h, link: 0,
        nvmlDeviceGetNvLinkRemotePciInfo=lambda h, link: Pci(buses[1 - h]),
    )
    monkeypatch.setitem(__import__("sys").modules, "pynvml", nv)
    host_tree(tmp_path / "root")
    d = run(tmp_path, backends=["nvidia"])
    gpus = d.fleet.accelerators
    assert [g.sku for g in gpus] == ["a100-80gb-sxm"] * 2
    assert [g.numa_node for g in gpus] == [0, 1]
    (link,) = d.fleet.interconnects
    assert link.kind == hw.INTERCONNECT_KIND_NVLINK  # two GPUs bridged, no switch
    assert link.bandwidth_gigabytes_per_second == 600
    assert any("NVML" in n for n in d.notes)
    assert "nvidia: GPU 1 GPU-1, PCI 00000000:0f:00.0, compute capability 8.0, 12 NVLink links" in d.notes


def test_mi300x_with_xgmi(tmp_path: Path) -> None:
    host_tree(tmp_path / "root")
    pci_numa(tmp_path / "root", "0000:0c:00.0", 0)
    tool(
        tmp_path / "bin",
        "rocm-smi",
        ("--showtopotype", "mi300x_topotype.json"),
        ("--showproductname", "mi300x_rocm_smi.json"),
    )
    d = run(tmp_path)
    gpus = of_type(d, hw.ACCELERATOR_TYPE_ROCM_GPU)
    assert len(gpus) == 8 and {g.sku for g in gpus} == {"mi300x"}
    assert gpus[0].memory_bytes == 206141652992 and gpus[0].numa_node == 0
    (link,) = d.fleet.interconnects
    assert link.kind == hw.INTERCONNECT_KIND_XGMI_INFINITY_FABRIC and link.bandwidth_gigabytes_per_second == 896
    lab = render.labels(d)
    assert (
        lab["accelplan.dev/accelerator.sku"] == "mi300x"
        and lab["accelplan.dev/accelerator.interconnect"] == "xgmi_infinity_fabric"
    )
    assert "nvidia.com/gpu.product" not in lab


def test_gaudi2(tmp_path: Path) -> None:
    host_tree(tmp_path / "root")
    tool(tmp_path / "bin", "hl-smi", ("-Q", "gaudi2_hlsmi.csv"))
    d = run(tmp_path)
    g = of_type(d, hw.ACCELERATOR_TYPE_GAUDI)
    assert len(g) == 8 and {a.sku for a in g} == {"gaudi2"}
    assert g[0].gaudi_generation == hw.GAUDI_GENERATION_GAUDI2 and g[0].memory_bytes == 96 * GiB
    assert d.fleet.interconnects[0].kind == hw.INTERCONNECT_KIND_ROCE_V2
    assert render.labels(d)["accelplan.dev/accelerator.interconnect"] == "roce_v2"
    assert render.labels(d)["accelplan.dev/accelerator.memory-mib"] == "98304"


def test_trainium_trn1(tmp_path: Path) -> None:
    host_tree(tmp_path / "root")
    write(tmp_path / "root", "/sys/devices/virtual/dmi/id/product_name", "trn1.32xlarge\n")
    tool(tmp_path / "bin", "neuron-ls", ("--json-output", "trn1_neuron_ls.json"))
    d = run(tmp_path)
    n = of_type(d, hw.ACCELERATOR_TYPE_AWS_NEURON)
    assert len(n) == 16 and {a.sku for a in n} == {"trainium1"}
    assert n[0].neuron_chip_type == hw.NEURON_CHIP_TYPE_TRAINIUM and n[0].neuron_core_count == 2
    assert n[0].memory_bytes == 32 * GiB
    assert any("NeuronLink" in x for x in d.notes)
    assert render.labels(d)["accelplan.dev/accelerator.count"] == "16"


def test_tpu_v5e_8(tmp_path: Path) -> None:
    root = tmp_path / "root"
    host_tree(root)
    for i in range(8):
        write(root, f"/dev/accel{i}", "")
        write(root, f"/sys/class/accel/accel{i}/device/vendor", "0x1ae0\n")
        write(root, f"/sys/class/accel/accel{i}/device/device", "0x0063\n")
        write(root, f"/sys/class/accel/accel{i}/device/numa_node", "0\n")
    (tmp_path / "bin").mkdir()
    d = run(tmp_path, env={"TPU_ACCELERATOR_TYPE": "v5litepod-8"})
    t = of_type(d, hw.ACCELERATOR_TYPE_TPU)
    assert len(t) == 8 and {a.sku for a in t} == {"tpu-v5e"}
    assert t[0].tpu_version == hw.TPU_VERSION_V5E and t[0].memory_bytes == 16 * GiB
    assert d.fleet.interconnects[0].kind == hw.INTERCONNECT_KIND_ICI
    lab = render.labels(d)
    assert lab["accelplan.dev/accelerator.sku"] == "tpu-v5e" and lab["accelplan.dev/accelerator.interconnect"] == "ici"
    # without the variable the PCI device id still names the generation
    assert {a.sku for a in of_type(run(tmp_path), hw.ACCELERATOR_TYPE_TPU)} == {"tpu-v5e"}


def test_m2_max_laptop(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()  # macOS: no /proc
    tool(tmp_path / "bin", "system_profiler", ("SPDisplaysDataType", "m2max_sp.json"))
    b = tmp_path / "bin" / "sysctl"
    b.write_text("#!/bin/sh\necho 68719476736\n")
    b.chmod(0o755)
    d = run(tmp_path)
    (gpu,) = of_type(d, hw.ACCELERATOR_TYPE_METAL_GPU)
    assert gpu.sku == "apple-m2-max" and gpu.memory_bytes == 64 * GiB
    assert not of_type(d, hw.ACCELERATOR_TYPE_CPU)
    assert any(w.startswith("cpu:") for w in d.warnings)


def test_two_socket_cpu_only_host(tmp_path: Path) -> None:
    host_tree(tmp_path / "root", mem_kib=1_056_000_000, nodes=2)
    (tmp_path / "bin").mkdir()
    d = run(tmp_path)
    cpus = d.fleet.accelerators
    assert [a.type for a in cpus] == [hw.ACCELERATOR_TYPE_CPU] * 2
    assert [a.numa_node for a in cpus] == [0, 1]
    assert [a.memory_bytes for a in cpus] == [528_000_000 * 1024] * 2
    assert any("2 socket(s)" in n for n in d.notes)
    lab = render.labels(d)
    assert "accelplan.dev/accelerator.sku" not in lab and lab["accelplan.dev/accelerator.count"] == "2"
    assert lab["accelplan.dev/accelerator.memory-mib"] == str(528_000_000 // 1024)
    assert len(d.warnings) == 8  # every accelerator backend says what it did not find


def test_every_tool_missing_or_hanging(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "root").mkdir()
    for name in ("nvidia-smi", "rocm-smi", "hl-smi", "neuron-ls", "system_profiler"):
        tool(tmp_path / "bin", name, hang=True)
    t0 = time.monotonic()
    d = run(tmp_path, timeout=1.0)
    assert time.monotonic() - t0 < 3.0  # one timeout for all, not one per tool
    assert not d.fleet.accelerators
    assert sum("did not answer" in w for w in d.warnings) == 5
    # the command: exit 0, warnings on stderr
    root, path = str(tmp_path / "root"), str(tmp_path / "bin")
    mp = pytest.MonkeyPatch()
    mp.setenv("PATH", path)
    try:
        assert main(["detect", "--root", root, "--timeout", "1"]) == 0
    finally:
        mp.undo()
    err = capsys.readouterr().err
    assert "warning: nvidia:" in err and "warning: cpu:" in err


def test_cli_json_labels_and_nfd_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    host_tree(tmp_path / "root")
    tool(tmp_path / "bin", "hl-smi", ("-Q", "gaudi2_hlsmi.csv"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    root = str(tmp_path / "root")
    assert main(["detect", "--root", root, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["fleet"]["accelerators"]) == 9 and doc["labels"]["accelplan.dev/accelerator.sku"] == "gaudi2"
    nfd = tmp_path / "accelplan.features"
    assert main(["detect", "--root", root, "--nfd-features", str(nfd)]) == 0
    lines = [x for x in nfd.read_text().splitlines() if not x.startswith("#")]
    assert "accelplan.dev/accelerator.count=8" in lines
    assert main(["detect", "--root", root, "--labels"]) == 0
    assert "accelplan.dev/accelerator.sku=gaudi2" in capsys.readouterr().out


def test_this_machine_reports_cpu_and_memory() -> None:
    """The real host (a CPU-only VM in CI): at least one CPU with MemTotal's memory, honestly."""
    d = detect(timeout_s=5)
    cpus = [a for a in d.fleet.accelerators if a.type == hw.ACCELERATOR_TYPE_CPU]
    total = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
    assert cpus and sum(a.memory_bytes for a in cpus) <= total * 1024
    assert sum(a.memory_bytes for a in cpus) >= total * 1024 * 0.9


def test_intel_gpu_npu_and_amd_xdna_from_sysfs(tmp_path: Path) -> None:
    import os

    root = tmp_path / "root"
    host_tree(root, mem_kib=32 * 1024 * 1024)
    for card, vendor, drv in (("card0", "0x8086", "xe"), ("card1", "0x10de", "nvidia")):
        write(root, f"/sys/class/drm/{card}/device/vendor", vendor + "\n")
        write(root, f"/sys/class/drm/{card}/device/device", "0xe20b\n")
        os.symlink(f"../../../../bus/pci/drivers/{drv}", root / f"sys/class/drm/{card}/device/driver")
    write(root, "/sys/class/drm/card0/device/tile0/vram0/size", str(12 * GiB) + "\n")
    write(root, "/sys/class/drm/card0-DP-1/status", "connected\n")
    for accel, drv in (("accel0", "intel_vpu"), ("accel1", "amdxdna")):
        write(root, f"/sys/class/accel/{accel}/device/device", "0x7d1d\n")
        os.symlink(f"../../../../bus/pci/drivers/{drv}", root / f"sys/class/accel/{accel}/device/driver")
    (tmp_path / "bin").mkdir()
    d = run(tmp_path)
    (gpu,) = of_type(d, hw.ACCELERATOR_TYPE_INTEL_ONEAPI)
    assert gpu.memory_bytes == 12 * GiB and "xe" in gpu.name
    (npu,) = of_type(d, hw.ACCELERATOR_TYPE_INTEL_NPU)
    (xdna,) = of_type(d, hw.ACCELERATOR_TYPE_AMD_XDNA_NPU)
    assert npu.memory_bytes == xdna.memory_bytes == 32 * GiB  # they share host memory
    assert any("shares host memory" in n for n in d.notes)


def test_amd_smi_when_rocm_smi_is_absent(tmp_path: Path) -> None:
    host_tree(tmp_path / "root")
    tool(tmp_path / "bin", "amd-smi", ("static", "mi300x_amd_smi.json"))
    d = run(tmp_path, backends=["amd"])
    gpus = d.fleet.accelerators
    assert len(gpus) == 2 and {g.sku for g in gpus} == {"mi300x"}
    assert gpus[0].memory_bytes == 196592 * 2**20
