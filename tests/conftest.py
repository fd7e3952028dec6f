import os

import pytest

from tests.lab import Lab


@pytest.fixture
def lab():
    """A namespace lab with a unique prefix, torn down even when the test fails."""
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (network namespaces)")
    with Lab() as lab:
        yield lab
