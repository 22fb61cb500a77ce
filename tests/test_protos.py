"""The protos stay lint-clean and the breaking-change check catches a renumbered field."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUF = ROOT / ".venv" / "bin" / "buf"


def copy_module(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    return tmp_path


def test_buf_lint_passes() -> None:
    out = subprocess.run([str(BUF), "lint"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_unchanged_protos_are_not_breaking(tmp_path: Path) -> None:
    module = copy_module(tmp_path)
    out = subprocess.run(
        [str(ROOT / "scripts" / "check-breaking"), str(module)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_renumbered_field_is_breaking(tmp_path: Path) -> None:
    module = copy_module(tmp_path)
    proto = module / "protos" / "accelplan" / "v1" / "models.proto"
    text = proto.read_text()
    assert "uint64 parameter_count = 1;" in text
    proto.write_text(text.replace("uint64 parameter_count = 1;", "uint64 parameter_count = 9;", 1))
    out = subprocess.run(
        [str(ROOT / "scripts" / "check-breaking"), str(module)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode != 0
    assert "parameter_count" in out.stdout + out.stderr


def test_every_message_and_field_is_commented() -> None:
    # buf's COMMENTS category enforces this; make sure buf.yaml keeps it on.
    assert "COMMENTS" in (ROOT / "buf.yaml").read_text()
