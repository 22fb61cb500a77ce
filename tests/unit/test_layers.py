"""The folders are the layers: each may import only the layers below it.

core/      pure calculations: no grpc, no protobuf, nothing above it
rpc/       the gRPC surface: core and the generated messages, never the serving process or adapters
runtime/   the serving process: rpc and core
adapters/  scheduler adapters: anything below them; nothing imports them but entry points
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parents[2] / "server" / "src" / "accelplan_server"

FORBIDDEN = {
    "core": (
        "grpc",
        "grpc_health",
        "grpc_reflection",
        "grpc_status",
        "google.protobuf",
        "google.rpc",
        "accelplan.v1",
        "accelplan_server.rpc",
        "accelplan_server.runtime",
        "accelplan_server.adapters",
    ),
    "rpc": ("accelplan_server.runtime", "accelplan_server.adapters"),
    "runtime": ("accelplan_server.adapters",),
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _is_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_lies_below(layer: str) -> None:
    files = sorted((SERVER / layer).rglob("*.py"))
    assert files, f"no modules under {layer}/"
    wrong = [
        f"{path.relative_to(SERVER)} imports {module}"
        for path in files
        for module in sorted(imported_modules(path))
        if any(_is_under(module, banned) for banned in FORBIDDEN[layer])
    ]
    assert not wrong, "\n".join(wrong)


def test_top_level_holds_only_layers() -> None:
    modules = {p.name for p in SERVER.glob("*.py")}
    assert modules == {"__init__.py"}, f"modules outside a layer folder: {sorted(modules - {'__init__.py'})}"


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    import grpc\n    from accelplan_server.runtime import serve\n")
    assert {"grpc", "accelplan_server.runtime"} <= imported_modules(sample)
