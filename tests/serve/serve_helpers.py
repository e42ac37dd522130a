"""Helpers of the serve tests: tiny models made here, and a real uvicorn server on 127.0.0.1 in a thread."""

import socket
import threading
import time
from contextlib import contextmanager

import numpy as np
import yaml

import neural_arch as na
from neural_arch import optim
from neural_arch.config import load_config
from neural_arch.data import CharTokenizer
from neural_arch.data.idx import write_idx
from neural_arch.models import GPT2Config, GPT2LMHeadModel, save_char_tokenizer

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll: Speak, speak.\n"


def make_char_gpt(path, n_positions: int = 24, seed: int = 0):
    """A char GPT-2 fitted for 30 steps to TEXT (a couple of seconds): its greedy continuations vary from
    position to position (a random one repeats one character, which would hide batching mistakes)."""
    na.manual_seed(seed)
    tok = CharTokenizer.from_text(TEXT)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_positions=n_positions, n_embd=16, n_layer=2,
                                       n_head=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    ids = tok.encode(TEXT)
    windows = np.stack([ids[i:i + 12] for i in range(0, len(ids) - 12, 3)])
    opt = optim.AdamW(model.parameters(), lr=3e-2)
    for _ in range(30):
        loss = model(windows, labels=windows).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.save_pretrained(path)
    save_char_tokenizer(path, tok)
    return path


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


def metric_value(text: str, sample: str) -> float:
    """The value of one sample line of Prometheus text (``name{labels}``); 0 when absent."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def fashion_images(n, seed):
    """n random 28x28 images whose class is the row of a bright band, and their labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for img, y in zip(images, labels):       # a bright band whose row says the class
        img[2 * y + 4: 2 * y + 7] = 250
    return images, labels.astype(np.uint8)


def make_classifier_run(tmp):
    """A small CNN trained for 8 steps by `neural-arch train` on tiny Fashion-MNIST-format IDX files; its run dir."""
    from neural_arch.cli.main import run_training

    data = tmp / "data"
    data.mkdir()
    for split, n, seed in (("train", 64, 0), ("t10k", 32, 1)):
        images, labels = fashion_images(n, seed)
        write_idx(images, data / f"{split}-images-idx3-ubyte")
        write_idx(labels, data / f"{split}-labels-idx1-ubyte")
    cfg = {"name": "tiny-cnn", "seed": 0, "run_dir": str(tmp / "run"),
           "model": {"name": "cnn", "kwargs": {"channels": [4, 8], "hidden": 16}},
           "data": {"name": "fashion_mnist", "root": str(data), "prefetch": 0},
           "optimizer": {"name": "adamw", "lr": 0.01}, "scheduler": {"name": "none"},
           "train": {"batch_size": 16, "max_steps": 8, "eval_every": 8, "checkpoint_every": 8},
           "logging": {"progress": False, "plot": False, "sample_chars": 0}}
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert run_training(load_config(tmp / "cfg.yaml", ()), echo=lambda *a: None) == 0
    return tmp / "run"
