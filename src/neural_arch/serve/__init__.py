"""``neural-arch serve``: an HTTP inference server (FastAPI on uvicorn; the optional ``serve`` extra).

    from neural_arch.serve import ServeSettings, create_app, load_served_model, run_server
    served = load_served_model("runs/gpt")             # a run dir, a checkpoint or a Hugging Face folder
    run_server(served, ServeSettings(max_batch_size=32), host="127.0.0.1", port=8000)

OpenAI-shaped ``/v1/completions`` (continuous batching over the key/value cache, server-sent
events when ``stream``), ``/v1/embeddings``, ``/v1/classify``, ``/v1/models``, ``/healthz``,
``/readyz``, ``/metrics`` (Prometheus). See ``app.py`` for the limits and status codes.
"""

from neural_arch.serve.app import ServeSettings, create_app
from neural_arch.serve.loading import ServedModel, load_served_model
from neural_arch.serve.server import run_server

__all__ = ["ServeSettings", "ServedModel", "create_app", "load_served_model", "run_server"]
