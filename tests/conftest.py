import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # so tests can `from parity import check`


@pytest.fixture(autouse=True)
def _seed():
    import neural_arch as na

    na.manual_seed(0)
    np.random.seed(0)
    yield
