"""SQL normalisation (Pixie's sql_ops): px.normalize_mysql and px.normalize_pgsql.

Both return Pixie's JSON: ``{"query": "SELECT * FROM t WHERE id=?", "params": ["42"]}`` (take
the parts with px.pluck), or ``{"error": "..."}``. Constants (numbers, quoted strings, hex and bit
strings, TRUE/FALSE) become placeholders, ``?`` for MySQL and ``$1, $2 …`` for PostgreSQL, and
their text goes to ``params`` in order. For an execute command (MySQL 23 / PostgreSQL
'Execute', whose text reads ``query=[…] params=[a, b]``) the existing placeholders take the
given parameter values.

Pixie parses with full ANTLR grammars; pxl scans tokens, which differs only at the edges: a
number inside a type's parentheses (``varchar(20)``) and MySQL's LIMIT/OFFSET numbers stay as
they are (as in Pixie), NULL is never a parameter, and text the grammar would reject is
normalised anyway instead of giving an error (only an unterminated quote or comment is one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import polars as pl

from engine.functions.helpers import per_row
from engine.registry import REGISTRY, ScalarFunction, sig

MYSQL_QUERY, MYSQL_EXECUTE = 0x03, 0x17
PG_QUERY, PG_EXECUTE = "Query", "Execute"

_TYPES = {"VARCHAR", "CHAR", "CHARACTER", "VARYING", "NCHAR", "NVARCHAR", "VARBINARY", "BINARY",
          "DECIMAL", "DEC", "NUMERIC", "FLOAT", "DOUBLE", "REAL", "BIT", "INT", "INTEGER",
          "TINYINT", "SMALLINT", "MEDIUMINT", "BIGINT", "TIME", "TIMESTAMP", "DATETIME", "YEAR",
          "TEXT", "BLOB", "TIMETZ", "TIMESTAMPTZ", "INTERVAL", "BPCHAR", "VARBIT"}
#: after these, a '-' is a sign (MySQL reads '-5' there as one constant)
_SIGN_AFTER = {"(", ",", "=", "<", ">", "<=", ">=", "<>", "!=", "+", "-", "*", "/", "%"}
_SIGN_WORDS = {"SELECT", "WHERE", "AND", "OR", "NOT", "IN", "VALUES", "THEN", "ELSE", "WHEN",
               "BETWEEN", "SET", "IS", "LIKE", "CASE", "RETURN"}

_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[^\W\d][\w$]*")
_PG_PARAM = re.compile(r"\$([0-9]+)")
_DOLLAR_QUOTE = re.compile(r"\$([^\W\d]\w*)?\$")
_VARIABLE = re.compile(r"@@?[\w.$]*")
_HEX = re.compile(r"0[xX][0-9A-Fa-f]+|0[bB][01]+")
_DIGITS = "0123456789"


class SQLError(ValueError):
    pass


def _quoted(text: str, start: int, quote: str, backslash: bool) -> int:
    """The index just past the string starting at ``start`` (its opening quote)."""
    i = start + 1
    while i < len(text):
        c = text[i]
        if backslash and c == "\\":
            i += 2
            continue
        if c == quote:
            if i + 1 < len(text) and text[i + 1] == quote:  # '' inside a string
                i += 2
                continue
            return i + 1
        i += 1
    raise SQLError("unterminated quoted string")


def _tokens(sql: str, mysql: bool):
    """(kind, start, end) for each token: const, placeholder, word, punct (spaces and comments
    are skipped)."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i) or (mysql and c == "#"):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise SQLError("unterminated comment")
            i = end + 2
        elif c == "'" or (mysql and c == '"'):
            end = _quoted(sql, i, c, backslash=mysql)
            yield "const", i, end
            i = end
        elif c in "xXbBeEnN" and i + 1 < n and sql[i + 1] == "'":  # X'ff', B'01', E'\n', N'..'
            end = _quoted(sql, i + 1, "'", backslash=mysql or c in "eE")
            yield "const", i, end
            i = end
        elif c == '"' or c == "`":
            end = _quoted(sql, i, c, backslash=False)
            yield "word", i, end
            i = end
        elif c == "$" and not mysql:
            m = _PG_PARAM.match(sql, i)
            if m:
                yield "placeholder", i, m.end()
                i = m.end()
                continue
            m = _DOLLAR_QUOTE.match(sql, i)
            if m:  # $tag$ … $tag$
                end = sql.find(m.group(0), m.end())
                if end < 0:
                    raise SQLError("unterminated dollar-quoted string")
                yield "const", i, end + len(m.group(0))
                i = end + len(m.group(0))
                continue
            yield "punct", i, i + 1
            i += 1
        elif c == "?" and mysql:
            yield "placeholder", i, i + 1
            i += 1
        elif c == "@" and mysql:
            m = _VARIABLE.match(sql, i)
            assert m is not None
            yield "word", i, m.end()
            i = m.end()
        elif c in _DIGITS or (c == "." and i + 1 < n and sql[i + 1] in _DIGITS):
            m = _HEX.match(sql, i) or _NUMBER.match(sql, i)
            assert m is not None
            yield "const", i, m.end()
            i = m.end()
        elif _WORD.match(sql, i):
            m = _WORD.match(sql, i)
            assert m is not None
            yield "word", i, m.end()
            i = m.end()
        else:
            two = sql[i:i + 2]
            width = 2 if two in ("<=", ">=", "<>", "!=", "::", "||") else 1
            yield "punct", i, i + width
            i += width


