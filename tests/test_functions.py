"""Every px.* function, run through pxl.run and checked against Python.

``SPECS`` holds at least one case per scalar function of the registry (a test fails when a
function has none): the call, its argument columns and a Python reference. Each case is run on
its rows (with nulls and non-ASCII text), on no rows, on dictionary-encoded columns, and — where
every argument is a constant — folded by the optimizer, which must give the column's answer.
Aggregates and compile-time functions have their own tables; every function's doc examples run
on the demo dataset.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pytest

import pxl
from engine.catalog import MemoryCatalog
from engine.exprs import Literal
from engine.functions.protocols import DNS_RCODES, HTTP_MESSAGES, MYSQL_COMMANDS, PROTOCOLS
from engine.registry import REGISTRY
from engine.relations import Map
from engine.types import DataType
from tests.conftest import DEMO_NOW

NOW = 1_700_000_000_000_000_000
INT, FLT, STR, BOOL, TIME = pl.Int64, pl.Float64, pl.String, pl.Boolean, pl.Datetime("ns")
NULL = object()  # a reference's way to say "null", where None is a value it was given

TEXT = ["héllo wörld", "  abc\t", "", "Ünïcödé ß", "日本語テキスト", "a/b/c", None]


@dataclass
class Spec:
    fn: str
    call: str  # "px.find({0}, {1})": {i} is argument i
    args: list[tuple[pl.DataType, list[Any]]]
    ref: Callable[..., Any] | None = None  # Python on one row's values (none of them null)
    expected: list[Any] | None = None  # or the answers, row by row
    nulls: str = "propagate"  # or "ref": the reference is also given the nulls
    metadata: bool = False
    const: bool = True  # also compare constant-argument (folded) calls
    id: str = ""

    def rows(self) -> list[tuple[Any, ...]]:
        return list(zip(*(values for _, values in self.args), strict=True))

    def want(self) -> list[Any]:
        if self.expected is not None:
            return self.expected
        out = []
        for row in self.rows():
            if self.nulls == "propagate" and any(v is None for v in row):
                out.append(None)
            else:
                assert self.ref is not None
                value = self.ref(*row)
                out.append(None if value is NULL else value)
        return out

    def frame(self) -> pl.DataFrame:
        cols = {}
        for i, (dtype, values) in enumerate(self.args):
            if dtype == TIME:
                cols[f"c{i}"] = pl.Series(values, dtype=INT).cast(TIME)
            else:
                cols[f"c{i}"] = pl.Series(values, dtype=dtype)
        return pl.DataFrame(cols) if cols else pl.DataFrame({"c0": [0] * len(self.want())})


SPECS: list[Spec] = []


def spec(fn: str, call: str, *args: tuple[pl.DataType, list[Any]], **kw: Any) -> None:
    n = sum(1 for s in SPECS if s.fn == fn)
    SPECS.append(Spec(fn, call, list(args), id=f"{fn}-{n}", **kw))


def _ieee(fn: Callable[..., float]) -> Callable[..., float]:
    def run(*xs: float) -> float:
        with np.errstate(all="ignore"):
            return float(fn(*(np.float64(x) for x in xs)))

    return run


# --- operators ---------------------------------------------------------------------------------
INTS_A = [1, -7, 0, None, 2**40, 7]
INTS_B = [2, 3, 5, 1, None, -3]
FLOATS_A = [1.5, -2.25, 0.0, None, 1e10, 3.0]
FLOATS_B = [0.5, 4.0, 2.0, 1.0, None, 0.0]

spec("add", "{0} + {1}", (INT, INTS_A), (INT, INTS_B), ref=lambda a, b: a + b)
spec("add", "{0} + {1}", (FLT, FLOATS_A), (INT, INTS_B), ref=lambda a, b: a + b)
spec("add", "{0} + {1}", (STR, TEXT), (STR, ["!"] * 6 + ["x"]), ref=lambda a, b: a + b)
spec("add", "{0} + {1}", (TIME, [NOW, 0, None]), (INT, [5, 7, 1]), ref=lambda a, b: a + b, const=False)
spec("subtract", "{0} - {1}", (INT, INTS_A), (INT, INTS_B), ref=lambda a, b: a - b)
spec("subtract", "{0} - {1}", (TIME, [NOW, 10, None]), (TIME, [NOW - 5, 3, 1]),
     ref=lambda a, b: a - b, const=False)
spec("multiply", "{0} * {1}", (INT, INTS_A), (INT, INTS_B), ref=lambda a, b: a * b)
spec("multiply", "{0} * {1}", (FLT, FLOATS_A), (FLT, FLOATS_B), ref=lambda a, b: a * b)
spec("modulo", "{0} % {1}", (INT, [7, -7, 7, None, 9]), (INT, [3, 3, -3, 2, 9]),
     ref=lambda a, b: a % b)
spec("divide", "{0} / {1}", (FLT, FLOATS_A), (FLT, FLOATS_B), ref=_ieee(lambda a, b: a / b),
     const=False)  # the compiler rejects a constant division by zero
spec("divide", "{0} / {1}", (FLT, FLOATS_A[:5]), (FLT, FLOATS_B[:5]), ref=lambda a, b: a / b)
spec("divide", "{0} / {1}", (INT, [7, 1, None]), (INT, [2, 3, 4]), ref=lambda a, b: a / b)
for _fn, _sym, _op in (("equal", "==", lambda a, b: a == b), ("notEqual", "!=", lambda a, b: a != b),
                       ("lessThan", "<", lambda a, b: a < b),
                       ("lessThanEqual", "<=", lambda a, b: a <= b),
                       ("greaterThan", ">", lambda a, b: a > b),
                       ("greaterThanEqual", ">=", lambda a, b: a >= b)):
    spec(_fn, f"{{0}} {_sym} {{1}}", (INT, INTS_A), (INT, [1, -8, 0, 1, 3, 7]), ref=_op)
    spec(_fn, f"{{0}} {_sym} {{1}}", (STR, TEXT), (STR, ["héllo", "  abc\t", "a", "Ü", "日本", "a/b/c", "x"]),
         ref=_op)
    spec(_fn, f"{{0}} {_sym} {{1}}", (FLT, FLOATS_A), (INT, [1, 2, 0, 4, 5, 3]), ref=_op)

BOOLS_A = [True, True, False, False, None, None, None]
BOOLS_B = [True, False, True, False, True, False, None]


def _and(a: Any, b: Any) -> Any:  # Kleene logic, as Polars
    if a is False or b is False:
        return False
    return NULL if a is None or b is None else True


def _or(a: Any, b: Any) -> Any:
    if a is True or b is True:
        return True
    return NULL if a is None or b is None else False


spec("logicalAnd", "{0} and {1}", (BOOL, BOOLS_A), (BOOL, BOOLS_B), ref=_and, nulls="ref")
spec("logicalOr", "{0} or {1}", (BOOL, BOOLS_A), (BOOL, BOOLS_B), ref=_or, nulls="ref")
spec("logicalNot", "not {0}", (BOOL, [True, False, None]), ref=lambda a: not a)
spec("negate", "-{0}", (INT, INTS_A), ref=lambda a: -a)
spec("negate", "-{0}", (FLT, FLOATS_A), ref=lambda a: -a)

# --- scalars.py --------------------------------------------------------------------------------
spec("bin", "px.bin({0}, 10)", (INT, [0, 9, 10, 25, None, 1234]), ref=lambda a: a - a % 10)
spec("bin", "px.bin({0}, '1s')", (TIME, [NOW + 1_500_000_000, 999, None]),
     ref=lambda a: a - a % 1_000_000_000, const=False)
spec("contains", "px.contains({0}, {1})", (STR, TEXT), (STR, ["wö", "abc", "", "ß", "x", "/", "a"]),
     ref=lambda s, sub: sub in s)
spec("contains", "px.contains({0}, 'c')", (STR, TEXT), ref=lambda s: "c" in s)


def _select(c: Any, x: Any, y: Any) -> Any:
    value = x if c else y
    return NULL if value is None else value


spec("select", "px.select({0}, {1}, {2})", (BOOL, [True, False, None, True, False]),
     (INT, [1, 2, 3, None, 5]), (INT, [10, 20, 30, 40, None]), ref=_select, nulls="ref")
spec("select", "px.select({0}, {1}, {2})", (BOOL, [True, False]), (STR, ["ä", "b"]), (STR, ["c", "日"]),
     ref=_select, nulls="ref")
# --- semantic.py: casts keep the values ------------------------------------------------------
for _cast in ("DurationNanos", "Bytes", "Percent", "Throughput", "ThroughputBytes"):
    spec(_cast, f"px.{_cast}({{0}})", (INT, [1, None, -5]), ref=lambda a: a)
    spec(_cast, f"px.{_cast}({{0}})", (FLT, [1.5, None]), ref=lambda a: a)
for _cast in ("Service", "Pod", "Namespace", "Node", "Container", "UPID"):
    spec(_cast, f"px.{_cast}({{0}})", (STR, TEXT), ref=lambda a: a)
spec("Time", "px.Time({0})", (INT, [NOW, 0, None, -5]), ref=lambda n: n, const=False)
spec("Time", "px.Time({0})", (TIME, [NOW, 0, None]), ref=lambda t: t, const=False)

# --- metadata.py -------------------------------------------------------------------------------
UPIDS = ["00000001-0000dc8e-18ead3a2486f21b5", "00000002-000000ff-1", "unknown", None,
         "00000001-0000dc8e-18ead3a2486f21b5"]
META = pl.DataFrame({
    "upid": ["00000001-0000dc8e-18ead3a2486f21b5", "00000002-000000ff-1"],
    "cmdline": ["node /app/server.js", "python3 -m app"],
    "hostname": ["node-1", "nöde-2"],
    "container_name": ["frontend", None],
    "container_id": ["8e05", "4ea8"],
    "pod": ["shop/frontend-1", "shop/cart-2"],
    "service": ["shop/frontend", "shop/cart"],
    "namespace": ["shop", "shop"],
    "node": ["node-1", "nöde-2"],
    "deployment": ["shop/frontend", "shop/cart"],
    "replicaset": ["shop/frontend-rs", "shop/cart-rs"],
})
for _name, _col in (("upid_to_cmdline", "cmdline"), ("upid_to_hostname", "hostname"),
                    ("upid_to_container_name", "container_name"),
                    ("upid_to_container_id", "container_id"), ("upid_to_pod_name", "pod"),
                    ("upid_to_service_name", "service"), ("upid_to_namespace", "namespace"),
                    ("upid_to_node_name", "node"), ("upid_to_deployment_name", "deployment"),
                    ("upid_to_replicaset_name", "replicaset")):
    _lookup = dict(zip(META["upid"].to_list(), META[_col].to_list(), strict=True))
    spec(_name, f"px.{_name}({{0}})", (STR, UPIDS), metadata=True, const=False,
         ref=lambda u, _lookup=_lookup: _lookup.get(u) or "")  # an unknown upid: ''

spec("upid_to_pid", "px.upid_to_pid({0})", (STR, UPIDS), metadata=True,
     expected=[0xDC8E, 0xFF, None, None, 0xDC8E])

# --- strings.py --------------------------------------------------------------------------------
ASCII_WS = " \t\n\r\x0b\x0c"
spec("length", "px.length({0})", (STR, TEXT), ref=len)
spec("find", "px.find({0}, {1})", (STR, TEXT), (STR, ["wö", "c", "", "ß", "テ", "x", "a"]),
     ref=lambda s, sub: s.find(sub))
spec("find", "px.find({0}, 'b')", (STR, TEXT), ref=lambda s: s.find("b"))


def _substring(s: str, pos: int, n: int) -> str:
    return "" if pos < 0 or n < 0 or pos > len(s) else s[pos:pos + n]


spec("substring", "px.substring({0}, {1}, {2})", (STR, TEXT + ["abc", "abc", "abc"]),
     (INT, [1, 0, 0, 3, 2, 5, 0, -1, 3, 1]), (INT, [3, 4, 1, 100, 2, 1, 2, 2, 1, -1]), ref=_substring)
spec("tolower", "px.tolower({0})", (STR, TEXT + ["ÀÉÎ ABC"]), ref=str.lower)
spec("toupper", "px.toupper({0})", (STR, TEXT + ["àéî abc"]), ref=str.upper)
spec("trim", "px.trim({0})", (STR, TEXT + ["\n x y \x0b", "\u00a0nbsp\u00a0"]),
     ref=lambda s: s.strip(ASCII_WS))
spec("strip_prefix", "px.strip_prefix({0}, {1})", (STR, ["hé", " ", "", "x", "日本", "a/b/c/", "a"]),
     (STR, TEXT), ref=lambda p, s: s[len(p):] if s.startswith(p) else s)
spec("regex_match", "px.regex_match('.*[öß].*', {0})", (STR, TEXT),
     ref=lambda s: re.fullmatch(".*[öß].*", s, re.S) is not None)
spec("regex_match", "px.regex_match('a.c', {0})", (STR, ["abc", "a\nc", "abcd", "xabc", None]),
     ref=lambda s: re.fullmatch("a.c", s, re.S) is not None)
spec("replace", r"px.replace('([a-zö])(l+)', {0}, '\\2<\\1>$')", (STR, TEXT + ["hello\nall"]),
     ref=lambda s: re.sub("([a-zö])(l+)", r"\2<\1>$", s))
spec("replace", "px.replace('[0-9]+', {0}, '#')", (STR, ["/api/v1/users/42", "", None, "٣ 7"]),
     ref=lambda s: re.sub("[0-9]+", "#", s))


def _split(s: str, sep: str) -> str:
    parts = list(s) if sep == "" else s.split(sep)
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


spec("split", "px.split({0}, {1})", (STR, TEXT + ['a"b\\c\n;d', "x;;y"]),
     (STR, [" ", "b", ",", "", "テ", "/", "a", ";", ";"]), ref=_split)


def _atoi(s: str, default: int = 0) -> int:
    t = s.strip(ASCII_WS)
    return int(t) if re.fullmatch(r"[+-]?[0-9]+", t) and -(2**63) <= int(t) < 2**63 else default


ATOI = ["42", " -7 ", "+3", "1_000", "12a", "", "99999999999999999999", "٣", None, "0x10"]
spec("atoi", "px.atoi({0})", (STR, ATOI), ref=_atoi)
spec("atoi", "px.atoi({0}, {1})", (STR, ATOI), (INT, [-1] * 10), ref=_atoi)
spec("itoa", "px.itoa({0})", (INT, INTS_A + [-(2**63)]), ref=str)

# --- json.py -----------------------------------------------------------------------------------
DOCS = ['{"a": 200, "b": "x", "c": [1, {"k": "ü"}], "d": 5.5, "e": null, "f": true, "g": "12"}',
        'not json', '[10, "y", null, {"z": 1}]', None, '{"a": -3, "d": 2, "it\'s": "q"}', '',
        '{"a": 1.5, "b": {"nested": "日本"}}']


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _as_text(v: Any) -> str:
    if v is None:
        return ""
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _pluck(text: str, key: str) -> str:
    d = _json(text)
    return _as_text(d.get(key)) if isinstance(d, dict) else ""


def _pluck_int(text: str, key: str) -> int:
    d = _json(text)
    v = d.get(key) if isinstance(d, dict) else None
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and re.fullmatch(r"[+-]?[0-9]+", v):  # pxl reads numbers in strings
        return int(v)
    return 0


def _pluck_float(text: str, key: str) -> float:
    d = _json(text)
    v = d.get(key) if isinstance(d, dict) else None
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    try:
        return float(v) if isinstance(v, str) else 0.0
    except ValueError:
        return 0.0


def _pluck_array(text: str, i: int) -> str:
    d = _json(text)
    return _as_text(d[i]) if isinstance(d, list) and 0 <= i < len(d) else ""


for _key in ("a", "b", "c", "e", "f", "g", "it's", "missing"):
    spec("pluck", f"px.pluck({{0}}, {_key!r})", (STR, DOCS), ref=lambda t, k=_key: _pluck(t, k))
for _key in ("a", "b", "d", "g", "missing"):
    spec("pluck_int64", f"px.pluck_int64({{0}}, {_key!r})", (STR, DOCS),
         ref=lambda t, k=_key: _pluck_int(t, k))
    spec("pluck_float64", f"px.pluck_float64({{0}}, {_key!r})", (STR, DOCS),
         ref=lambda t, k=_key: _pluck_float(t, k))
for _index in (0, 1, 2, 3, 9, -1):
    spec("pluck_array", f"px.pluck_array({{0}}, {_index})", (STR, DOCS),
         ref=lambda t, i=_index: _pluck_array(t, i))
spec("pluck_array", "px.pluck_array(px.split({0}, '/'), 1)", (STR, TEXT),
     ref=lambda s: (s.split("/") + [""])[1])

# --- math.py -----------------------------------------------------------------------------------
MATH_F = [2.25, -1.5, 0.0, None, 1e300, 0.5, 2.5, -0.0]
spec("abs", "px.abs({0})", (INT, INTS_A), ref=abs)
spec("abs", "px.abs({0})", (FLT, MATH_F), ref=abs)
spec("ceil", "px.ceil({0})", (FLT, MATH_F[:4] + [1e6 + 0.1]), ref=math.ceil)
spec("ceil", "px.ceil({0})", (INT, INTS_A), ref=lambda a: a)
spec("floor", "px.floor({0})", (FLT, MATH_F[:4] + [-1e6 - 0.1]), ref=math.floor)
spec("floor", "px.floor({0})", (INT, INTS_A), ref=lambda a: a)
spec("round", "px.round({0})", (FLT, MATH_F[:4] + [0.5, 2.5, -3.7]), ref=round)
spec("round", "px.round({0}, {1})", (FLT, [3.14159, -2.5, 0.0, None, 1e20, 2.675, 7.0]),
     (INT, [2, 0, 3, 1, 1, 2, -1]), ref=lambda x, d: f"{x:.{d if d >= 0 else 6}f}")
spec("round", "px.round({0}, 1)", (INT, [3, None]), ref=lambda x: f"{float(x):.1f}")
spec("sqrt", "px.sqrt({0})", (FLT, MATH_F), ref=_ieee(np.sqrt))
spec("sqrt", "px.sqrt({0})", (INT, [4, 2, None]), ref=_ieee(np.sqrt))
spec("exp", "px.exp({0})", (FLT, MATH_F[:4] + [1000.0]), ref=_ieee(np.exp))
spec("pow", "px.pow({0}, {1})", (FLT, [2.0, -8.0, 0.0, None, 10.0, 1.5]),
     (FLT, [3.0, 2.0, -1.0, 1.0, 400.0, 0.5]), ref=_ieee(np.power))
spec("pow", "px.pow({0}, {1})", (INT, [2, 3, None]), (INT, [10, 0, 2]), ref=lambda a, b: float(a ** b))
spec("ln", "px.ln({0})", (FLT, MATH_F), ref=_ieee(np.log))
spec("log2", "px.log2({0})", (FLT, MATH_F + [8.0]), ref=_ieee(np.log2))
spec("log10", "px.log10({0})", (INT, [1000, 1, 0, None, -5]), ref=_ieee(np.log10))
spec("log", "px.log({0}, {1})", (FLT, [2.0, 10.0, 2.0, None, 1.0]), (FLT, [8.0, 1e-3, 0.0, 1.0, 5.0]),
     ref=_ieee(lambda b, x: np.log(x) / np.log(b)))
spec("invert", "px.invert({0})", (INT, INTS_A), ref=lambda a: ~a)
spec("approxEqual", "px.approxEqual({0}, {1})", (FLT, [0.1 + 0.2, 1.0, None]), (FLT, [0.3, 1.1, 1.0]),
     ref=lambda a, b: abs(a - b) < 2.220446049250313e-16)

# --- time.py -----------------------------------------------------------------------------------
spec("time_to_int64", "px.time_to_int64({0})", (TIME, [NOW, 0, None, -5]), ref=lambda t: t,
     const=False)
spec("int64_to_time", "px.int64_to_time({0})", (INT, [NOW, 0, None, 123]), ref=lambda n: n,
     const=False)

# --- logic.py ----------------------------------------------------------------------------------
spec("equals_any", "px.equals_any({0}, [1, 1099511627776, -7])", (INT, INTS_A),
     ref=lambda a: a in (1, 2**40, -7))
spec("equals_any", "px.equals_any({0}, ['héllo wörld', '', '日本語テキスト'])", (STR, TEXT),
     ref=lambda s: s in ("héllo wörld", "", "日本語テキスト"))
spec("equals_any", "px.equals_any({0}, [1, 2.5])", (FLT, [1.0, 2.5, 3.0, None]),
     ref=lambda x: x in (1.0, 2.5))
spec("equals_any", "px.equals_any({0}, [1.5, 0])", (INT, [0, 1, None]), ref=lambda x: x in (1.5, 0))
spec("equals_any", "px.equals_any({0}, [True])", (BOOL, [True, False, None]), ref=lambda x: x)

# --- network.py --------------------------------------------------------------------------------
ADDRS = ["10.1.2.3", "192.168.1.77", "192.168.2.1", "8.8.8.8", None, "not an ip", "",
         "::ffff:10.0.0.1", "010.0.0.1", "10.0.0.256", "2001:db8::1", "fe80::1"]


def _in(nets: list[str], ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == n.version and addr in n
               for n in (ipaddress.ip_network(x, strict=False) for x in nets))


V4 = ["10.0.0.0/8", "192.168.1.0/24"]
spec("cidrs_contain_ip", "px.cidrs_contain_ip(['10.0.0.0/8', '192.168.1.0/24'], {0})",
     (STR, ADDRS), ref=lambda ip: _in(V4, ip))
spec("cidrs_contain_ip", """px.cidrs_contain_ip('["10.0.0.0/8", "192.168.1.0/24"]', {0})""",
     (STR, ADDRS), ref=lambda ip: _in(V4, ip))
spec("cidrs_contain_ip", "px.cidrs_contain_ip(['2001:db8::/32', '8.8.0.0/16'], {0})",
     (STR, ADDRS), ref=lambda ip: _in(["2001:db8::/32", "8.8.0.0/16"], ip))

# --- protocols.py ------------------------------------------------------------------------------
spec("http_resp_message", "px.http_resp_message({0})", (INT, [200, 404, 503, 999, None, 306]),
     expected=["OK", "Not Found", "Service Unavailable", "Unassigned", None, "(Unused)"])
spec("http_resp_message", "px.http_resp_message({0})", (INT, list(range(95, 520))),
     ref=lambda c: HTTP_MESSAGES.get(c, "Unassigned"))
spec("mysql_command_name", "px.mysql_command_name({0})", (INT, [3, 0x17, 0, 99, -1, None]),
     expected=["Query", "StmtExecute", "Sleep", "99", "-1", None])
spec("mysql_command_name", "px.mysql_command_name({0})", (INT, list(range(40))),
     ref=lambda c: MYSQL_COMMANDS.get(c, str(c)))
spec("dns_rcode_name", "px.dns_rcode_name({0})", (INT, [0, 3, 23, 12, None]),
     expected=["NOERROR", "NXDOMAIN", "BADCOOKIE", "12", None])
spec("dns_rcode_name", "px.dns_rcode_name({0})", (INT, list(range(30))),
     ref=lambda c: DNS_RCODES.get(c, str(c)))
spec("protocol_name", "px.protocol_name({0})", (INT, [1, 3, 5, 13, 14, -2, None]),
     expected=["HTTP", "MySQL", "PGSQL", "TLS", "Invalid (14)", "Invalid (-2)", None])
spec("protocol_name", "px.protocol_name({0})", (INT, list(range(16))),
     ref=lambda c: PROTOCOLS.get(c, f"Invalid ({c})"))


# --- sql.py ------------------------------------------------------------------------------------
def _norm(query: str, params: list[str]) -> str:
    return json.dumps({"query": query, "params": params}, ensure_ascii=False,
                      separators=(",", ":"))


def _err(message: str) -> str:
    return json.dumps({"error": message}, separators=(",", ":"))


MORE = "Query has more parameter placeholders in it than parameter values were passed in"
MYSQL = [  # (query, command code, expected): Pixie's test cases and more
    ("SELECT 1", 3, _norm("SELECT ?", ["1"])),
    ("SELECT * FROM test WHERE prop=1234 AND prop2='abcd'", 3,
     _norm("SELECT * FROM test WHERE prop=? AND prop2=?", ["1234", "'abcd'"])),
    ("CREATE TABLE test (name text, address varchar(20), foo int, bar text)", 3,
     _norm("CREATE TABLE test (name text, address varchar(20), foo int, bar text)", [])),
    ("UPDATE test SET age=10 where name='abcd'", 3,
     _norm("UPDATE test SET age=? where name=?", ["10", "'abcd'"])),
    ("INSERT INTO my_new_table SELECT 'abcd' as col1, 1234 as col2, 1.2345 as col3", 3,
     _norm("INSERT INTO my_new_table SELECT ? as col1, ? as col2, ? as col3",
           ["'abcd'", "1234", "1.2345"])),
    ("SELECT length(abcd) + 1 from test", 3, _norm("SELECT length(abcd) + ? from test", ["1"])),
    ("INSERT INTO test (a, b, c, d, e) VALUES (1, 'abcd', 1.23, true, X'DEADBEEF')", 3,
     _norm("INSERT INTO test (a, b, c, d, e) VALUES (?, ?, ?, ?, ?)",
           ["1", "'abcd'", "1.23", "true", "X'DEADBEEF'"])),
    ("SELECT * FROM test WHERE prop=@a AND prop2='ab\\'cd' -- 5\nLIMIT 10", 3,
     _norm("SELECT * FROM test WHERE prop=@a AND prop2=? -- 5\nLIMIT 10", ["'ab\\'cd'"])),
    ("SELECT * FROM t WHERE a = -5 AND b - 3 > 2 AND n = 'ünï'", 3,
     _norm("SELECT * FROM t WHERE a = ? AND b - ? > ? AND n = ?", ["-5", "3", "2", "'ünï'"])),
    ("query=[SELECT * from test WHERE name=? AND tag=1234 AND property=?] params=['abcd', 1.23]",
     23, _norm("SELECT * from test WHERE name=? AND tag=? AND property=?",
               ["'abcd'", "1234", "1.23"])),
    ("SELECT * FROM t WHERE id = ?", 3, _err(MORE)),
    ("SELECT 'unterminated", 3, _err("unterminated quoted string")),
    ("SELECT 1", 5, _err("cmd_code must be one of '3' or '23'")),
    (None, 3, None),
    ("SELECT 1", None, None),
]
PGSQL = [
    ("SELECT 1", "Query", _norm("SELECT $1", ["1"])),
    ("SELECT * FROM test WHERE prop=1234 AND prop2='abcd'", "Query",
     _norm("SELECT * FROM test WHERE prop=$1 AND prop2=$2", ["1234", "'abcd'"])),
    ("CREATE TABLE test (name varchar(20), address text, foo int, bar text)", "Query",
     _norm("CREATE TABLE test (name varchar(20), address text, foo int, bar text)", [])),
    ("SELECT * from test where abcd >= 11", "Query",
     _norm("SELECT * from test where abcd >= $1", ["11"])),
    ("SELECT 'abcd' as col1, 1234 as col2, 1.2345 as col3 into my_new_table", "Query",
     _norm("SELECT $1 as col1, $2 as col2, $3 as col3 into my_new_table",
           ["'abcd'", "1234", "1.2345"])),
    ("INSERT INTO test (a, b, c, d, e) VALUES (1, 'abcd', 1.23, true, E'\\\\xDEADBEEF')", "Query",
     _norm("INSERT INTO test (a, b, c, d, e) VALUES ($1, $2, $3, $4, $5)",
           ["1", "'abcd'", "1.23", "true", "E'\\\\xDEADBEEF'"])),
    ("query=[SELECT * from test WHERE name=$1 AND tag=1234 AND property=$2] params=['abcd', 1.23]",
     "Execute", _norm("SELECT * from test WHERE name=$1 AND tag=$2 AND property=$3",
                      ["'abcd'", "1234", "1.23"])),
    ("query=[SELECT * from test WHERE name=$1 AND tag=1234 AND property=$1] params=['abcd']",
     "Execute", _norm("SELECT * from test WHERE name=$1 AND tag=$2 AND property=$3",
                      ["'abcd'", "1234", "'abcd'"])),
    ('SELECT "Col" FROM t WHERE x = \'日本\'::text', "Query",
     _norm('SELECT "Col" FROM t WHERE x = $1::text', ["'日本'"])),
    ("SELECT $2", "Query", _err(MORE)),
    ("SELECT 1", "Bind", _err("cmd_code must be one of 'Query' or 'Execute'")),
    (None, "Query", None),
]
spec("normalize_mysql", "px.normalize_mysql({0}, {1})", (STR, [q for q, _, _ in MYSQL]),
     (INT, [c for _, c, _ in MYSQL]), expected=[e for _, _, e in MYSQL])
spec("normalize_mysql", "px.normalize_mysql({0})", (STR, ["SELECT 1", None]),
     expected=[_norm("SELECT ?", ["1"]), None])
spec("normalize_pgsql", "px.normalize_pgsql({0}, {1})", (STR, [q for q, _, _ in PGSQL]),
     (STR, [c for _, c, _ in PGSQL]), expected=[e for _, _, e in PGSQL])
spec("normalize_pgsql", "px.normalize_pgsql({0})", (STR, ["SELECT 'x'", None]),
     expected=[_norm("SELECT $1", ["'x'"]), None])

# --- redact.py ---------------------------------------------------------------------------------
PII = [
    ("mail jöhn.doe@example.com now", "mail <REDACTED_EMAIL> now"),
    ("to=a.b%40mail.example.org&x=1", "to=<REDACTED_EMAIL>&x=1"),
    ("<p>mail: ünï_côde+tag@exämple.de</p>", "<p>mail: <REDACTED_EMAIL></p>"),
    ("from 10.0.0.1:8080 and 256.1.1.1", "from <REDACTED_IPV4>:8080 and 256.1.1.1"),
    ("v6 2001:db8::ff00:42:8329, ::ffff:10.0.0.1 and ::1.",
     "v6 <REDACTED_IPV6>, <REDACTED_IPV6> and <REDACTED_IPV6>."),
    ("std::vector at 12:30:45", "std::vector at 12:30:45"),
    ("mac 00:1A:2b:3C:4d:5E / 00-1a-2b-3c-4d-5e", "mac <REDACTED_MAC_ADDR> / <REDACTED_MAC_ADDR>"),
    ("card 4111 1111 1111 1111, bad 4111 1111 1111 1112",
     "card <REDACTED_CC_NUMBER>, bad 4111 1111 1111 1112"),
    ("cc=5500-0000-0000-0004&x=1", "cc=<REDACTED_CC_NUMBER>&x=1"),
    ("imei 49-015420-323751-8 sv 49-015420-323751-89", "imei <REDACTED_IMEI> sv <REDACTED_IMEI>"),
    ("iban GB82 WEST 1234 5698 7654 32 ok; DE89370400440532013000",
     "iban <REDACTED_IBAN> ok; <REDACTED_IBAN>"),
    ("not iban GB82 WEST 1234 5698 7654 33", "not iban GB82 WEST 1234 5698 7654 33"),
    ("ssn 078-05-1120 / 666-12-3456 / 123 45 6789", "ssn <REDACTED_SSN> / 666-12-3456 / <REDACTED_SSN>"),
    ("nothing here, 日本語", "nothing here, 日本語"),
    ("", ""),
    (None, None),
]
spec("redact_pii_best_effort", "px.redact_pii_best_effort({0})", (STR, [t for t, _ in PII]),
     expected=[e for _, e in PII])

SPEC_IDS = [s.id for s in SPECS]


# ------------------------------------------------------------------------------------------------
# running


def _catalog(frame: pl.DataFrame, metadata: bool) -> MemoryCatalog:
    catalog = MemoryCatalog()
    catalog.add("t", frame)
    if metadata:
        catalog.set_metadata(META)
    return catalog


def _source(call: str) -> str:
    return f"import px\ndf = px.DataFrame('t')\ndf.out = {call}\npx.display(df)\n"


def _column_call(s: Spec) -> str:
    return s.call.format(*(f"df.c{i}" for i in range(len(s.args))))


def _values(result: pl.DataFrame) -> list[Any]:
    col = result["out"]
    if isinstance(col.dtype, pl.Datetime):
        col = col.cast(pl.Int64)
    return col.to_list()


def run_spec(s: Spec, frame: pl.DataFrame | None = None) -> pl.DataFrame:
    frame = s.frame() if frame is None else frame
    res = pxl.run(_source(_column_call(s)), catalog=_catalog(frame, s.metadata), now=NOW)
    return res["output"]


def same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        if math.isnan(want) or math.isnan(got):
            return math.isnan(want) and math.isnan(got)
        return got == want or math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-300)
    if isinstance(want, bool) or isinstance(got, bool):
        return type(got) is type(want) and got == want
    return got == want and type(got) is type(want)


def assert_rows(got: list[Any], want: list[Any], context: str) -> None:
    assert len(got) == len(want), context
    bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want, strict=True)) if not same(g, w)]
    assert not bad, f"{context}: (row, got, want) {bad[:5]}"


def _declared_dtype(s: Spec) -> pl.DataType:
    plan = pxl.compile(_source(_column_call(s)), catalog=_catalog(s.frame(), s.metadata), now=NOW)
    return plan.sinks[0].schema["out"].dtype.polars


# ------------------------------------------------------------------------------------------------
# tests


def test_every_function_has_cases() -> None:
    covered = {s.fn for s in SPECS}
    missing = sorted(set(REGISTRY.scalars) - covered)
    assert not missing, f"scalar functions without a case in tests/test_functions.py: {missing}"
    missing = sorted(set(REGISTRY.aggregates) - {a.fn for a in AGG_SPECS})
    assert not missing, f"aggregates without a case in tests/test_functions.py: {missing}"
    missing = sorted(set(REGISTRY.compile_time) - {c[0] for c in COMPILE_TIME})
    assert not missing, f"compile-time functions without a case: {missing}"
    unknown = sorted(covered - set(REGISTRY.scalars))
    assert not unknown


def test_every_function_is_documented() -> None:
    for fn in [*REGISTRY.scalars.values(), *REGISTRY.aggregates.values(),
               *REGISTRY.compile_time.values()]:
        assert fn.doc.strip() and fn.signatures, fn.name
        if fn.category not in ("operators", "semantic types"):
            assert fn.examples, f"px.{fn.name} has no example"


@pytest.mark.parametrize("s", SPECS, ids=SPEC_IDS)
def test_values(s: Spec) -> None:
    out = run_spec(s)
    assert out["out"].dtype == _declared_dtype(s)
    assert_rows(_values(out), s.want(), _column_call(s))


@pytest.mark.parametrize("s", SPECS, ids=SPEC_IDS)
def test_empty_frame(s: Spec) -> None:
    out = run_spec(s, s.frame().head(0))
    assert out.height == 0
    assert out["out"].dtype == _declared_dtype(s)


@pytest.mark.parametrize("s", [s for s in SPECS if any(d == STR for d, _ in s.args)],
                         ids=[s.id for s in SPECS if any(d == STR for d, _ in s.args)])
def test_dictionary_columns(s: Spec) -> None:
    """Repeated strings are held dictionary-encoded: evaluated once per distinct value, or
    decoded where several columns meet; the answers must not change."""
    times = 1_000 // len(s.rows()) + 1
    frame = pl.concat([s.frame()] * times)
    catalog = _catalog(frame, s.metadata)
    assert any(isinstance(t, pl.Categorical) for t in catalog.scan("t", None, None, None)
               .collect_schema().values()), "the test needs a dictionary-encoded column"
    res = pxl.run(_source(_column_call(s)), catalog=catalog, now=NOW)["output"]
    assert_rows(_values(res), s.want() * times, _column_call(s))


@pytest.mark.parametrize("s", SPECS, ids=SPEC_IDS)
def test_streaming_engine(s: Spec) -> None:
    """Polars' streaming engine runs the translations in batches (map_batches included)."""
    times = 3_000 // len(s.rows()) + 1
    frame = pl.concat([s.frame()] * times)
    res = pxl.run(_source(_column_call(s)), catalog=_catalog(frame, s.metadata), now=NOW,
                  engine="streaming")["output"]
    assert_rows(_values(res), s.want() * times, _column_call(s))


