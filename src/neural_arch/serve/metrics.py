"""The server's Prometheus metrics, in a registry of its own (two apps in one process do not collide).

    neural_arch_requests_total{route, status}          answers by route template and HTTP status
    neural_arch_request_latency_seconds{route}         time from the request's arrival to its answer
    neural_arch_batch_size{endpoint}                   items per forward (texts, images, decoding rows)
    neural_arch_queue_depth{endpoint}                  items waiting for a batch (sampled at scrape time)
    neural_arch_in_flight_requests                     requests being answered now
    neural_arch_active_sequences                       completions in the decoding batch now
    neural_arch_generated_tokens_total                 completion tokens produced (rate() gives tokens/s)
    neural_arch_tokens_per_second                      the last decoding step's rate: batch size / step time
    neural_arch_forward_seconds_total{endpoint}        time the worker spent running the model (rate(): how
                                                       busy it is; near 1, the model is the bottleneck)
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ServerMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    """The collectors, registered in ``self.registry``; ``queue_depth`` reads a callable at scrape time."""

    def __init__(self, endpoint: str, queue_depth, active_sequences=None):
        self.registry = CollectorRegistry()
        self.requests = Counter("neural_arch_requests", "HTTP answers by route and status", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("neural_arch_request_latency_seconds", "Time to answer a request", ["route"],
                                 buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("neural_arch_batch_size", "Items in one forward", ["endpoint"],
                                    buckets=_BATCH_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("neural_arch_in_flight_requests", "Requests being answered", registry=self.registry)
        depth = Gauge("neural_arch_queue_depth", "Items waiting for a batch", ["endpoint"], registry=self.registry)
        depth.labels(endpoint).set_function(queue_depth)
        if active_sequences is not None:
            Gauge("neural_arch_active_sequences", "Completions in the decoding batch",
                  registry=self.registry).set_function(active_sequences)
        self.tokens = Counter("neural_arch_generated_tokens", "Completion tokens produced", registry=self.registry)
        self.tokens_per_second = Gauge("neural_arch_tokens_per_second", "Last decoding step: rows / step time",
                                       registry=self.registry)
        self.forward_seconds = Counter("neural_arch_forward_seconds", "Time the worker spent running the model",
                                       ["endpoint"], registry=self.registry)
        self.endpoint = endpoint

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.labels(self.endpoint).observe(size)
        self.forward_seconds.labels(self.endpoint).inc(seconds)

    def observe_step(self, rows: int, seconds: float) -> None:
        self.batch_size.labels(self.endpoint).observe(rows)
        self.tokens.inc(rows)
        self.forward_seconds.labels(self.endpoint).inc(seconds)
        if seconds > 0:
            self.tokens_per_second.set(rows / seconds)
