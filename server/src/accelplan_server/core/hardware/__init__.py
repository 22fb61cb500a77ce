"""Devices: kinds, families, ranks and precision support; per-device specs; link bandwidth."""
