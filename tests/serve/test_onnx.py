"""ONNX files written by `neural-arch export`, served through onnxruntime on a real uvicorn server."""

import asyncio
import base64
import io
import shutil

import httpx
import numpy as np
import pytest
from PIL import Image
from serve_helpers import fashion_images, greedy_reference, live_server

import neural_arch as na
from neural_arch.errors import ConfigError
from neural_arch.serve import ServeSettings, load_served_model

pytest.importorskip("onnxruntime")

from neural_arch.cli.export import export_run  # noqa: E402 - needs the onnx extra


@pytest.fixture(scope="module")
def onnx_gpt(char_gpt_dir, tmp_path_factory):
    """The char GPT folder with a model.onnx of a FIXED batch of 2 (no --dynamic-batch): batches are sliced."""
    folder = tmp_path_factory.mktemp("onnx_gpt") / "gpt"
    shutil.copytree(char_gpt_dir, folder)
    return export_run(folder, "onnx"), load_served_model(char_gpt_dir)


def test_onnx_completions_equal_greedy_generate_under_concurrent_requests(onnx_gpt):
    path, ours = onnx_gpt
    served = load_served_model(path, name="gpt-onnx")
    assert served.kind == "completions" and served.model.graph.fixed_batch == 2 and served.model.max_positions == 24
    # prompts of different lengths; 30 tokens run past n_positions (24), so rows slide as generate's do
    prompts = ["Before we", "All", "hear me speak", "Speak, speak.\nAll"]

    async def ask(url):
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            return await asyncio.gather(*[c.post("/v1/completions", json={"prompt": p, "max_tokens": 30,
                                                                          "temperature": 0}) for p in prompts])

    with live_server(served, ServeSettings(max_batch_size=3, max_wait_ms=50)) as (url, _):
        answers = asyncio.run(ask(url))
    tok = ours.tokenizer
    for prompt, r in zip(prompts, answers):
        assert r.status_code == 200, r.text
        want = tok.decode(greedy_reference(ours.model, [int(t) for t in tok.encode(prompt)], 30))
        assert r.json()["choices"][0]["text"] == want, prompt
        assert r.json()["usage"]["completion_tokens"] == 30 and r.json()["model"] == "gpt-onnx"


def _png(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_an_exported_classifier_run_serves_classify_with_the_runs_labels_and_transform(classifier_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(classifier_run, run)
    path = export_run(run, "onnx", dynamic_batch=True)
    assert path == run / "export" / "model.onnx"
    served, ours = load_served_model(path), load_served_model(run)
    assert served.kind == "classify" and served.labels == ours.labels and served.model.fixed_batch is None
    images, _ = fashion_images(5, 7)
    with na.no_grad():
        logits = ours.model(na.tensor(np.stack([ours.transform(img) for img in images]))).numpy()
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    with (live_server(served, ServeSettings(max_batch_size=4)) as (url, _),
          httpx.Client(base_url=url, timeout=60) as c):
        r = c.post("/v1/classify", json={"input": [_png(img) for img in images], "top_k": 10})
    assert r.status_code == 200, r.text
    for item, probs in zip(r.json()["data"], expected):
        order = [served.labels.index(label) for label in item["labels"]]
        np.testing.assert_allclose(item["probabilities"], probs[order], rtol=1e-4, atol=1e-6)
        assert item["label"] == served.labels[int(np.argmax(probs))]


def test_an_onnx_file_away_from_its_run_or_folder_is_refused(onnx_gpt, tmp_path):
    path, _ = onnx_gpt
    alone = tmp_path / "alone.onnx"
    shutil.copy(path, alone)
    with pytest.raises(ConfigError, match="without its tokenizer or labels"):
        load_served_model(alone)


def test_onnx_completions_server_never_answers_500(onnx_gpt):
    pytest.importorskip("schemathesis")
    from test_schema_fuzz import _fuzz

    served = load_served_model(onnx_gpt[0])
    with live_server(served, ServeSettings(max_tokens_cap=8, max_wait_ms=0)) as (url, app):
        assert _fuzz(url, app, examples=10) >= 20
