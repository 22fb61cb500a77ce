"""The control plane is started once per session: etcd and kube-apiserver take a few seconds."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_kubernetes.cluster import BIN, ControlPlane, binaries_present


@pytest.fixture(scope="session")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    if not binaries_present():
        if os.environ.get("ACCELPLAN_REQUIRE_KUBE"):
            pytest.fail(f"no Kubernetes binaries in {BIN}: run scripts/kube/build")
        pytest.skip(f"no Kubernetes binaries in {BIN}: run scripts/kube/build (make e2e-kubernetes does)")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed for the API server's certificates")
    cp = ControlPlane(Path(tmp_path_factory.mktemp("kube")))
    try:
        cp.start()
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def clean(plane: ControlPlane) -> ControlPlane:
    plane.reset()
    return plane
