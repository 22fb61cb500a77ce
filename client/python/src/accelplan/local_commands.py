"""``accelplan detect`` and ``accelplan inspect``: commands that need no server."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from google.protobuf import json_format


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the two subcommands."""
    d = sub.add_parser("detect", help="this machine's accelerators, memory and links (no server needed)")
    d.add_argument("--labels", action="store_true", help="print Kubernetes node labels (GFD + accelplan.dev/)")
    d.add_argument("--nfd-features", metavar="FILE", help="write the labels as a Node Feature Discovery feature file")
    d.add_argument("--root", default="/", help="read /proc, /sys and /dev under this folder (default /)")
    d.add_argument(
        "--timeout",
        "--probe-timeout",
        dest="probe_timeout",
        type=float,
        default=5.0,
        help="seconds each backend may take (default %(default)s)",
    )
    d.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print proto3 JSON: {name, labels, fleet}"
    )
    d.set_defaults(local=run_detect)

    i = sub.add_parser("inspect", help="a model file's parameters, precision and shape from its headers")
    i.add_argument("path", help=".safetensors, model.safetensors.index.json, .gguf, .onnx, or a folder")
    i.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the ModelSpec as proto3 JSON")
    i.set_defaults(local=run_inspect)


def run_detect(args: argparse.Namespace) -> int:
    """Print the detected fleet (table, --json, --labels); write --nfd-features."""
    from accelplan.detect import detect, render

    timeout = args.probe_timeout
    d = detect(root=args.root, timeout_s=timeout)
    for w in d.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.nfd_features:
        Path(args.nfd_features).write_text(render.nfd_features(d))
        print(f"wrote {len(render.labels(d))} labels to {args.nfd_features}", file=sys.stderr)
    if args.json:
        # The proto3 JSON of a node as accelplan.v1.NodeInventory has it (name, labels, fleet): the SchedulerService
        # takes it as is. Notes go to stderr beside the warnings, so stdout stays that one document.
        for n in d.notes:
            print(f"note: {n}", file=sys.stderr)
        doc = {"name": d.hostname, "labels": render.labels(d), "fleet": json_format.MessageToDict(d.fleet)}
        print(json.dumps(doc, indent=2))
    elif args.labels:
        print(render.labels_text(d))
    elif not args.nfd_features:
        print(render.table(d))
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """Print what a model file holds (or its ModelSpec with --json)."""
    from accelplan.inspect import InspectError, inspect_path

    try:
        result = inspect_path(args.path)
    except InspectError as e:
        print(f"accelplan: {e}", file=sys.stderr)
        return 2
    print(json_format.MessageToJson(result.spec()) if args.json else result.text())
    return 0
