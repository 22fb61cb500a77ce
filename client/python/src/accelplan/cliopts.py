"""Options every ``accelplan`` subcommand shares, and the lookups the CLI makes before a call.

Global flags (server, output, deadline, TLS, token) are accepted before or after
the subcommand: each subparser gets a copy whose defaults are suppressed, so a
flag given after the subcommand wins and one given before is kept.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from accelplan import __version__
from accelplan.client import DEFAULT_TARGET, PlannerClient, PlannerError
from accelplan.fleetspec import LINKS, parse_link
from accelplan.sources import resolve_fleet
from accelplan.v1 import hardware_pb2

QUANT_CHOICES = "fp32, fp16, bf16, fp8, int8 or int4"
"""What every --quant accepts (the server refuses a level a device cannot run)."""


def add_global_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """--server, --json, --timeout, --token and the TLS options; ``top_level`` sets the defaults."""

    def default(value: object) -> object:
        return value if top_level else argparse.SUPPRESS

    parser.add_argument(
        "--server",
        default=default(os.environ.get("ACCELPLAN_SERVER", DEFAULT_TARGET)),
        help=f"server address host:port (default $ACCELPLAN_SERVER or {DEFAULT_TARGET})",
    )
    parser.add_argument("--json", action="store_true", default=default(False), help="print proto3 JSON")
    parser.add_argument(
        "--timeout", type=float, default=default(10.0), help="deadline per call in seconds (default 10)"
    )
    parser.add_argument(
        "--token", default=default(os.environ.get("ACCELPLAN_TOKEN")), help="bearer token (default $ACCELPLAN_TOKEN)"
    )
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--tls", action="store_true", default=default(False), help="connect over TLS (default plaintext)")
    tls.add_argument("--tls-ca", default=default(None), help="PEM CA bundle to verify the server (default: system)")
    tls.add_argument("--tls-cert", default=default(None), help="PEM client certificate chain (mutual TLS)")
    tls.add_argument("--tls-key", default=default(None), help="PEM client private key for --tls-cert")
    if top_level:
        parser.add_argument("--version", action="version", version=f"accelplan {__version__}")


def add_global_options_to_subcommands(sub: argparse._SubParsersAction, skip: Sequence[str] = ("serve",)) -> None:  # type: ignore[type-arg]
    """Let every subcommand but ``skip`` take the global flags after its name.

    serve and extender have their own --tls-cert; detect and inspect call no server and have their own
    --timeout and --json.
    """
    for name, parser in sub.choices.items():
        if name not in skip:
            add_global_options(parser, top_level=False)


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def connect(args: argparse.Namespace) -> PlannerClient:
    """A client for the parsed global options."""
    tls = bool(args.tls or args.tls_ca or args.tls_cert)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together (mutual TLS)")
    return PlannerClient(
        args.server,
        timeout=args.timeout,
        token=args.token,
        tls=tls,
        root_certificates=_read(args.tls_ca),
        certificate_chain=_read(args.tls_cert),
        private_key=_read(args.tls_key),
    )


_CATALOGUE_LINK = {
    hardware_pb2.INTERCONNECT_KIND_NVLINK: "nvlink",
    hardware_pb2.INTERCONNECT_KIND_NVSWITCH: "nvlink",  # NVSwitch carries each GPU's NVLink bandwidth
    hardware_pb2.INTERCONNECT_KIND_XGMI_INFINITY_FABRIC: "xgmi_infinity_fabric",
    hardware_pb2.INTERCONNECT_KIND_ICI: "ici",
    hardware_pb2.INTERCONNECT_KIND_ROCE_V2: "roce_v2",
}


def resolve_links(
    client: PlannerClient, fleet_spec: str, links: Sequence[str], say: Callable[[str], None]
) -> list[str]:
    """``links`` with a bare KIND replaced by KIND:GBPS from the catalogue entry of the fleet's skus.

    The slowest listed figure among the fleet's skus with that link is used, and ``say`` is told so;
    a bare link with no such sku is an error that asks for the bandwidth.
    """
    if all(parse_link(link)[1] for link in links):
        return list(links)
    skus = {a.sku for a in resolve_fleet(fleet_spec).accelerators if a.sku}
    models = (
        client.call("ListAcceleratorModels", hardware_pb2.ListAcceleratorModelsRequest(page_size=1000))
        if skus
        else hardware_pb2.ListAcceleratorModelsResponse()
    )
    assert isinstance(models, hardware_pb2.ListAcceleratorModelsResponse)
    resolved = []
    for link in links:
        kind, bandwidth = parse_link(link)
        name = next(n for n, k in LINKS.items() if k == kind)
        if bandwidth:
            resolved.append(link)
            continue
        wanted = _CATALOGUE_LINK.get(kind)
        figures = sorted(
            (m.interconnect_bandwidth_gigabytes_per_second, m.sku)
            for m in models.accelerator_models
            if m.sku in skus and wanted and m.interconnect == wanted and m.interconnect_bandwidth_gigabytes_per_second
        )
        if not figures:
            raise ValueError(
                f"--link {name} has no bandwidth and no sku in --fleet lists a {name} figure in the catalogue; "
                f"give it in GB/s, e.g. --link {name}:900"
            )
        gbps, sku = figures[0]
        say(f"--link {name}: using {gbps:g} GB/s, the catalogue's {wanted} figure for {sku}")
        resolved.append(f"{name}:{gbps:g}")
    return resolved


def not_found_text(error: PlannerError) -> str | None:
    """The CLI's wording for an unknown model or sku (naming the command that lists them); None otherwise."""
    hint = {"UNKNOWN_SKU": ("accelerator sku", "accelplan hardware"), "UNKNOWN_MODEL": ("model", "accelplan models")}
    if error.reason not in hint:
        return None
    what, command = hint[error.reason]
    suggestion = f"; did you mean {', '.join(error.suggestions)}?" if error.suggestions else ""
    return f"{error.code.name}: no {what} {error.name!r}{suggestion} (`{command}` lists them)"
