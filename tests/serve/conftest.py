"""Real servers for the serve tests: uvicorn on 127.0.0.1 (a free port), in a thread of this process.

Models are tiny and made here: a random character-level GPT-2 written with save_pretrained, the packaged
all-MiniLM-L6-v2, and a small image classifier trained for a few steps by `neural-arch train` on tiny IDX
files written here.
"""

import socket
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import neural_arch as na  # noqa: E402
from neural_arch.data import CharTokenizer  # noqa: E402
from neural_arch.models import GPT2Config, GPT2LMHeadModel, save_char_tokenizer  # noqa: E402

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll: Speak, speak.\n"


def make_char_gpt(path, n_positions: int = 24, seed: int = 0):
    """A random char GPT-2 whose logits are far apart (scaled embeddings), so greedy picks are not near-ties."""
    na.manual_seed(seed)
    tok = CharTokenizer.from_text(TEXT)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_positions=n_positions, n_embd=16, n_layer=2,
                                       n_head=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    for name, p in model.named_parameters():
        if name.endswith("wte.weight") or name.endswith("wpe.weight"):
            p.data *= 40
    model.save_pretrained(path)
    save_char_tokenizer(path, tok)
    return path


@pytest.fixture(scope="session")
def char_gpt_dir(tmp_path_factory):
    return make_char_gpt(tmp_path_factory.mktemp("char_gpt"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(served, settings=None):
    """A real uvicorn server for ``served`` on 127.0.0.1, in a thread; yields (base_url, app); stops it after."""
    from neural_arch.serve.server import make_server

    port = free_port()
    server = make_server(served, settings, host="127.0.0.1", port=port, log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        app = server.config.app
        assert app.state.serve.ready.wait(60), "the model did not warm up"
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "the server did not stop"


def greedy_reference(lm, ids, n):
    """What generate() produces alone (greedy), for comparison with the batched server."""
    out = lm.generate(np.asarray([ids]), max_new_tokens=n, do_sample=False, context_window=lm.max_positions)
    return [int(t) for t in out.numpy()[0, len(ids):]]
