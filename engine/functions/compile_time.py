"""Functions evaluated while compiling: the current time and durations.

They return plain values (nanoseconds) that the compiler folds into the plan, as Pixie does:
``px.now() - px.minutes(5)`` is a time literal by the time the plan is built.
"""

from __future__ import annotations

from engine.registry import REGISTRY, CompileTimeFunction, sig
from engine.timeutil import UNITS

REGISTRY.add(CompileTimeFunction(
    "now", sig(" -> TIME64NS"), "The time the script was compiled.", category="time",
    impl=lambda ctx: ctx.now_time(), usage="px.now()",
    examples=("df = df[df.time_ > px.now() - px.minutes(5)]",)))

for _name, _unit in (("nanoseconds", "ns"), ("microseconds", "us"), ("milliseconds", "ms"),
                     ("seconds", "s"), ("minutes", "m"), ("hours", "h"), ("days", "d")):
    REGISTRY.add(CompileTimeFunction(
        _name, sig("INT64 -> INT64", "FLOAT64 -> INT64"),
        f"A duration of n {_name}, as an int of nanoseconds.", category="time",
        impl=(lambda size: lambda ctx, n: round(n * size))(UNITS[_unit]),
        usage=f"px.{_name}(n)", examples=(f"df = df[df.latency > px.{_name}(5)]",)))
