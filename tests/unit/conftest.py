import pytest

from accelplan_server.core.catalog import Catalog, load_catalog
from accelplan_server.core.hardware.bandwidth import BandwidthTable


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def bandwidths(catalog: Catalog) -> BandwidthTable:
    return BandwidthTable.from_catalog(catalog)