def _literal(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return repr(value)


def _folded(plan: Any) -> bool:
    stack = list(plan.sinks)
    while stack:
        node = stack.pop()
        if isinstance(node, Map):
            for name, expr in node.exprs:
                if name == "out":
                    return isinstance(expr, Literal)
        stack.extend(node.children)
    raise AssertionError("no 'out' column in the plan")


CONST_SPECS = [s for s in SPECS if s.const and all(d != TIME for d, _ in s.args)]


@pytest.mark.parametrize("s", CONST_SPECS, ids=[s.id for s in CONST_SPECS])
def test_constant_arguments_fold_to_the_column_answer(s: Spec) -> None:
    column = _values(run_spec(s))
    fn = REGISTRY.scalar(s.fn)
    dummy = pl.DataFrame({"x": [1]})
    for row, want in zip(s.rows(), column, strict=True):
        texts = [_literal(v) for v in row]
        if any(v is None for v in row) or None in texts:
            continue
        source = _source(s.call.format(*texts))
        got = _values(pxl.run(source, tables={"t": dummy}, now=NOW)["output"])[0]
        assert same(got, want), f"{s.call.format(*texts)}: folded {got!r}, column {want!r}"
        plan = pxl.compile(source, tables={"t": dummy}, now=NOW)
        finite = want is not None and not (isinstance(want, float) and not math.isfinite(want))
        if fn.fold is not None and finite:
            assert _folded(plan), f"{s.call.format(*texts)} was not folded"


# --- aggregates --------------------------------------------------------------------------------


@dataclass
class AggSpec:
    fn: str
    dtype: pl.DataType
    values: list[Any]
    ref: Callable[[list[Any]], Any]  # over a group's non-null values
    params: tuple[Any, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


GROUPS = ["a", "b", "a", "c", "a", "b", "d", "ü"]


def _quantile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    return float(np.quantile(np.array(xs, dtype=float), q, method="linear"))


AGG_SPECS = [
    AggSpec("count", INT, [1, None, 3, 4, 5, 6, None, 8], len),
    AggSpec("count", STR, ["x", "y", None, "日本", "z", None, None, "w"], len),
    AggSpec("sum", INT, [1, None, 3, 4, 5, -6, None, 8], sum),
    AggSpec("sum", FLT, [1.5, None, 3.0, 4.0, 5.5, -6.0, None, 8.0], lambda xs: float(sum(xs))),
    AggSpec("mean", INT, [1, None, 4, 4, 5, 6, None, 8],
            lambda xs: sum(xs) / len(xs) if xs else None),
    AggSpec("min", INT, [1, None, 3, 4, 0, 6, None, 8], lambda xs: min(xs) if xs else None),
    AggSpec("min", STR, ["x", "y", "é", "日本", "z", None, None, "w"],
            lambda xs: min(xs) if xs else None),
    AggSpec("max", FLT, [1.5, None, 3.0, 4.0, 5.5, -6.0, None, 8.0],
            lambda xs: max(xs) if xs else None),
    AggSpec("max", STR, ["x", "y", "é", "日本", "z", None, None, "w"],
            lambda xs: max(xs) if xs else None),
    AggSpec("quantile", FLT, [1.0, None, 3.0, 4.0, 5.0, 6.0, None, 8.0],
            lambda xs: _quantile(xs, 0.5), params=(0.5,)),
    AggSpec("quantiles", INT, [1, None, 3, 4, 5, 6, None, 8],
            lambda xs: _quantile(xs, 0.99)),
    AggSpec("any", INT, [None, 2, 3, 4, 5, 6, None, 8], lambda xs: xs[0] if xs else None),
    AggSpec("any", STR, [None, "ü", "x", "日本", "z", None, None, "w"],
            lambda xs: xs[0] if xs else None),
]


def _agg_source(a: AggSpec) -> str:
    params = "".join(f", {p!r}" for p in a.params)
    out = "df.out = px.pluck_float64(df.q, 'p99')\n" if a.fn == "quantiles" else "df.out = df.q\n"
    return ("import px\ndf = px.DataFrame('t')\n"
            f"df = df.groupby('g').agg(q=('v', px.{a.fn}{params}))\n{out}"
            "df = df[['g', 'out']]\npx.display(df)\n")


@pytest.mark.parametrize("a", AGG_SPECS, ids=[f"{a.fn}-{a.dtype}" for a in AGG_SPECS])
def test_aggregate(a: AggSpec) -> None:
    frame = pl.DataFrame({"g": GROUPS, "v": pl.Series(a.values, dtype=a.dtype)})
    out = pxl.run(_agg_source(a), tables={"t": frame}, now=NOW)["output"]
    got = dict(zip(out["g"].to_list(), out["out"].to_list(), strict=True))
    for g in dict.fromkeys(GROUPS):
        xs = [v for k, v in zip(GROUPS, a.values, strict=True) if k == g and v is not None]
        assert same(got[g], a.ref(xs)), f"group {g}: {got[g]!r} != {a.ref(xs)!r}"
    empty = pxl.run(_agg_source(a), tables={"t": frame.head(0)}, now=NOW)["output"]
    assert empty.height == 0


@pytest.mark.parametrize("a", AGG_SPECS, ids=[f"{a.fn}-{a.dtype}" for a in AGG_SPECS])
def test_aggregate_whole_table(a: AggSpec) -> None:
    frame = pl.DataFrame({"v": pl.Series(a.values, dtype=a.dtype)})
    params = "".join(f", {p!r}" for p in a.params)
    out = "px.pluck_float64(df.q, 'p99')" if a.fn == "quantiles" else "df.q"
    src = (f"import px\ndf = px.DataFrame('t')\ndf = df.agg(q=('v', px.{a.fn}{params}))\n"
           f"df.out = {out}\npx.display(df)\n")
    got = pxl.run(src, tables={"t": frame}, now=NOW)["output"]["out"].to_list()
    assert same(got[0], a.ref([v for v in a.values if v is not None]))


def test_any_keeps_the_semantic_type() -> None:
    frame = pl.DataFrame({"g": ["a", "a"], "latency": [5, 7]})
    res = pxl.run("import px\ndf = px.DataFrame('t')\ndf.latency = px.DurationNanos(df.latency)\n"
                  "df = df.groupby('g').agg(l=('latency', px.any))\npx.display(df)\n",
                  tables={"t": frame}, now=NOW)
    assert str(res.outputs[0].schema["l"].semantic) == "duration_ns"


# --- compile-time functions ----------------------------------------------------------------------

MINUTE = 60_000_000_000
COMPILE_TIME = [  # (function, PxL expression, expected value; times as ns since the epoch)
    ("now", "px.time_to_int64(px.now())", NOW),
    ("nanoseconds", "px.nanoseconds(5)", 5),
    ("microseconds", "px.microseconds(2)", 2_000),
    ("milliseconds", "px.milliseconds(1.5)", 1_500_000),
    ("seconds", "px.seconds(3)", 3_000_000_000),
    ("minutes", "px.minutes(5)", 5 * MINUTE),
    ("hours", "px.hours(1)", 60 * MINUTE),
    ("days", "px.days(2)", 2 * 24 * 60 * MINUTE),
    ("parse_duration", "px.parse_duration('5m')", 5 * MINUTE),
    ("parse_duration", "px.parse_duration('-5m')", -5 * MINUTE),
    ("parse_duration", "px.parse_duration('1m30s')", 90_000_000_000),
    ("parse_duration", "px.parse_duration('250ms')", 250_000_000),
    ("format_duration", "px.format_duration(-5 * 60 * 1000 * 1000 * 1000)", "-5m"),
    ("format_duration", "px.format_duration(-5 * 60 * 1000 * 1000 * 1000 + 5)", "-4m"),
    ("format_duration", "px.format_duration(5 * 60 * 60 * 1000 * 1000 * 1000)", "5h"),
    ("format_duration", "px.format_duration(3 * 24 * 60 * MINUTE)", "3d"),
    ("format_duration", "px.format_duration(1500000000)", "1s"),
    ("format_duration", "px.format_duration(1500000)", "1ms"),
    ("format_duration", "px.format_duration(0)", "0ms"),
    ("parse_time", "px.time_to_int64(px.parse_time('-5m'))", NOW - 5 * MINUTE),
    ("parse_time", "px.time_to_int64(px.parse_time('5m'))", NOW + 5 * MINUTE),
    ("parse_time", "px.time_to_int64(px.parse_time(10))", 10),
    ("parse_time", "px.time_to_int64(px.parse_time(px.now()))", NOW),
    ("parse_time", "px.time_to_int64(px.parse_time('2020-03-12T19:39:59Z'))",
     1_584_041_999_000_000_000),
    ("parse_time", "px.time_to_int64(px.parse_time('2020-03-12 19:39:59 -0200'))",
     1_584_049_199_000_000_000),
    ("strptime", "px.time_to_int64(px.strptime('2020-03-12 19:39:59 -0200', "
                 "'%Y-%m-%d %H:%M:%S %z'))", 1_584_049_199_000_000_000),
    ("strptime", "px.time_to_int64(px.strptime('12/03/2020 19:39', '%d/%m/%Y %H:%M'))",
     1_584_041_940_000_000_000),
]


@pytest.mark.parametrize("fn, expr, want", COMPILE_TIME, ids=[c[1] for c in COMPILE_TIME])
def test_compile_time(fn: str, expr: str, want: Any) -> None:
    src = (f"import px\nMINUTE = {MINUTE}\ndf = px.DataFrame('t')\ndf.out = {expr}\n"
           "px.display(df)\n")
    res = pxl.run(src, tables={"t": pl.DataFrame({"x": [1]})}, now=NOW)
    assert res["output"]["out"].to_list() == [want]
    assert fn in expr


@pytest.mark.parametrize("expr, message", [
    ("px.parse_duration('soon')", "is not a duration"),
    ("px.parse_duration(df.x)", "px.parse_duration needs a string"),
    ("px.parse_time('yesterday-ish')", "is not a time"),
    ("px.strptime('2020', '%d/%m')", "does not match the format"),
    ("px.format_duration('5m')", "px.format_duration needs a number"),
    ("px.minutes('5')", "px.minutes needs a number"),
    ("px.equals_any(df.x, [])", "cannot take an empty list"),
    ("px.equals_any(df.x, [1, 'a'])", "a list of constants of one type"),
    ("px.equals_any(df.x, df.x)", "argument 2 must be a constant"),
    ("px.regex_match('(', df.s)", "is not a valid regular expression"),
    ("px.replace('[', df.s, 'x')", "is not a valid regular expression"),
    ("px.cidrs_contain_ip(['10.0.0.0/99'], df.s)", "is not a CIDR range"),
    ("px.cidrs_contain_ip('not json', df.s)", "JSON array of strings"),
    ("px.pluck(df.s, df.s)", "argument 2 must be a constant"),
    ("px.length(['a'])", "cannot take a list"),
])
def test_argument_errors(expr: str, message: str) -> None:
    src = f"import px\ndf = px.DataFrame('t')\ndf.out = {expr}\npx.display(df)\n"
    with pytest.raises(pxl.PxlError, match=re.escape(message)):
        pxl.run(src, tables={"t": pl.DataFrame({"x": [1], "s": ["a"]})}, now=NOW)


def test_equals_any_explains_and_filters() -> None:
    frame = pl.DataFrame({"m": ["GET", "POST", "PUT", None]})
    src = "import px\ndf = px.DataFrame('t')\ndf = df[px.equals_any(df.m, ['POST', 'PUT'])]\n" \
          "px.display(df)\n"
    assert pxl.run(src, tables={"t": frame}, now=NOW)["output"]["m"].to_list() == ["POST", "PUT"]
    assert "px.equals_any(m, ('POST', 'PUT'))" in pxl.explain(src, tables={"t": frame}, now=NOW)


# --- doc examples --------------------------------------------------------------------------------

PRELUDES = [  # (table, lines before the example) tried in turn until the example compiles
    ("http_events", ""),
    ("http_events", "df.service = df.ctx['service']\n"),
    ("http_events", "df = df.groupby('req_path').agg(latency_quantiles=('latency', px.quantiles))\n"),
    ("mysql_events", ""), ("pgsql_events", ""), ("dns_events", ""), ("conn_stats", ""),
    ("redis_events", ""), ("process_stats", ""), ("stack_traces", ""),
]
EXAMPLES = [(fn.name, example) for fn in [*REGISTRY.scalars.values(), *REGISTRY.aggregates.values(),
                                          *REGISTRY.compile_time.values()]
            for example in fn.examples]


@pytest.mark.parametrize("name, example", EXAMPLES, ids=[f"{n}:{e[:40]}" for n, e in EXAMPLES])
def test_doc_example_runs(name: str, example: str, demo_catalog: MemoryCatalog) -> None:
    errors = []
    for table, prelude in PRELUDES:
        src = (f"import px\ndf = px.DataFrame('{table}', start_time='-1h')\n{prelude}{example}\n"
               "px.display(df)\n")
        try:
            pxl.compile(src, catalog=demo_catalog, now=DEMO_NOW)
        except pxl.PxlError as exc:
            errors.append(str(exc).splitlines()[0])
            continue
        pxl.run(src, catalog=demo_catalog, now=DEMO_NOW)
        return
    pytest.fail(f"px.{name} example {example!r} compiles on no demo table: {errors}")


def test_every_result_type_is_what_the_registry_says() -> None:
    """A spot check that signatures and translations agree on the Polars type of results."""
    for s in SPECS:
        fn = REGISTRY.scalar(s.fn)
        plan = pxl.compile(_source(_column_call(s)), catalog=_catalog(s.frame(), s.metadata),
                           now=NOW)
        dtype = plan.sinks[0].schema["out"].dtype
        assert any(sg.returns in (dtype.value, "T") for sg in fn.signatures), s.id
        assert dtype is not DataType.QUANTILES
