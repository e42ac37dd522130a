"""Real servers for the serve tests: uvicorn on 127.0.0.1 (a free port), in a thread of this process.

Models are tiny and made here: a random character-level GPT-2 written with save_pretrained, the packaged
all-MiniLM-L6-v2, and a small image classifier trained for a few steps by `neural-arch train` on tiny IDX
files written here.
"""

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serve_helpers import make_char_gpt, make_classifier_run


@pytest.fixture(scope="session")
def char_gpt_dir(tmp_path_factory):
    return make_char_gpt(tmp_path_factory.mktemp("char_gpt"))


@pytest.fixture(scope="session")
def classifier_run(tmp_path_factory):
    return make_classifier_run(tmp_path_factory.mktemp("classifier"))
