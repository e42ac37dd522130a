"""``neural-arch serve MODEL``: the HTTP inference server (needs the ``serve`` extra).

    neural-arch serve runs/gpt                           # a run directory: /v1/completions
    neural-arch serve path/to/all-MiniLM-L6-v2           # a sentence-transformers folder: /v1/embeddings
    neural-arch serve path/to/vit-folder                 # a ViT / BERT classifier folder: /v1/classify
    neural-arch serve runs/gpt/export/model.onnx         # an exported ONNX file, run by onnxruntime
    API_KEY=secret neural-arch serve runs/cnn --api-key-env API_KEY --port 9000

Binds 127.0.0.1 unless ``--host`` says otherwise. SIGTERM (or Ctrl-C) stops accepting connections,
finishes the requests in flight, then exits.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from neural_arch.errors import ConfigError, NeuralArchError


@click.command("serve", short_help="An HTTP inference server for a run, checkpoint, Hugging Face folder or ONNX file.")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0: every one).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--max-batch-size", default=32, show_default=True, type=click.IntRange(1, 4096),
              help="Items per forward (texts, images, decoding rows).")
@click.option("--max-wait-ms", default=5.0, show_default=True, type=click.FloatRange(0, 10_000),
              help="How long a lone request waits for others to share its batch.")
@click.option("--max-queue", default=256, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Items waiting beyond which requests get 503 at once.")
@click.option("--max-tokens", "max_tokens_cap", default=256, show_default=True, type=click.IntRange(1, 1_000_000),
              help="The largest max_tokens a completion may ask for.")
@click.option("--timeout-s", default=60.0, show_default=True, type=click.FloatRange(0.001, 86_400),
              help="A request not answered by then gets 504.")
@click.option("--max-body-mb", default=8.0, show_default=True, type=click.FloatRange(0.001, 1024),
              help="Larger request bodies get 413.")
@click.option("--keep-alive-s", default=75.0, show_default=True, type=click.FloatRange(1, 3600),
              help="How long an idle keep-alive connection stays open (longer than clients keep theirs).")
@click.option("--length-groups/--no-length-groups", default=True, show_default=True,
              help="Run a batch of texts as a few forwards of similar lengths (embeddings, text classifiers).")
@click.option("--api-key-env", default=None, metavar="VAR",
              help="Require 'Authorization: Bearer <key>' on /v1/*, the key read from environment variable VAR.")
@click.option("--name", default=None, help="The model id clients see (default: the folder's name).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(model, host, port, max_batch_size, max_wait_ms, max_queue, max_tokens_cap, timeout_s, max_body_mb,
          keep_alive_s, length_groups, api_key_env, name, log_level) -> None:
    """Serve MODEL over HTTP: a run directory, a checkpoint, a Hugging Face-layout folder, or an ONNX file written
    by `neural-arch export` (kept where the export wrote it, next to its run or folder)."""
    try:
        from neural_arch.serve import (  # noqa: PLC0415 - optional: the serve extra
            ServeSettings,
            load_served_model,
            run_server,
        )
    except ImportError as e:
        raise click.ClickException(f"neural-arch serve needs the serve extra ({e.name} is missing): "
                                   "pip install 'neural-arch[serve]'") from None
    try:
        api_key = None
        if api_key_env is not None:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise ConfigError(f"--api-key-env {api_key_env}: the environment variable is not set or empty")
        settings = ServeSettings(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_queue=max_queue,
                                 max_tokens_cap=max_tokens_cap, timeout_s=timeout_s,
                                 max_body_bytes=int(max_body_mb * 1024 * 1024), api_key=api_key,
                                 keep_alive_s=keep_alive_s, length_groups=length_groups)
        served = load_served_model(model, name)
    except NeuralArchError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"serving {served.name!r} ({served.kind}) on http://{host}:{port}", err=True)
    run_server(served, settings, host=host, port=port, log_level=log_level)
