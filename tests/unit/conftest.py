import pytest

from accelplan_server.core.bandwidth import BandwidthTable
from accelplan_server.core.catalog import Catalog, load_catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def bandwidths(catalog: Catalog) -> BandwidthTable:
    return BandwidthTable.from_catalog(catalog)
