"""String functions (Pixie's string_ops and regex_ops): length, find, substring, case, trim,
strip_prefix, regex_match, replace, split, atoi and itoa.

Names, argument order and return types are Pixie's: ``px.strip_prefix(prefix, s)``,
``px.regex_match(pattern, s)`` and ``px.replace(pattern, s, replacement)`` take the pattern
first. Positions and lengths count characters (Pixie counts bytes; the two agree on ASCII).
A null argument gives a null result. (``px.contains`` lives in scalars.py.)
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from engine.functions.helpers import first_arg_semantic, null_if_any_null, polars_fold
from engine.registry import REGISTRY, ArgumentError, CallArgs, ScalarFunction, sig

#: ASCII whitespace, as Pixie's trim and atoi (absl) understand it
_ASCII_SPACE = " \t\n\r\x0b\x0c"
_INT = re.compile(r"[+-]?[0-9]+")


def _regex_arg(*positions: int):
    """normalize: the pattern arguments must be regexes Polars (Rust regex, RE2-like) accepts."""

    def normalize(consts: list[Any]) -> list[Any]:
        for i in positions:
            pattern = consts[i]
            if isinstance(pattern, str):
                try:
                    pl.select(pl.lit("", dtype=pl.String).str.contains(pattern))
                except pl.exceptions.PolarsError as exc:
                    detail = str(exc).strip().splitlines()
                    reason = next((line.strip() for line in detail if line.strip().startswith(
                        "error:")), detail[-1].strip() if detail else "")
                    raise ArgumentError(i, f"{pattern!r} is not a valid regular expression"
                                           f"{': ' + reason if reason else ''}") from None
        return consts

    return normalize


def _add(name: str, signatures: tuple[str, ...], doc: str, polars, example: str, **kw) -> None:
    REGISTRY.add(ScalarFunction(name, sig(*signatures), doc, category="strings", polars=polars,
                                examples=(example,), **kw))


# --- length, find, substring -------------------------------------------------------------------

_add("length", ("STRING -> INT64",),
     "The number of characters in the string (Pixie counts bytes).",
     lambda a: a[0].str.len_chars().cast(pl.Int64),
     "df.path_length = px.length(df.req_path)", fold=len)


def _find(a: CallArgs) -> pl.Expr:
    s, sub = a[0], a[1]
    before = s.str.split(sub).list.first().str.len_chars().cast(pl.Int64)
    found = pl.when(sub.str.len_bytes() == 0).then(pl.lit(0, dtype=pl.Int64)) \
        .when(s.str.contains(sub, literal=True)).then(before) \
        .otherwise(pl.lit(-1, dtype=pl.Int64))
    return null_if_any_null(found, s, sub)


_add("find", ("STRING, STRING -> INT64",),
     "The index of the first occurrence of the substring in the string, or -1 if there is none.",
     _find, "df.api_at = px.find(df.req_path, '/api')", fold=lambda s, sub: s.find(sub))


def _substring(a: CallArgs) -> pl.Expr:
    s, pos, length = a[0], a[1], a[2]
    bad = (pos < 0) | (length < 0) | (pos > s.str.len_chars())
    out = pl.when(bad).then(pl.lit("", dtype=pl.String)).otherwise(s.str.slice(pos, length))
    return null_if_any_null(out, s, pos, length)


def _fold_substring(s: str, pos: int, length: int) -> str:
    if pos < 0 or length < 0 or pos > len(s):
        return ""
    return s[pos:pos + length]


_add("substring", ("STRING, INT64, INT64 -> STRING",),
     "The `length` characters of the string from index `pos` (fewer at its end); '' when `pos` "
     "is negative or past the end, or `length` is negative.",
     _substring, "df.prefix = px.substring(df.req_path, 0, 4)", fold=_fold_substring)

# --- case and whitespace -----------------------------------------------------------------------

_add("tolower", ("STRING -> STRING",), "The string in lower case (Unicode-aware; Pixie: ASCII).",
     lambda a: a[0].str.to_lowercase(), "df.method = px.tolower(df.req_method)",
     fold=str.lower, semantic=first_arg_semantic)
_add("toupper", ("STRING -> STRING",), "The string in upper case (Unicode-aware; Pixie: ASCII).",
     lambda a: a[0].str.to_uppercase(), "df.method = px.toupper(df.req_method)",
     fold=str.upper, semantic=first_arg_semantic)
_add("trim", ("STRING -> STRING",),
     "The string without leading and trailing ASCII whitespace.",
     lambda a: a[0].str.strip_chars(_ASCII_SPACE), "df.body = px.trim(df.resp_body)",
     fold=lambda s: s.strip(_ASCII_SPACE), semantic=first_arg_semantic)


def _fold_strip_prefix(prefix: str, s: str) -> str:
    return s[len(prefix):] if s.startswith(prefix) else s


_add("strip_prefix", ("STRING, STRING -> STRING",),
     "The string (second argument) without the prefix (first argument) if it starts with it. "
     "Pixie's order: px.strip_prefix(prefix, s).",
     lambda a: a[1].str.strip_prefix(a[0]), "df.path = px.strip_prefix('/api', df.req_path)",
     fold=_fold_strip_prefix)

# --- regular expressions -----------------------------------------------------------------------


def _full_match(pattern: str) -> str:
    return rf"\A(?s:{pattern})\z"


def _regex_match(a: CallArgs) -> pl.Expr:
    return a[1].str.contains(_full_match(a.consts[0]))


_add("regex_match", ("STRING, STRING -> BOOLEAN",),
     "Whether the regular expression (first argument, RE2 syntax, a constant) matches the whole "
     "string (second argument); '.' also matches newlines. Pixie's order: pattern first.",
     _regex_match, "df = df[px.regex_match('/api/v[0-9]+/.*', df.req_path)]",
     literal_args=(0,), normalize=_regex_arg(0), fold=polars_fold(_regex_match))


def _rewrite(replacement: str) -> str:
    """RE2 rewrite text (\\1 … \\9, \\0, \\\\) → Polars' ($1 …, $$ for a dollar)."""
    out, i = [], 0
    while i < len(replacement):
        c = replacement[i]
        if c == "\\" and i + 1 < len(replacement):
            nxt = replacement[i + 1]
            if nxt.isdigit():
                out.append("${" + nxt + "}")
                i += 2
                continue
            if nxt == "\\":
                out.append("\\")
                i += 2
                continue
        out.append("$$" if c == "$" else c)
        i += 1
    return "".join(out)


