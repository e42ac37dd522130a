"""/v1/completions on a real uvicorn server: the openai client, server-sent events, batching, limits."""

import asyncio
import json
import time

import httpx
import pytest
from serve_helpers import greedy_reference, live_server, metric_value

from neural_arch.serve import ServeSettings, load_served_model

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def served(char_gpt_dir):
    return load_served_model(char_gpt_dir, name="char-gpt")


@pytest.fixture(scope="module")
def server(served):
    with live_server(served, ServeSettings(max_batch_size=8, max_wait_ms=20, max_tokens_cap=64)) as (url, app):
        yield url, app


def _expected(served, prompt, n):
    return served.tokenizer.decode(greedy_reference(served.model, [int(t) for t in served.tokenizer.encode(prompt)], n))


def _client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)


def test_openai_client_completion_equals_greedy_generate(server, served):
    url, _ = server
    out = _client(url).completions.create(model="char-gpt", prompt="Before we", max_tokens=30, temperature=0)
    assert out.choices[0].text == _expected(served, "Before we", 30)
    assert out.choices[0].finish_reason == "length" and out.model == "char-gpt"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (9, 30, 39)


def test_streaming_sends_the_same_text_token_by_token(server, served):
    url, _ = server
    chunks = list(_client(url).completions.create(model="char-gpt", prompt="hear", max_tokens=20, temperature=0,
                                                  stream=True))
    text = "".join(c.choices[0].text for c in chunks)
    assert text == _expected(served, "hear", 20)
    assert len(chunks) == 20 and chunks[-1].choices[0].finish_reason == "length"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


def test_stop_string_ends_the_text_also_when_streamed(server, served):
    url, _ = server
    full = _expected(served, "All", 30)
    stop = full[8:11]
    want = full[:full.find(stop)]
    client = _client(url)
    out = client.completions.create(model="char-gpt", prompt="All", max_tokens=30, temperature=0, stop=[stop, "QQ"])
    assert out.choices[0].text == want and out.choices[0].finish_reason == "stop"
    chunks = list(client.completions.create(model="char-gpt", prompt="All", max_tokens=30, temperature=0, stop=stop,
                                            stream=True))
    assert "".join(c.choices[0].text for c in chunks) == want
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_seeded_sampling_repeats_and_a_prompt_list_gives_one_choice_each(server, served):
    url, _ = server
    client = _client(url)
    a = client.completions.create(model="char-gpt", prompt="First", max_tokens=25, temperature=1.3, top_p=0.9, seed=11)
    b = client.completions.create(model="char-gpt", prompt="First", max_tokens=25, temperature=1.3, top_p=0.9, seed=11)
    assert a.choices[0].text == b.choices[0].text and len(a.choices[0].text) == 25
    many = client.completions.create(model="char-gpt", prompt=["First", "we"], max_tokens=12, temperature=0)
    assert [c.index for c in many.choices] == [0, 1]
    assert [c.text for c in many.choices] == [_expected(served, "First", 12), _expected(served, "we", 12)]


def test_concurrent_requests_share_decoding_steps_and_each_gets_its_own_text(char_gpt_dir):
    """Eight requests that arrive together decode in one batch (the idle worker waits up to 10 s for 8)."""
    served = load_served_model(char_gpt_dir)
    prompts = ["First", "Before", "hear me", "All:", "speak", "we proceed", "Citizen", "F"]
    settings = ServeSettings(max_batch_size=8, max_wait_ms=10_000)
    with live_server(served, settings) as (url, _):
        async def go():
            async with httpx.AsyncClient(base_url=url, timeout=60) as c:
                rs = await asyncio.gather(*[c.post("/v1/completions", json={"prompt": p, "max_tokens": 10 + i,
                                                                            "temperature": 0})
                                            for i, p in enumerate(prompts)])
                return rs, (await c.get("/metrics")).text
        responses, metrics = asyncio.run(go())
    for i, (p, r) in enumerate(zip(prompts, responses)):
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["text"] == _expected(served, p, 10 + i)
    assert metric_value(metrics, 'neural_arch_batch_size_bucket{endpoint="completions",le="4.0"}') < \
        metric_value(metrics, 'neural_arch_batch_size_count{endpoint="completions"}')   # some step ran > 4 rows
    assert metric_value(metrics, "neural_arch_generated_tokens_total") >= sum(10 + i for i in range(8))


