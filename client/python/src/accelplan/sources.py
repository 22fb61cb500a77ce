"""Fleets and models from the local machine and files, for every CLI command.

``--fleet detect`` probes this machine; ``--fleet @FILE`` reads ``accelplan detect --json``
output (or a bare accelplan.v1.Fleet in proto3 JSON); anything else is the compact notation
(accelplan.fleetspec). ``--model @PATH`` inspects a model file or folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from google.protobuf import json_format

from accelplan.fleetspec import LINKS, parse_fleet
from accelplan.v1 import hardware_pb2, models_pb2


def resolve_fleet(spec: str, links: list[str] | None = None, timeout_s: float = 5.0) -> hardware_pb2.Fleet:
    """A Fleet from ``detect``, ``@FILE`` or the compact notation; --link entries are added to the first two."""
    text = spec.strip()
    if text == "detect":
        from accelplan.detect import detect

        d = detect(timeout_s=timeout_s)
        for w in d.warnings:
            print(f"accelplan: detect: {w}", file=sys.stderr)
        fleet = d.fleet
    elif text.startswith("@"):
        fleet = load_fleet(Path(text[1:]))
    else:
        return parse_fleet(text, links)
    extra = parse_fleet("", links)
    fleet.interconnects.extend(extra.interconnects)
    return fleet


def load_fleet(path: Path) -> hardware_pb2.Fleet:
    """A Fleet from a JSON file: ``accelplan detect --json`` output ({"fleet": ...}) or a bare Fleet."""
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"cannot read fleet file {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"fleet file {path} is not JSON: {e}") from None
    if isinstance(data, dict) and isinstance(data.get("fleet"), dict):
        data = data["fleet"]
    try:
        return json_format.ParseDict(data, hardware_pb2.Fleet())
    except json_format.ParseError as e:
        raise ValueError(f"fleet file {path} is not an accelplan.v1.Fleet: {e}") from None


def resolve_model(ref: str) -> models_pb2.ModelSpec:
    """A ModelSpec from ``@PATH`` (inspected: config.json, else GGUF architecture, else exact count)."""
    if not ref.startswith("@"):
        raise ValueError(f"--model takes @PATH (a model file or folder), got {ref!r}; use --model-id for the catalogue")
    from accelplan.inspect import InspectError, inspect_path

    try:
        return inspect_path(ref[1:]).spec()
    except InspectError as e:
        raise ValueError(str(e)) from None


__all__ = ["LINKS", "load_fleet", "resolve_fleet", "resolve_model"]
