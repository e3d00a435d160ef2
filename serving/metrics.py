"""Prometheus metrics of the service, in a registry of its own (no process-global state
shared with other apps in the same process, e.g. in tests)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "denial_triage_requests_total",
    "HTTP requests by route and status.",
    ["route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "denial_triage_request_seconds",
    "HTTP request latency by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
DENIALS_SCORED = Counter("denial_triage_denials_scored_total", "Denials scored.", registry=REGISTRY)
REVIEW_FLAGS = Counter(
    "denial_triage_human_review_total", "Scored denials that need human review.", registry=REGISTRY
)
AUDIT_SPOOLED = Counter(
    "denial_triage_audit_spooled_total",
    "Audit records spooled while the database was away.",
    registry=REGISTRY,
)
MODEL_VERSION = Gauge(
    "denial_triage_model_version", "Registered version of the model in service.", registry=REGISTRY
)
MODEL_RELOADS = Counter(
    "denial_triage_model_reloads_total",
    "Model reload attempts by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
SHADOW_DENIALS = Counter(
    "denial_triage_shadow_denials_total",
    "Denials sampled for the challenger in shadow, by outcome: scored (and stored), dropped "
    "(its queue was full) or failed.",
    ["outcome"],
    registry=REGISTRY,
)
SHADOW_VERSION = Gauge(
    "denial_triage_shadow_model_version",
    "Registered version of the challenger scoring in shadow (0 when none).",
    registry=REGISTRY,
)
PAYER_ALERTS_OPEN = Gauge(
    "denial_triage_payer_alerts_open",
    "Payer behaviour alerts raised in the last 30 days of denial dates.",
    registry=REGISTRY,
)
PAYER_ALERT_DENIALS = Gauge(
    "denial_triage_payer_alert_denials",
    "Denials affected by the open payer behaviour alerts.",
    registry=REGISTRY,
)


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
