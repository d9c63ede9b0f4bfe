"""Synthetic http_events / process_stats tables for the benchmark suite, built with numpy.

    from datagen import http_events, process_stats, NOW
    http = http_events(1_000_000)        # polars DataFrame, time_ sorted over the hour before NOW
    procs = process_stats()              # a few rows per upid

Everything is vectorised (10M rows take a few seconds) and seeded, so a size always gives the
same rows. Strings are low-cardinality, as in real traces: ~60 upids, 12 services (5 upids each),
40 request paths, 5 methods.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["NOW", "HOUR_NS", "SERVICES", "UPIDS", "PATHS", "METHODS", "http_events",
           "process_stats"]

#: The instant the tests use (2026-11-24T12:00:00Z); the data covers [NOW - 1h, NOW).
NOW = 1_795_521_600_000_000_000
HOUR_NS = 3_600 * 1_000_000_000

SERVICES = [f"shop/{s}" for s in (
    "frontend", "checkout", "cart", "catalog", "payment", "shipping", "email", "currency",
    "recommend", "ads", "auth", "search")]
#: 5 processes per service: "<asid>:<pid>:<start ns>", the shape of a Pixie upid.
UPIDS = [f"{1 + i // 20}:{4000 + 37 * i}:{NOW - HOUR_NS * 24 + 7919 * i}"
         for i in range(len(SERVICES) * 5)]
_API = ["/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/cart", "/api/v1/cart/items",
        "/api/v1/products", "/api/v1/products/{id}", "/api/v1/search", "/api/v1/users/{id}",
        "/api/v1/payments", "/api/v1/shipping/quote", "/api/v2/orders", "/api/v2/products",
        "/api/v2/recommendations", "/api/v2/ads", "/api/v2/currency/convert", "/api/v2/auth/token",
        "/api/v2/auth/refresh", "/api/internal/flags", "/api/internal/config", "/api/health"]
_OTHER = ["/", "/index.html", "/static/app.js", "/static/app.css", "/static/logo.png",
          "/favicon.ico", "/healthz", "/readyz", "/metrics", "/login", "/logout", "/cart",
          "/checkout", "/product/{id}", "/search", "/grpc.health.v1.Health/Check",
          "/hipstershop.CartService/GetCart", "/hipstershop.AdService/GetAds",
          "/hipstershop.CurrencyService/Convert", "/hipstershop.PaymentService/Charge"]
PATHS = _API + _OTHER
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]
_METHOD_P = [0.62, 0.25, 0.07, 0.04, 0.02]
_STATUS = np.array([200, 201, 204, 301, 304, 400, 401, 403, 404, 429, 500, 502, 503, 504])
_STATUS_P = np.array([0.78, 0.04, 0.02, 0.01, 0.03, 0.02, 0.01, 0.01, 0.04, 0.005,
                      0.015, 0.005, 0.01, 0.005])


def _strings(values: list[str], codes: np.ndarray) -> pl.Series:
    """A String column from small-int codes into ``values`` (a gather, no Python loop)."""
    return pl.Series(values, dtype=pl.String).gather(pl.Series(codes.astype(np.uint32)))


def http_events(rows: int, seed: int = 7) -> pl.DataFrame:
    """An http_events-like table: ``rows`` requests, time-sorted over the hour before NOW."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(NOW - HOUR_NS, NOW, rows, dtype=np.int64))
    # Busy processes get more traffic: a skewed choice among the upids.
    weights = rng.uniform(0.2, 1.0, len(UPIDS)) ** 2
    upid = rng.choice(len(UPIDS), rows, p=weights / weights.sum()).astype(np.int32)
    service = upid // 5
    path_w = rng.uniform(0.1, 1.0, len(PATHS)) ** 3
    path = rng.choice(len(PATHS), rows, p=path_w / path_w.sum()).astype(np.int32)
    method = rng.choice(len(METHODS), rows, p=_METHOD_P).astype(np.int32)
    status = _STATUS[rng.choice(len(_STATUS), rows, p=_STATUS_P / _STATUS_P.sum())]
    # Lognormal latency around ~2 ms, slower services a little slower.
    latency = rng.lognormal(np.log(2e6) + 0.08 * service, 0.9).astype(np.int64)
    body = rng.lognormal(7.0, 1.5, rows).astype(np.int64)
    return pl.DataFrame({
        "time_": pl.Series(times).cast(pl.Datetime("ns")),
        "upid": _strings(UPIDS, upid),
        "service": _strings(SERVICES, service),
        "req_path": _strings(PATHS, path),
        "req_method": _strings(METHODS, method),
        "resp_status": status.astype(np.int64),
        "latency": latency,
        "resp_body_size": body,
        "trace_role": np.full(rows, 2, dtype=np.int64),
    })


def process_stats(per_upid: int = 4, seed: int = 11) -> pl.DataFrame:
    """A process_stats-like table: ``per_upid`` samples of each process over the hour."""
    rng = np.random.default_rng(seed)
    n = len(UPIDS) * per_upid
    idx = np.repeat(np.arange(len(UPIDS), dtype=np.int32), per_upid)
    times = NOW - HOUR_NS + np.tile(np.arange(per_upid, dtype=np.int64), len(UPIDS)) * (
        HOUR_NS // per_upid)
    order = np.argsort(times, kind="stable")
    base_rss = rng.uniform(50e6, 2e9, len(UPIDS))
    return pl.DataFrame({
        "time_": pl.Series(times[order]).cast(pl.Datetime("ns")),
        "upid": _strings(UPIDS, idx[order]),
        "rss_bytes": (base_rss[idx] * rng.uniform(0.9, 1.1, n)).astype(np.int64)[order],
        "vsize_bytes": (base_rss[idx] * 3.1).astype(np.int64)[order],
        "cpu_utime_ns": (np.cumsum(rng.integers(1e8, 1e10, n)) % (10**13)).astype(np.int64)[order],
        "cpu_ktime_ns": rng.integers(1e7, 1e9, n).astype(np.int64)[order],
        "num_threads": rng.integers(4, 200, n).astype(np.int64)[order],
    })
