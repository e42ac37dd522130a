"""Body size limit (413) and the API key (401), on a real server."""

import httpx
import pytest
from serve_helpers import live_server, metric_value

from neural_arch.serve import ServeSettings, load_served_model

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def served(char_gpt_dir):
    return load_served_model(char_gpt_dir, name="char-gpt")


def test_bodies_over_the_limit_are_413_whether_sized_or_chunked(served):
    with (live_server(served, ServeSettings(max_body_bytes=2000)) as (url, _),
          httpx.Client(base_url=url, timeout=30) as c):
        big = {"prompt": "a" * 3000, "max_tokens": 1}
        r = c.post("/v1/completions", json=big)
        assert r.status_code == 413 and "2000 bytes" in r.json()["error"]["message"]

        def chunks():   # no Content-Length: the limit counts the bytes as they arrive
            for _ in range(10):
                yield b" " * 300
            yield b'{"prompt": "a"}'
        r = c.post("/v1/completions", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        small = c.post("/v1/completions", json={"prompt": "a" * 100, "max_tokens": 1})
        assert small.status_code == 200
        metrics = c.get("/metrics").text
    assert metric_value(metrics, 'neural_arch_requests_total{route="/v1/completions",status="413"}') == 2


def test_api_key_guards_v1_but_not_health_or_metrics(served):
    with (live_server(served, ServeSettings(api_key="s3cret")) as (url, _),
          httpx.Client(base_url=url, timeout=30) as c):
        body = {"prompt": "a", "max_tokens": 2}
        missing = c.post("/v1/completions", json=body)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert c.post("/v1/completions", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/v1/models").status_code == 401
        assert c.get("/healthz").status_code == 200 and c.get("/metrics").status_code == 200
        good = openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret", max_retries=0, timeout=30)
        assert good.completions.create(model="char-gpt", prompt="a", max_tokens=2).usage.completion_tokens == 2
        bad = openai.OpenAI(base_url=f"{url}/v1", api_key="nope", max_retries=0, timeout=30)
        with pytest.raises(openai.AuthenticationError):
            bad.completions.create(model="char-gpt", prompt="a", max_tokens=2)


def _get_healthz(sock) -> bytes:
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while b'"ok"}' not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data  # the server closed the connection
        data += chunk
    return data


def test_an_idle_connection_outlives_the_clients_keep_alive(served):
    """httpx and the openai package drop an idle connection after 5 s; a server that closed it first (uvicorn's
    default: 5 s) could close it just as a client reuses it, and that request would be lost (a reset)."""
    import socket
    import time

    with live_server(served) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            assert _get_healthz(sock).startswith(b"HTTP/1.1 200")
            time.sleep(5.5)
            assert _get_healthz(sock).startswith(b"HTTP/1.1 200"), "the server closed the idle connection"


def test_the_server_raises_its_open_files_limit_to_the_hard_one():
    """A socket per connection: at the common soft limit (1,024) the server could not accept more."""
    import resource
    import subprocess
    import sys

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip(f"the hard limit of open files is {hard}")
    code = ("import resource; from neural_arch.serve.server import raise_open_files_limit; "
            "raise_open_files_limit(); print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
    assert int(out.stdout) == (65536 if hard == resource.RLIM_INFINITY else hard) > 256
