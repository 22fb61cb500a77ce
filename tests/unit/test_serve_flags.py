"""`accelplan serve` flags for hostile load: present in --help, defaults, and what they turn into."""

from __future__ import annotations

import argparse

import pytest

from accelplan_server.runtime import flags
from accelplan_server.runtime.serve import EXIT_CODES_HELP, ServerConfig, bind_addresses, server_options

NEW_FLAGS = (
    "--drain-delay",
    "--metrics-host",
    "--heavy-workers",
    "--heavy-queue",
    "--heavy-threshold-ms",
    "--max-streams-per-connection",
    "--max-connection-idle",
    "--max-connection-age",
    "--max-connection-age-grace",
    "--handshake-timeout",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="accelplan serve")
    flags.add_arguments(parser)
    return parser


def test_every_new_flag_and_the_exit_codes_are_in_help() -> None:
    text = _parser().format_help()
    for flag in NEW_FLAGS:
        assert flag in text
    assert EXIT_CODES_HELP.split(";")[0] in " ".join(text.split())


def test_metrics_stay_on_loopback_when_the_server_listens_everywhere() -> None:
    config = flags.config_from_args(_parser().parse_args(["--host", "0.0.0.0", "--metrics-port", "9464"]))
    assert config.metrics_host == "127.0.0.1"
    assert config.host == "0.0.0.0"


def test_defaults() -> None:
    config = flags.config_from_args(_parser().parse_args([]))
    assert config.drain_delay_seconds == 5.0
    assert config.grace_seconds == 10.0
    assert config.heavy_queue == 64
    assert config.heavy_threshold_seconds == pytest.approx(0.02)
    options = dict(server_options(config))
    assert options["grpc.max_concurrent_streams"] == 100
    assert options["grpc.max_connection_idle_ms"] == 300_000
    assert options["grpc.max_connection_age_ms"] == 3_600_000
    assert options["grpc.max_connection_age_grace_ms"] == 30_000
    assert options["grpc.server_handshake_timeout_ms"] == 10_000
    assert options["grpc.http2.max_ping_strikes"] == 2


@pytest.mark.parametrize(
    "argv", [["--drain-delay", "-1"], ["--heavy-queue", "0"], ["--max-streams-per-connection", "0"]]
)
def test_bad_values_are_refused(argv: list[str]) -> None:
    with pytest.raises(ValueError):
        flags.config_from_args(_parser().parse_args(argv))


def test_localhost_names_both_loopbacks_where_ipv6_exists() -> None:
    addresses = bind_addresses("localhost", 0)
    assert addresses[0] == "127.0.0.1"
    assert set(addresses) <= {"127.0.0.1", "[::1]"}
    assert bind_addresses("127.0.0.1", 0) == ["127.0.0.1"]
    assert bind_addresses("[::1]", 0) == ["[::1]"]
    assert ServerConfig().metrics_host == "127.0.0.1"
