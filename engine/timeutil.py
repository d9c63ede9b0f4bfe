"""Times and durations as integer nanoseconds since the Unix epoch (UTC).

>>> parse_duration("1m30s")
90000000000
>>> parse_time("-5m", now=600_000_000_000)
300000000000
>>> format_ns(1_700_000_000_123_456_789)
'2023-11-14T22:13:20.123456789Z'
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

__all__ = ["UNITS", "parse_duration", "parse_time", "relative_offset", "format_ns", "now_ns",
           "TIME_FORMS", "DURATION_FORMS"]

UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "min": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|min|s|m|h|d|w)")
TIME_FORMS = ("a relative time such as '-30s', '-5m', '-1h', '-2d'",
              "an ISO 8601 time such as '2026-11-24T14:00:00Z'",
              "an integer of nanoseconds since the epoch",
              "an expression on px.now(), such as px.now() - px.minutes(5)")
DURATION_FORMS = "a duration such as '500ms', '10s', '5m', '1h', '2d' or '1m30s'"


def now_ns() -> int:
    return time.time_ns()


def parse_duration(text: str) -> int:
    """'1h', '5m', '10s', '250ms', '1m30s', '-5m' → nanoseconds; ValueError if not a duration."""
    s = text.strip()
    sign = 1
    if s[:1] in "+-":
        sign, s = (-1 if s[0] == "-" else 1), s[1:].strip()
    if not s:
        raise ValueError(f"not a duration: {text!r}")
    total, pos = 0.0, 0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f"not a duration: {text!r}")
    return sign * round(total)


def relative_offset(text: str) -> int | None:
    """The ns a relative time ('now', '-5m', '+1h') lies from the present; None for an absolute
    time (ValueError for a relative one that is not a duration).

    >>> relative_offset("-5m"), relative_offset("now"), relative_offset("2026-11-24T12:00:00Z")
    (-300000000000, 0, None)
    """
    s = text.strip()
    if s.lower() == "now":
        return 0
    if s[:1] in "+-":
        return parse_duration(s)
    return None


def parse_time(text: str, now: int) -> int:
    """A time string → ns since the epoch: relative ('-5m', 'now'), or ISO 8601 (UTC if no zone)."""
    offset = relative_offset(text)
    if offset is not None:
        return now + offset
    s = text.strip()
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    frac = re.search(r"\.(\d+)", s.split("T")[-1] if "T" in s else s.split(" ")[-1])
    ns_frac = int((frac.group(1) + "000000000")[:9]) if frac else 0
    whole = int(dt.replace(microsecond=0).timestamp())
    return whole * 1_000_000_000 + ns_frac


def format_ns(ns: int) -> str:
    """RFC 3339 with nanoseconds, UTC."""
    sec, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"