def _replace(a: CallArgs) -> pl.Expr:
    return a[1].str.replace_all(a.consts[0], _rewrite(a.consts[2]))


_add("replace", ("STRING, STRING, STRING -> STRING",),
     "Every match of the regular expression (first argument, a constant) in the string (second) "
     "replaced by the third argument, where \\1 … \\9 name capture groups. Pixie's order: "
     "px.replace(pattern, s, replacement).",
     _replace, r"df.path = px.replace('[0-9]+', df.req_path, '<id>')",
     literal_args=(0, 2), normalize=_regex_arg(0), fold=polars_fold(_replace))

# --- split, atoi, itoa -------------------------------------------------------------------------


def _split(a: CallArgs) -> pl.Expr:
    s, sep = a[0], a[1]
    parts = pl.struct(s.str.split(sep).alias("a")).struct.json_encode()
    return null_if_any_null(parts.str.strip_prefix('{"a":').str.strip_suffix("}"), s, sep)


_add("split", ("STRING, STRING -> STRING",),
     "The parts of the string between separators, as a JSON array of strings (as Pixie): take "
     "one with px.pluck_array. An empty separator splits into characters.",
     _split, "df.parts = px.split(df.req_path, '/')", fold=polars_fold(_split))


def _atoi(a: CallArgs) -> pl.Expr:
    parsed = a[0].str.strip_chars(_ASCII_SPACE).str.to_integer(base=10, strict=False)
    default = a[1] if len(a.exprs) > 1 else pl.lit(0, dtype=pl.Int64)
    return pl.when(a[0].is_null()).then(None).otherwise(parsed.fill_null(default))


def _fold_atoi(s: str, default: int = 0) -> int:
    text = s.strip(_ASCII_SPACE)
    if _INT.fullmatch(text) and -(2**63) <= int(text) < 2**63:
        return int(text)
    return default


_add("atoi", ("STRING -> INT64", "STRING, INT64 -> INT64"),
     "The string read as a decimal integer (surrounding whitespace allowed), or the default "
     "(second argument, 0 if left out) if it is not one.",
     _atoi, "df.length = px.atoi(px.pluck(df.req_headers, 'Content-Length'), -1)", fold=_fold_atoi)
_add("itoa", ("INT64 -> STRING",), "The integer written in decimal.",
     lambda a: a[0].cast(pl.String), "df.status = px.itoa(df.resp_status)", fold=str)
