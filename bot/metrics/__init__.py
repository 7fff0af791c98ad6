"""Prometheus metrics (CONTRACTS §14): counters and histograms of what this process did,
gauges read from the shared database and Redis at scrape time."""

from bot.metrics.counting import DURATION_BUCKETS, ServiceMetrics
from bot.metrics.exposition import METRICS_PATH, render, serve_metrics
from bot.metrics.gauges import StateGauges
from bot.metrics.labels import OTHER, LabelFolder

__all__ = [
    "DURATION_BUCKETS",
    "METRICS_PATH",
    "OTHER",
    "LabelFolder",
    "ServiceMetrics",
    "StateGauges",
    "render",
    "serve_metrics",
]
