"""Every example in README.md and the Python client's README runs as written against a live server.

The SDK READMEs' programs (marked ``<!-- example: FILE -->``) are run by scripts/consumers/* against the
packaged SDKs (`make test-packages`).

Shell lines (``sh`` blocks, and the ``$`` lines of ``console`` blocks) run in bash in a mirror of the
repository root with .venv/bin first on PATH and the server's address in place of
localhost:50051 (and in $ACCELPLAN_SERVER); ``python`` blocks run in this interpreter.
Left out, each for its stated reason: ``make serve`` / ``make test`` (they start a server on the
fixed port or run this suite), ``accelplan serve`` with production TLS files, ``pip install`` of the
released package (scripts/consumers/python installs the built wheels instead), and grpcurl lines
when grpcurl is not installed (the buf curl lines beside them make the same calls).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
READMES = [ROOT / "README.md", ROOT / "client/python/README.md"]
BLOCK = re.compile(r"^``` ?(sh|console|python)\n(.*?)^```", re.S | re.M)
DEFAULT_ADDRESS = "localhost:50051"
LEFT_OUT = ("make ", "accelplan serve", ".venv/bin/accelplan serve", "pip install")


def _shell_commands(lang: str, body: str) -> list[str]:
    lines = body.splitlines()
    if lang == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    commands: list[str] = []
    pending = ""
    for line in lines:
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip() and not pending.lstrip().startswith("#"):
            commands.append(pending.strip())
        pending = ""
    return commands


def examples() -> list[tuple[str, str, str]]:
    """(id, language, code) of every example, README order."""
    found = []
    for readme in READMES:
        text = readme.read_text(encoding="utf-8")
        name = str(readme.relative_to(ROOT))
        for n, m in enumerate(BLOCK.finditer(text)):
            lang, body = m.group(1), m.group(2)
            line = text[: m.start()].count("\n") + 1
            if lang == "python":
                found.append((f"{name}:{line}", lang, body))
                continue
            for command in _shell_commands(lang, body):
                if not command.startswith(LEFT_OUT):
                    found.append((f"{name}:{line}:{command.split()[0]}:{n}", "sh", command))
    return found


EXAMPLES = examples()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the examples run: a mirror of the checkout (links), so files they write stay out of it."""
    work = tmp_path_factory.mktemp("readme")
    for entry in ROOT.iterdir():  # the checkout's paths (docs/examples/..., .venv/bin/...) read as written
        if entry.name not in (".git", ".venv"):
            (work / entry.name).symlink_to(entry)
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return work


def test_examples_were_found() -> None:
    kinds = [code.split()[0] for _, lang, code in EXAMPLES if lang == "sh"]
    assert kinds.count("accelplan") >= 10 and "buf" in kinds and any(lang == "python" for _, lang, _ in EXAMPLES)


@pytest.mark.parametrize(
    ("lang", "code"), [(lang, code) for _, lang, code in EXAMPLES], ids=[i for i, _, _ in EXAMPLES]
)
def test_example_runs_as_written(server: ServerProcess, workdir: Path, lang: str, code: str) -> None:
    if code.startswith("grpcurl") and shutil.which("grpcurl") is None:
        pytest.skip("grpcurl is not installed; the buf curl lines above make the same calls")
    code = code.replace(DEFAULT_ADDRESS, server.address)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ACCELPLAN_SERVER": server.address,
        "PYTHONPATH": str(ROOT),
    }
    argv = [sys.executable, "-c", code] if lang == "python" else ["bash", "-c", code]
    out = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{code}\n{out.stdout}\n{out.stderr}"
    assert "Traceback" not in out.stderr
