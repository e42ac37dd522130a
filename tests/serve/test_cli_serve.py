"""`neural-arch serve` as a real process: it serves, and SIGTERM drains the requests in flight, then exits."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from click.testing import CliRunner
from serve_helpers import free_port, metric_value

from neural_arch.cli import main


def _start(args, env=None):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "neural_arch.cli", "serve", *map(str, args), "--port", str(port),
                             "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, **(env or {})))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the server did not become ready"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
def test_sigterm_stops_accepting_and_finishes_requests_in_flight(char_gpt_dir):
    # the idle worker waits up to 4 s to fill a batch of 8: both requests are still queued when SIGTERM arrives
    proc, url = _start([char_gpt_dir, "--max-batch-size", "8", "--max-wait-ms", "4000", "--api-key-env", "KEY"],
                       env={"KEY": "k"})
    results = {}

    def ask(i):
        results[i] = httpx.post(f"{url}/v1/completions", json={"prompt": "First", "max_tokens": 5 + i,
                                                                "temperature": 0},
                                headers={"Authorization": "Bearer k"}, timeout=60)
    try:
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        while metric_value(httpx.get(f"{url}/metrics", timeout=5).text,
                           'neural_arch_queue_depth{endpoint="completions"}') < 2:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        port = int(url.rsplit(":", 1)[1])
        deadline = time.monotonic() + 30
        while not _refused(port):                      # the listening socket closes at once
            assert time.monotonic() < deadline
            time.sleep(0.02)
        for t in threads:
            t.join(60)
        # uvicorn re-raises the signal once it has shut down cleanly, so the exit status says "ended by SIGTERM"
        assert proc.wait(60) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    for i in range(2):
        assert results[i].status_code == 200, results[i].text
        assert results[i].json()["usage"]["completion_tokens"] == 5 + i


def test_cli_errors_are_one_clear_message(tmp_path, char_gpt_dir):
    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 1 and "neither a Hugging Face-layout directory" in result.output
    result = CliRunner().invoke(main, ["serve", str(char_gpt_dir), "--api-key-env", "NEURAL_ARCH_TEST_UNSET_VAR"])
    assert result.exit_code == 1 and "NEURAL_ARCH_TEST_UNSET_VAR" in result.output
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"")
    result = CliRunner().invoke(main, ["serve", str(onnx)])
    assert result.exit_code == 1 and "onnxruntime cannot load" in result.output   # not a graph


@pytest.mark.parametrize("flag", ["--max-batch-size=0", "--port=70000", "--max-queue=0"])
def test_cli_rejects_bad_limits(char_gpt_dir, flag):
    result = CliRunner().invoke(main, ["serve", str(char_gpt_dir), flag])
    assert result.exit_code == 2