def normalize(sql: str, params: list[str], mysql: bool) -> dict[str, object]:
    """Constants → placeholders; raises SQLError."""
    out: list[str] = []
    values: list[str] = []
    pos = 0
    prev: list[tuple[str, int, str]] = []  # the last two tokens: (kind, start, text)
    parens: list[bool] = []  # for each open parenthesis: does it hold a type's size?
    in_limit = False  # MySQL: LIMIT/OFFSET take plain numbers, not constants
    generic = 0
    for kind, start, end in _tokens(sql, mysql):
        text = sql[start:end]
        if kind == "word" and text.upper() in ("TRUE", "FALSE"):
            kind = "const"
        last = prev[-1] if prev else None
        if kind == "punct" and text == "(":
            parens.append(last is not None and last[0] == "word" and last[2].upper() in _TYPES)
        elif kind == "punct" and text == ")" and parens:
            parens.pop()
        replace = None
        if kind == "const":
            sized = parens and parens[-1] and text[0].isdigit()
            if not sized and not (in_limit and text[0].isdigit()):
                replace = text
                if mysql and last is not None and last[2] == "-" and last[1] + 1 == start \
                        and _is_sign(prev[-2] if len(prev) > 1 else None):
                    start, replace = last[1], "-" + text
        elif kind == "placeholder":
            if mysql:
                index = generic
                generic += 1
            else:
                index = int(text[1:]) - 1
            if index < 0 or index >= len(params):
                raise SQLError("Query has more parameter placeholders in it than parameter values"
                               " were passed in")
            replace = params[index]
        if replace is not None:
            out.append(sql[pos:start])
            values.append(replace)
            out.append("?" if mysql else f"${len(values)}")
            pos = end
        if mysql and kind == "word" and text.upper() in ("LIMIT", "OFFSET"):
            in_limit = True
        elif not (in_limit and (kind == "const" or text == ",")):
            in_limit = False
        prev = [*prev[-1:], (kind, start, text)]
    out.append(sql[pos:])
    return {"query": "".join(out), "params": values}


def _is_sign(before: tuple[str, int, str] | None) -> bool:
    """Whether a '-' after this token is a sign (as after '=', '(' or WHERE), not a minus."""
    if before is None:
        return True
    kind, _, text = before
    if kind == "punct":
        return text in _SIGN_AFTER
    return kind == "word" and text.upper() in _SIGN_WORDS


def _execute_parts(body: str) -> tuple[str, list[str]]:
    """Pixie's reading of an execute command: ``query=[…] params=[a, b]``."""
    text = body.removeprefix("query=[")
    close = text.find("]")
    query = text[:close] if close >= 0 else text
    rest = text[len(query):].removeprefix("] params=[")
    end = rest.rfind("]")
    return query, (rest[:end] if end >= 0 else rest).split(", ")


def _result(sql: str, params: list[str], mysql: bool) -> str:
    try:
        result: dict[str, object] = normalize(sql, params, mysql)
    except SQLError as exc:
        result = {"error": str(exc)}
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))


def _error(message: str) -> str:
    return json.dumps({"error": message}, ensure_ascii=False, separators=(",", ":"))


def normalize_mysql(sql: str, cmd: int = MYSQL_QUERY) -> str:
    if cmd == MYSQL_QUERY:
        return _result(sql, [], mysql=True)
    if cmd == MYSQL_EXECUTE:
        return _result(*_execute_parts(sql), mysql=True)
    return _error(f"cmd_code must be one of '{MYSQL_QUERY}' or '{MYSQL_EXECUTE}'")


def normalize_pgsql(sql: str, cmd: str = PG_QUERY) -> str:
    if cmd == PG_QUERY:
        return _result(sql, [], mysql=False)
    if cmd == PG_EXECUTE:
        return _result(*_execute_parts(sql), mysql=False)
    return _error(f"cmd_code must be one of '{PG_QUERY}' or '{PG_EXECUTE}'")


def _build(fn: Callable[..., str]):
    return lambda a: per_row(a.exprs, fn, pl.String())


REGISTRY.add(ScalarFunction(
    "normalize_mysql", sig("STRING, INT64 -> STRING", "STRING -> STRING"),
    "A MySQL query with its constants replaced by '?', as Pixie's JSON {\"query\": …, "
    "\"params\": […]} (or {\"error\": …}); the second argument is the command code (3 Query, "
    "23 StmtExecute; 3 if left out).",
    category="sql", polars=_build(normalize_mysql), fold=normalize_mysql,
    examples=("df.sql = px.pluck(px.normalize_mysql(df.req_body, df.req_cmd), 'query')",)))
REGISTRY.add(ScalarFunction(
    "normalize_pgsql", sig("STRING, STRING -> STRING", "STRING -> STRING"),
    "A PostgreSQL query with its constants replaced by $1, $2 …, as Pixie's JSON {\"query\": …, "
    "\"params\": […]} (or {\"error\": …}); the second argument is the command ('Query' or "
    "'Execute'; 'Query' if left out).",
    category="sql", polars=_build(normalize_pgsql), fold=normalize_pgsql,
    examples=("df.sql = px.pluck(px.normalize_pgsql(df.req, df.req_cmd), 'query')",)))