def test_invalid_bodies_get_422_with_the_field_path(server):
    url, _ = server
    cases = [({"prompt": "a", "max_tokens": 65}, ["body", "max_tokens"]),        # over the server's cap
             ({"prompt": "a", "temperature": 3}, ["body", "temperature"]),
             ({"prompt": "a", "stop": [""]}, ["body", "stop"]),
             ({"max_tokens": 3}, ["body", "prompt"]),
             ({"prompt": "unknown characters: 7 ~ \u00e9"}, ["body", "prompt"]),     # not in the char vocabulary
             ({"prompt": ["ok", ""]}, ["body", "prompt", 1]),                    # no token to start from
             ({"prompt": "a", "stream": "maybe"}, ["body", "stream"])]
    with httpx.Client(base_url=url, timeout=30) as c:
        for body, loc in cases:
            r = c.post("/v1/completions", json=body)
            assert r.status_code == 422, (body, r.text)
            locs = [d["loc"][:len(loc)] for d in r.json()["detail"]]
            assert loc in locs, (body, r.json())
        r = c.post("/v1/completions", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422
        assert c.post("/v1/completions", json={"prompt": "a", "model": "gpt-9"}).status_code == 404


def test_models_health_ready_and_metrics(server):
    url, _ = server
    with httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").status_code == 200
        models = c.get("/v1/models").json()
        assert [m["id"] for m in models["data"]] == ["char-gpt"]
        c.post("/v1/completions", json={"prompt": "a", "max_tokens": 2})
        c.post("/v1/completions", json={"prompt": "a", "max_tokens": 999})
        text = c.get("/metrics").text
    assert metric_value(text, 'neural_arch_requests_total{route="/v1/completions",status="200"}') >= 1
    assert metric_value(text, 'neural_arch_requests_total{route="/v1/completions",status="422"}') >= 1
    assert metric_value(text, 'neural_arch_request_latency_seconds_count{route="/v1/completions"}') >= 2
    assert metric_value(text, 'neural_arch_queue_depth{endpoint="completions"}') == 0
    assert "neural_arch_tokens_per_second" in text and "neural_arch_in_flight_requests" in text


def test_full_queue_is_503_at_once_and_a_late_request_504(char_gpt_dir):
    """One sequence waits in the queue (the idle worker waits 3 s for a batch of 2); the queue holds one."""
    served = load_served_model(char_gpt_dir)
    settings = ServeSettings(max_batch_size=2, max_wait_ms=3000, max_queue=1, timeout_s=0.5)
    with live_server(served, settings) as (url, _):
        async def go():
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                first = asyncio.create_task(c.post("/v1/completions", json={"prompt": "a", "max_tokens": 3}))
                while metric_value((await c.get("/metrics")).text,
                                   'neural_arch_queue_depth{endpoint="completions"}') < 1:
                    await asyncio.sleep(0.01)
                busy = await c.post("/v1/completions", json={"prompt": "e", "max_tokens": 3})
                return await first, busy
        late, busy = asyncio.run(go())
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert busy.json()["error"]["type"] == "server_busy"
    assert late.status_code == 504 and late.json()["error"]["type"] == "timeout"


def test_stream_events_are_server_sent_events(server):
    url, _ = server
    with httpx.Client(base_url=url, timeout=30) as c, \
            c.stream("POST", "/v1/completions", json={"prompt": "a", "max_tokens": 3, "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and len(lines) == 4
    assert all(json.loads(line[6:])["object"] == "text_completion" for line in lines[:-1])


def test_a_client_that_leaves_a_stream_frees_its_row(char_gpt_dir):
    """5,000 tokens would take many steps; the row must leave the batch right after the client hangs up."""
    served = load_served_model(char_gpt_dir)
    with (live_server(served, ServeSettings(max_tokens_cap=5000)) as (url, _),
          httpx.Client(base_url=url, timeout=30) as c):
        with c.stream("POST", "/v1/completions", json={"prompt": "a", "max_tokens": 5000, "stream": True}) as r:
            lines = r.iter_lines()   # held: dropping the iterator would close the connection here
            assert next(line for line in lines if line).startswith("data: ")
            assert metric_value(c.get("/metrics").text, "neural_arch_active_sequences") == 1
        deadline = time.monotonic() + 30
        while metric_value(c.get("/metrics").text, "neural_arch_active_sequences") > 0:
            assert time.monotonic() < deadline, "the row stayed in the batch"
            time.sleep(0.02)
        assert metric_value(c.get("/metrics").text, "neural_arch_generated_tokens_total") < 5000
