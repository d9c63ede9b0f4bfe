"""Bad input, table-driven: every mistake gives the right error class, message, line, column and
(where there is a next step) a hint — through the library and through the real ``pxl`` command,
which must print ``file:line:col``, the source line and a caret, never a Python traceback.

Most cases run through the library (fast); a representative subset runs the CLI, all of its
subprocesses started at once by one module-scoped fixture.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import pxl
from engine.errors import CompileError, PxlError, PxlSyntaxError
from pxl.parser import decode_source, parse
from tests.conftest import DEMO_NOW, CliResult, run_cli

H = "import px\ndf = px.DataFrame('http_events')\n"  # two lines of prelude for compile cases
HINT = object()  # "a hint must be present" (any text)


def case(id_: str, source: str, error: type[PxlError], message: str, line: int, col: int,
         hint: str | object | None = None):
    """One bad script: the error it gives, where, and a substring of the hint (or HINT)."""
    return pytest.param(source, error, message, line, col, hint, id=id_)


def check(err: PxlError, source: str, error: type[PxlError], message: str, line: int, col: int,
          hint: str | object | None) -> None:
    assert type(err) is error, f"{type(err).__name__}: {err}"
    assert message in err.message, err.message
    assert err.span is not None
    assert (err.span.line, err.span.col) == (line, col), f"{err.span}: {err.message}"
    if hint is HINT:
        assert err.hint, f"no hint for: {err.message}"
    elif hint is not None:
        assert err.hint and hint in err.hint, err.hint
    rendered = err.render(source)
    head, *rest = rendered.splitlines()
    assert head.startswith(f"t.pxl:{line}:{col}: ")
    assert "Traceback" not in rendered
    carets = [r for r in rest if r.strip() and set(r.strip()) == {"^"}]
    assert len(carets) == 1, rendered
    if len(source.splitlines()[line - 1]) <= 200:  # longer lines are shown cut around the column
        assert len(carets[0]) - len(carets[0].lstrip()) == 2 + col - 1  # under the column


# ----------------------------------------------------------------------------------------------
# Python constructs PxL does not have, and other syntax errors

SYNTAX_CASES = [
    # loops, conditionals, classes, functions-as-values
    case("for", "import px\nfor x in y:\n    pass\n", PxlSyntaxError, "loops are not part", 2, 1,
         "column expressions"),
    case("while", "while True:\n    pass\n", PxlSyntaxError, "loops are not part", 1, 1, HINT),
    case("if-stmt", "x = 1\nif x:\n    pass\n", PxlSyntaxError, "'if' is not part", 2, 1,
         "px.select"),
    case("if-else-expr", "x = 1 if y else 2\n", PxlSyntaxError, "'if' is not part", 1, 7,
         "px.select"),
    case("else-alone", "x = 1 else 2\n", PxlSyntaxError, "'else' is not part", 1, 7, "px.select"),
    case("class", "class A:\n    pass\n", PxlSyntaxError, "classes are not part", 1, 1, "def"),
    case("lambda", "f = lambda x: x\n", PxlSyntaxError, "'lambda' is not part", 1, 5, "def"),
    case("list-comprehension", "x = [i for i in y]\n", PxlSyntaxError, "comprehensions", 1, 8,
         HINT),
    case("dict-comprehension", "x = {k: v for k, v in y}\n", PxlSyntaxError, "comprehensions", 1,
         11, HINT),
    case("set-comprehension", "x = {i for i in y}\n", PxlSyntaxError, "comprehensions", 1, 8, HINT),
    case("generator", "x = f(i for i in y)\n", PxlSyntaxError, "comprehensions", 1, 9, HINT),
    case("with", "with open('x') as f:\n    pass\n", PxlSyntaxError, "'with' is not part", 1, 1,
         "px.DataFrame"),
    case("try", "try:\n    x = 1\nexcept:\n    pass\n", PxlSyntaxError, "'try' is not part", 1,
         1, HINT),
    case("raise", "x = 1\nraise ValueError('x')\n", PxlSyntaxError, "'raise' is not part", 2, 1,
         HINT),
    case("del", "x = 1\ndel x\n", PxlSyntaxError, "'del' is not part", 2, 1, "drop"),
    case("assert", "assert x\n", PxlSyntaxError, "'assert' is not part", 1, 1, HINT),
    case("global", "def f():\n    global x\n", PxlSyntaxError, "'global' is not part", 2, 5, HINT),
    case("yield", "def f():\n    yield 1\n", PxlSyntaxError, "'yield' is not part", 2, 5,
         "return"),
    case("async", "async def f():\n    pass\n", PxlSyntaxError, "'async' is not part", 1, 1, HINT),
    case("decorator", "@dec\ndef f():\n    pass\n", PxlSyntaxError, "not part of PxL", 1, 1, HINT),
    # operators
    case("pow", "x = 2 ** 3\n", PxlSyntaxError, "'**'", 1, 7, "px.pow"),
    case("kwargs-splat", "f(**k)\n", PxlSyntaxError, "'**'", 1, 3, HINT),
    case("floordiv", "x = 7 // 2\n", PxlSyntaxError, "'//'", 1, 7, "px.floor"),
    case("augassign", "x = 1\nx += 1\n", PxlSyntaxError, "augmented assignment", 2, 3,
         "x = x + 1"),
    case("augassign-floordiv", "x = 1\nx //= 2\n", PxlSyntaxError, "augmented assignment", 2, 3,
         HINT),
    case("walrus", "y = (x := 5)\n", PxlSyntaxError, "':='", 1, 8, HINT),
    case("bit-and", "x = a & b\n", PxlSyntaxError, "bitwise", 1, 7, "'and'"),
    case("bit-or", "df = df[a | b]\n", PxlSyntaxError, "bitwise", 1, 11, "'or'"),
    case("bit-xor", "x = a ^ b\n", PxlSyntaxError, "bitwise", 1, 7, HINT),
    case("bit-not", "x = ~a\n", PxlSyntaxError, "bitwise", 1, 5, "'not'"),
    case("shift", "x = 1 << 2\n", PxlSyntaxError, "bitwise", 1, 7, HINT),
    case("matmul", "x = a @ b\n", PxlSyntaxError, "bitwise", 1, 7, HINT),
    case("chained-lt", "x = 1 < y < 3\n", PxlSyntaxError, "chained comparisons", 1, 11, "and"),
    case("chained-eq", "x = a == b == c\n", PxlSyntaxError, "chained comparisons", 1, 12, HINT),
    case("in", "x = 1 in [1, 2]\n", PxlSyntaxError, "'in' operator", 1, 7, "=="),
    case("not-in", "x = a not in b\n", PxlSyntaxError, "'not in' operator", 1, 7, "!="),
    case("is", "x = a is None\n", PxlSyntaxError, "'is' operator", 1, 7, "=="),
    case("is-not", "x = a is not None\n", PxlSyntaxError, "'is' operator", 1, 7, "!="),
    case("star-arg", "x = f(*a)\n", PxlSyntaxError, "unexpected '*'", 1, 7, HINT),
    case("slice", "x = y[1:2]\n", PxlSyntaxError, "unexpected ':'", 1, 8, "']'"),
    case("not-equal-old", "x = 1 <> 2\n", PxlSyntaxError, "unexpected '>'", 1, 8, HINT),
    # imports and names
    case("import-os", "import os\n", PxlSyntaxError, "cannot import 'os'", 1, 1, "import px"),
    case("import-submodule", "import px.foo\n", PxlSyntaxError, "cannot import 'px.foo'", 1, 1,
         HINT),
    case("import-two", "import px, os\n", PxlSyntaxError, "unexpected ','", 1, 10, HINT),
    case("from-os", "import px\nfrom os import path\n", PxlSyntaxError,
         "cannot import from 'os'", 2, 1, "from px import"),
    case("dunder-name", "x = __import__('os')\n", PxlSyntaxError, "'__import__'", 1, 5, HINT),
    case("dunder-assign", "__x = 1\n", PxlSyntaxError, "reserved", 1, 1, HINT),
    case("dunder-attr", H + "x = df.__class__\n", PxlSyntaxError, "'__class__'", 3, 8, HINT),
    case("dunder-def", "def __f():\n    pass\n", PxlSyntaxError, "'__f'", 1, 5, HINT),
    case("dunder-param", "def f(a, __b):\n    pass\n", PxlSyntaxError, "'__b'", 1, 10, HINT),
    case("dunder-alias", "import px as __p\n", PxlSyntaxError, "'__p'", 1, 14, HINT),
    case("dunder-from-alias", "from px import display as __d\n", PxlSyntaxError, "'__d'", 1, 27,
         HINT),
    # literals
    case("f-string", "x = 1\ny = f'{x}'\n", PxlSyntaxError, "f-strings", 2, 5, "+"),
    case("rf-string", "y = rf'{x}'\n", PxlSyntaxError, "f-strings", 1, 5, HINT),
    case("f-string-concat", "y = 'a' f'b'\n", PxlSyntaxError, "f-strings", 1, 9, HINT),
    case("bytes", "x = b'abc'\n", PxlSyntaxError, "bytes literals", 1, 5, "plain string"),
    case("raw-bytes", "x = rb'abc'\n", PxlSyntaxError, "bytes literals", 1, 5, HINT),
    case("octal-looking", "x = 0777\n", PxlSyntaxError, "invalid number '0777'", 1, 5, "decimal"),
    case("binary", "x = 0b101\n", PxlSyntaxError, "invalid number '0b101'", 1, 5, HINT),
    case("complex", "x = 1j\n", PxlSyntaxError, "invalid number '1j'", 1, 5, HINT),
    case("duration-unquoted", H + "t = px.now() - 5m\n", PxlSyntaxError, "invalid number '5m'",
         3, 16, "'5m'"),
    case("ellipsis", "x = ...\n", PxlSyntaxError, "unexpected '.'", 1, 5, "expression"),
    case("dollar", "x = 1\ny = $x\n", PxlSyntaxError, "unexpected character '$'", 2, 5, HINT),
    case("backtick-after-unicode", "x = 'é' + `a`\n", PxlSyntaxError, "unexpected character '`'",
         1, 11, HINT),
    # statements
    case("assign-to-literal", "1 = x\n", PxlSyntaxError, "cannot assign", 1, 1, "df.column"),
    case("assign-to-call", "x = 1\nf() = x\n", PxlSyntaxError, "cannot assign", 2, 1, HINT),
    case("print-statement", "print 'x'\n", PxlSyntaxError, "unexpected", 1, 7, "operator"),
    case("missing-operand", "x = 1 +\ny = 2\n", PxlSyntaxError, "unexpected end of line", 1, 8,
         "expression"),
    case("missing-colon", "def f()\n    return 1\n", PxlSyntaxError, "unexpected end of line",
         1, 8, "':'"),
    case("keyword-twice", "x = f(a=1, a=2)\n", PxlSyntaxError, "'a' given twice", 1, 12),
    case("positional-after-keyword", "x = f(a=1, 2)\n", PxlSyntaxError, "positional argument "
         "follows", 1, 12, "first"),
    case("duplicate-param", "def f(a, a):\n    pass\n", PxlSyntaxError, "'a' appears twice", 1,
         10, HINT),
    case("default-before-required", "def f(a=1, b):\n    pass\n", PxlSyntaxError,
         "without a default follows", 1, 12, "last"),
    # indentation
    case("indent-at-start", "  import px\n", PxlSyntaxError, "unexpected indentation", 1, 3,
         "column 1"),
    case("indent-at-start-after-comment", "# note\n\n    x = 1\n", PxlSyntaxError,
         "unexpected indentation", 3, 5, HINT),
    case("indent-after-statement", "import px\n  x = 1\n", PxlSyntaxError,
         "unexpected indentation", 1, 10, "def"),
    case("indent-in-body", "def f():\n    x = 1\n        y = 2\n", PxlSyntaxError,
         "unexpected indentation", 2, 10, HINT),
    case("inconsistent-dedent", "def f():\n        x = 1\n    y = 2\n", PxlSyntaxError,
         "matches no outer block", 3, 1, "same spaces"),
    case("dedent-past-top", "import px\ndef f():\n    return 1\n  x = 2\n", PxlSyntaxError,
         "matches no outer block", 4, 1, HINT),
    case("missing-indented-block", "def f():\nreturn 1\n", PxlSyntaxError,
         "expected an indented block", 2, 1, "indent"),
    # unterminated strings and brackets
    case("unterminated-single", "x = 1\ny = 'abc\nz = 2\n", PxlSyntaxError,
         "unterminated string", 2, 5, "same quote"),
    case("unterminated-double-at-eof", 'x = "abc', PxlSyntaxError, "unterminated string", 1, 5,
         HINT),
    case("unterminated-after-string", "x = 'a' 'b\n", PxlSyntaxError, "unterminated string", 1, 9,
         HINT),
    case("unterminated-triple", 'x = 1\ny = """abc\ndef\n', PxlSyntaxError,
         "unterminated string", 2, 5, '"""'),
    case("unterminated-triple-single", "y = '''abc\n", PxlSyntaxError, "unterminated string", 1, 5,
         "'''"),
    case("unclosed-paren-eof", "x = (1, 2\n", PxlSyntaxError, "'(' is never closed", 1, 5, "')'"),
    case("unclosed-call-eof", "import px\npx.display(df\n", PxlSyntaxError,
         "'(' is never closed", 2, 11, "')'"),
    case("unclosed-list-then-more", "x = [1, 2\ny = 3\nz = [4]\n", PxlSyntaxError,
         "'[' is never closed", 1, 5, "']'"),
    case("unclosed-dict", "x = {'a': 1,\n", PxlSyntaxError, "'{' is never closed", 1, 5, "'}'"),
    case("unclosed-inner", "x = (1, [2, 3)\n", PxlSyntaxError, "unexpected ')'", 1, 14, "']'"),
    case("extra-closer", "x = 1)\n", PxlSyntaxError, "unexpected ')'", 1, 6, HINT),
    case("missing-comma-multiline", "x = f(a,\n  b c)\n", PxlSyntaxError, "unexpected 'c'", 2, 5,
         HINT),
    # bytes and size
    case("nul-byte", "x = 1\ny = 'a\0b'\n", PxlSyntaxError, "NUL byte", 2, 7, "binary"),
    case("nesting-1000-parens", "x = 1\ny = " + "(" * 1000 + "1" + ")" * 1000 + "\n",
         PxlSyntaxError, "nested more than 100 deep", 2, 105, "several assignments"),
    case("nesting-brackets-mixed", "x = " + "[{(" * 40 + "\n", PxlSyntaxError,
         "nested more than 100 deep", 1, 105, HINT),
    case("unary-minus-5000", "x = 1\ny = " + "-" * 5000 + "1\n", PxlSyntaxError,
         "nested too deeply", 2, 1, "several assignments"),
    case("not-5000", "x = " + "not " * 5000 + "True\n", PxlSyntaxError, "nested too deeply", 1, 1,
         HINT),
    case("plus-chain-20000", "a = 1\n\nx = " + " + ".join(["a"] * 20_000) + "\n", PxlSyntaxError,
         "nested too deeply", 3, 1, "several assignments"),
    case("call-chain-5000", "x = f" + "(1)" * 5000 + "\n", PxlSyntaxError, "nested too deeply",
         1, 1, HINT),
    case("huge-script", "x = 1\n" * 200_000, PxlSyntaxError, "too large", 1, 1, "smaller"),
]


@pytest.mark.parametrize("source, error, message, line, col, hint", SYNTAX_CASES)
def test_syntax_errors(source, error, message, line, col, hint, demo_catalog):
    with pytest.raises(PxlError) as info:
        pxl.compile(source, demo_catalog, now=DEMO_NOW, filename="t.pxl")
    check(info.value, source, error, message, line, col, hint)


# ----------------------------------------------------------------------------------------------
# Scripts that parse but mean nothing: names, tables, columns, types, arguments

A = H + "df = df.groupby('req_path').agg("  # line 3 of an aggregate case; ')' added by the case

COMPILE_CASES = [
    # tables and columns
    case("unknown-table-close", "import px\ndf = px.DataFrame('http_event')\n", CompileError,
         "no table 'http_event'", 2, 19, "did you mean 'http_events'?"),
    case("unknown-table-lists-tables", "import px\ndf = px.DataFrame(table='zzz_nothing')\n",
         CompileError, "no table 'zzz_nothing'", 2, 25, "tables: conn_stats, dns_events, "
         "http_events"),
    case("table-not-a-string", "import px\ndf = px.DataFrame(5)\n", CompileError,
         "table must be a string", 2, 19),
    case("table-missing", "import px\ndf = px.DataFrame()\n", CompileError,
         "needs the argument 'table'", 2, 6),
    case("select-unknown-column", "import px\ndf = px.DataFrame('http_events', "
         "select=['latency', 'req_pth'])\n", CompileError, "has no column 'req_pth'", 2, 41,
         "did you mean 'req_path'?"),
    case("unknown-column-attr", H + "df = df[df.resp_statu >= 500]\n", CompileError,
         "no column 'resp_statu'", 3, 9, "did you mean 'resp_status'?"),
    case("unknown-column-subscript", H + "x = df['latncy']\n", CompileError, "no column 'latncy'",
         3, 8, "did you mean 'latency'?"),
    case("unknown-column-lists-columns", H + "x = df.zzzz\n", CompileError, "no column 'zzzz'",
         3, 5, "columns: time_, upid"),
    case("unknown-column-drop", H + "df = df.drop(['latency', 'nope'])\n", CompileError,
         "no column 'nope'", 3, 14, HINT),
    # types
    case("string-column-gt-number", H + "df = df[df.req_path > 1]\n", CompileError,
         "cannot apply '>' to column 'req_path' (STRING) and 1 (INT64)", 3, 9,
         "string (in quotes)"),
    case("string-column-eq-number", H + "df = df[df.req_method == 200]\n", CompileError,
         "cannot apply '=='", 3, 9, "string (in quotes)"),
    case("number-column-eq-string", H + "df = df[df.resp_status == '500']\n", CompileError,
         "cannot apply '=='", 3, 9, "number with a number"),
    case("string-column-arith", H + "df.x = df.req_path * 2\n", CompileError, "cannot apply '*'",
         3, 8, "numbers on both sides"),
    case("filter-not-boolean", H + "df = df[df.latency]\n", CompileError,
         "needs a true/false condition", 3, 9, "df.resp_status >= 500"),
    case("constant-string-minus-int", "x = 'a' - 1\n", CompileError, "cannot apply '-'", 1, 5),
    case("division-by-zero", "x = 1\ny = x / 0\n", CompileError, "division by zero", 2, 9),
    case("time-plus-string", "import px\nt = px.now() + 'a'\n", CompileError, "cannot apply '+'",
         2, 5, "px.minutes(5)"),
    # times
    case("bad-start-time", "import px\ndf = px.DataFrame('http_events', start_time='yesterday')\n",
         CompileError, "start_time='yesterday' is not a time", 2, 45, "'-5m'"),
    case("bad-start-time-lists-forms", "import px\ndf = px.DataFrame('http_events', "
         "start_time='-5 minutes')\n", CompileError, "is not a time", 2, 45, "ISO 8601"),
    case("bad-end-time-type", "import px\ndf = px.DataFrame('http_events', end_time=[1])\n",
         CompileError, "end_time=[1] is not a time", 2, 43, "nanoseconds since the epoch"),
    case("start-after-end", "import px\ndf = px.DataFrame('http_events', start_time='-5m', "
         "end_time='-10m')\n", CompileError, "start_time is after end_time", 2, 45, "swap"),
    # DataFrame methods with arguments of the wrong type
    case("head-string", H + "df = df.head('10')\n", CompileError, "head needs a count", 3, 14),
    case("head-negative", H + "df = df.head(-1)\n", CompileError, "0 or more", 3, 14),
    case("head-unknown-keyword", H + "df = df.head(m=2)\n", CompileError, "no parameter 'm'", 3,
         16, "parameters: n"),
    case("groupby-int", H + "g = df.groupby(5)\n", CompileError,
         "groupby takes a column name or a list of names, not an int", 3, 16),
    case("groupby-unknown-column", H + "g = df.groupby(['req_path', 'servce'])\n", CompileError,
         "no column 'servce'", 3, 16, HINT),
    case("groupby-then-head", H + "g = df.groupby('req_path').head(3)\n", CompileError,
         "grouped DataFrame has no attribute 'head'", 3, 5, ".agg("),
    case("merge-not-a-frame", H + "df = df.merge(5, left_on='upid', right_on='upid')\n",
         CompileError, "merge needs a DataFrame", 3, 15),
    case("merge-bad-how", H + "df = df.merge(df, how='sideways', left_on='upid', "
         "right_on='upid')\n", CompileError, "how='sideways' is not one of inner, left", 3, 23),
    case("merge-missing-key", H + "df = df.merge(df, left_on='upid')\n", CompileError,
         "needs the argument 'right_on'", 3, 6),
    case("merge-bad-suffixes", H + "df = df.merge(df, left_on='upid', right_on='upid', "
         "suffixes='_x')\n", CompileError, "suffixes must be two strings", 3, 61),
    case("sort-values-int", H + "df = df.sort_values(1)\n", CompileError,
         "sort_values takes a column name", 3, 21),
    case("sort-values-bad-ascending", H + "df = df.sort_values('latency', ascending='no')\n",
         CompileError, "ascending must be True/False", 3, 42),
    case("append-not-a-frame", H + "df = df.append(5)\n", CompileError,
         "append takes a DataFrame", 3, 16),
    case("method-used-as-column", H + "df.head = 1\n", CompileError, "is a DataFrame method", 3, 1,
         "df['head']"),
    # agg
    case("agg-positional", H + "df = df.agg(('latency', px.count))\n", CompileError,
         "agg takes keyword arguments", 3, 13, "n=('latency', px.count)"),
    case("agg-empty", H + "df = df.agg()\n", CompileError, "at least one aggregate", 3, 6,
         "px.count"),
    case("agg-not-a-tuple", A + "n=5)\n", CompileError, "expected a tuple (column, function)", 3,
         35, HINT),
    case("agg-non-aggregate", A + "n=('latency', px.contains))\n", CompileError,
         "px.contains is not an aggregate", 3, 35, "aggregates: "),
    case("agg-name-not-function", A + "n=('latency', 'mean'))\n", CompileError,
         "not an aggregate", 3, 35, "px.mean"),
    case("agg-unknown-column", A + "n=('latncy', px.mean))\n", CompileError, "no column 'latncy'",
         3, 35, "did you mean 'latency'?"),
    case("agg-mean-of-string", A + "n=('req_method', px.mean))\n", CompileError,
         "px.mean cannot aggregate 'req_method' (STRING)", 3, 35, "px.count"),
    case("quantile-without-q", A + "p=('latency', px.quantile))\n", CompileError,
         "px.quantile takes 1 parameter(s) after the column (q), got 0", 3, 35, "0.99"),
    case("quantile-q-too-big", A + "p=('latency', px.quantile, 99))\n", CompileError,
         "q must be between 0 and 1, not 99", 3, 35),
    case("quantile-q-negative", A + "p=('latency', px.quantile, -0.5))\n", CompileError,
         "q must be between 0 and 1", 3, 35),
    case("quantile-q-string", A + "p=('latency', px.quantile, '0.9'))\n", CompileError,
         "q must be a float", 3, 35),
    case("count-with-param", A + "n=('latency', px.count, 3))\n", CompileError,
         "px.count takes 0 parameter(s)", 3, 35, HINT),
    case("aggregate-outside-agg", H + "df.x = px.mean(df.latency)\n", CompileError,
         "px.mean is an aggregate", 3, 8, "agg(out=('col', px.mean))"),
    # px and names
    case("missing-px-import", "df = px.DataFrame('http_events')\n", CompileError,
         "name 'px' is not defined", 1, 6, "add 'import px'"),
    case("unknown-px-function-close", "import px\ndf = px.DataFram('http_events')\n",
         CompileError, "px has no function 'DataFram'", 2, 6, "did you mean 'DataFrame'?"),
    case("unknown-px-function", "import px\nx = px.frobnicate(1)\n", CompileError,
         "px has no function 'frobnicate'", 2, 5, "docs/reference.md"),
    case("unknown-from-px", "from px import dispaly\n", CompileError,
         "px has no function 'dispaly'", 1, 1, "did you mean 'display'?"),
    case("px-alias-then-px", "import px as p\ndf = px.DataFrame('http_events')\n", CompileError,
         "name 'px' is not defined", 2, 6, "import px"),
    case("undefined-name-close", H + "px.display(dff)\n", CompileError, "name 'dff' is not defined",
         3, 12, "did you mean 'df'?"),
    case("undefined-name", "x = yyy_zzz + 1\n", CompileError, "name 'yyy_zzz' is not defined",
         1, 5),
    case("px-compile-time-wrong-type", "import px\nx = px.minutes('5')\n", CompileError,
         "px.minutes needs a number", 2, 16, "px.minutes(n)"),
    case("px-compile-time-arity", "import px\nx = px.minutes()\n", CompileError,
         "px.minutes takes 1 argument(s), got 0", 2, 5, "px.minutes(n)"),
    case("px-keyword-args", H + "df.x = px.upid_to_pod_name(upid=df.upid)\n", CompileError,
         "takes no keyword arguments", 3, 33),
    case("px-function-types", H + "df.x = px.select(df.latency > 1, 'a', 1)\n", CompileError,
         "px.select does not take", 3, 8),
    # user functions
    case("return-outside-function", "import px\nreturn 1\n", CompileError,
         "'return' outside a function", 2, 1),
    case("call-an-int", "x = 5\ny = x(1)\n", CompileError, "an int cannot be called", 2, 5),
    case("call-a-string", "x = 'abc'\nx()\n", CompileError, "a string cannot be called", 2, 1),
    case("call-a-column", H + "x = df.latency(1)\n", CompileError, "cannot be called", 3, 5),
    case("too-few-args", "def f(a, b):\n    return a\nx = f(1)\n", CompileError,
         "f needs the argument 'b'", 3, 5),
    case("too-many-args", "def f(a, b):\n    return a\nx = f(1, 2, 3)\n", CompileError,
         "f takes at most 2 positional argument(s), got 3", 3, 13, "parameters: a, b"),
    case("unknown-keyword-arg", "def f(a, b):\n    return a\nx = f(1, c=2)\n", CompileError,
         "f has no parameter 'c'", 3, 12, HINT),
    case("same-arg-twice", "def f(a):\n    return a\nx = f(1, a=2)\n", CompileError,
         "f got 'a' twice", 3, 12),
    case("annotation-int", "def f(n: int):\n    return n\nx = f('5')\n", CompileError,
         "argument 'n' must be int, not a string", 3, 7),
    case("annotation-bool-is-not-int", "def f(n: int):\n    return n\nx = f(True)\n",
         CompileError, "argument 'n' must be int", 3, 7),
    case("annotation-dataframe", "import px\ndef f(df: px.DataFrame):\n    return df\nx = f(1)\n",
         CompileError, "argument 'df' must be DataFrame, not an int", 4, 7),
    case("annotation-default-checked", "def f(s: str = 5):\n    return s\nx = f()\n",
         CompileError, "argument 's' must be str", 3, 5),
    case("recursion", "def f(n):\n    return f(n)\nx = f(1)\n", CompileError,
         "calls nest more than 50 deep", 2, 12, "cannot recurse"),
    case("mutual-recursion", "def f(n):\n    return g(n)\ndef g(n):\n    return f(n)\nx = f(1)\n",
         CompileError, "calls nest more than 50 deep", 4, 12, "cannot recurse"),
    case("error-inside-function-points-inside", H + "def f(d):\n    return d[d.nope > 1]\n"
         "x = f(df)\n", CompileError, "no column 'nope'", 4, 14, HINT),
    # display
    case("display-int", "import px\npx.display(5)\n", CompileError,
         "px.display needs a DataFrame, not an int", 2, 12),
    case("display-table-name", "import px\npx.display('http_events')\n", CompileError,
         "px.display needs a DataFrame, not a string", 2, 12),
    case("display-groupby", H + "px.display(df.groupby('upid'))\n", CompileError,
         "needs a DataFrame, not a grouped DataFrame", 3, 12),
    case("display-column", H + "px.display(df.latency)\n", CompileError,
         "px.display needs a DataFrame", 3, 12),
    case("bad-chart-type", H + "px.display(df, chart_type='pie')\n", CompileError,
         "chart_type='pie' is not one of table, line, bar", 3, 27),
    case("display-empty-name", H + "px.display(df, name='')\n", CompileError,
         "name must be a non-empty string", 3, 21),
    # containers
    case("index-out-of-range", "x = [1, 2][5]\n", CompileError, "index 5 is out of range", 1, 12),
    case("missing-dict-key", "x = {'a': 1}['b']\n", CompileError, "key 'b' is not in the dict", 1,
         14),
    # depth limits of column expressions (the executor would overflow Python's stack)
    case("column-chain-450", H + "df.x = " + " + ".join(["df.latency"] * 450) + "\n",
         CompileError, "nested more than 100 deep", 3, 8, "split it into steps"),
    case("column-negate-450", H + "df.x = " + "-" * 450 + "df.latency\n", CompileError,
         "nested more than 100 deep", 3, 358, HINT),
]


@pytest.mark.parametrize("source, error, message, line, col, hint", COMPILE_CASES)
def test_compile_errors(source, error, message, line, col, hint, demo_catalog):
    with pytest.raises(PxlError) as info:
        pxl.compile(source, demo_catalog, now=DEMO_NOW, filename="t.pxl")
    check(info.value, source, error, message, line, col, hint)


def test_the_error_hierarchy_is_public():
    for cls in (pxl.PxlSyntaxError, pxl.CompileError, pxl.PlanError, pxl.ExecuteError,
                pxl.DataError):
        assert issubclass(cls, pxl.PxlError)


# ----------------------------------------------------------------------------------------------
# Bytes, deep and large scripts that must not crash


@pytest.mark.parametrize("data, line, col, byte", [
    (b"x = 1\ny = '\xff'\n", 2, 6, "0xff"),
    (b"\xff", 1, 1, "0xff"),
    (b"x = 1\r\ny = 2\r\nz = '\xc3\x28'\n", 3, 6, "0xc3"),  # a truncated 2-byte sequence
    (b"x = '\xc3\xa9\xe4\xb8\xad\xe9'\n", 1, 8, "0xe9"),  # columns count characters, not bytes
    ("x = 'é'\n".encode("latin-1"), 1, 6, "0xe9"),
    (b"\xef\xbb\xbfx = 1\n\x80", 2, 1, "0x80"),
])
def test_invalid_utf8_points_at_the_first_bad_byte(data, line, col, byte):
    with pytest.raises(PxlSyntaxError) as info:
        decode_source(data, "t.pxl")
    err = info.value
    assert (err.span.line, err.span.col) == (line, col)
    assert f"not valid UTF-8 (byte {byte})" in err.message
    assert "UTF-8" in err.hint
    rendered = err.render()
    assert rendered.startswith(f"t.pxl:{line}:{col}: ")
    assert rendered.splitlines()[2] == "  " + " " * (col - 1) + "^"


def test_a_utf8_bom_is_skipped():
    assert decode_source(b"\xef\xbb\xbfimport px\n") == "import px\n"
    assert parse(decode_source(b"\xef\xbb\xbfx = 1\n")).body[0].span.col == 1


def test_deep_but_reasonable_nesting_works(demo_catalog):
    ok = (H + "a = " + "(" * 99 + "1" + ")" * 99 + "\n"
          + "b = " + "-" * 300 + "1\n"
          + "c = " + " + ".join(["a"] * 300) + "\n"
          + "df.x = " + " + ".join(["df.latency"] * 99) + "\n"
          + "df.y = " + " + ".join(["df.x"] * 99) + "\n"
          + "px.display(df[['x', 'y']].head(2))\n")
    out = pxl.run(ok, catalog=demo_catalog, now=DEMO_NOW)["output"]
    assert out.height == 2
    assert (out["y"] == out["x"] * 99).all()


def test_a_script_just_under_the_size_limit_parses():
    source = "x = 1\n" * 1000 + "y = '" + "a" * 990_000 + "'\n"  # 996,007 characters
    assert len(parse(source).body) == 1001


def test_the_size_limit_counts_characters():
    source = "x = 'é'\n" * 125_001  # 1,000,008 characters
    with pytest.raises(PxlSyntaxError, match="too large"):
        parse(source)


# ----------------------------------------------------------------------------------------------
# The real command: file:line:col, the source line, a caret, no traceback, the exit code

CLI_CASES = {
    # name: (script bytes or None for stdin-only cases, extra args, stdin, exit code, where,
    #        message)
    "for-loop": (b"import px\nfor x in y:\n    pass\n", [], None, 1, "2:1", "loops are not part"),
    "unterminated": (b"import px\nx = 'abc\n", [], None, 1, "2:5", "unterminated string"),
    "utf8-file": (b"import px\n# caf\xe9\n", [], None, 1, "2:6", "not valid UTF-8"),
    "utf8-stdin": (None, [], b"x = 1\ny = '\xc3\xa9\xff'\n", 1, "<stdin>:2:7", "not valid UTF-8"),
    "parens-1000": (("x = " + "(" * 1000 + "1" + ")" * 1000).encode(), [], None, 1, "1:105",
                    "nested more than 100 deep"),
    "chain-20000": (("a = 1\nx = " + "+".join(["a"] * 20_000)).encode(), [], None, 1, "2:1",
                    "nested too deeply"),
    "huge": (b"x = 1\n" * 200_000, [], None, 1, "1:1", "too large"),
    "column-chain-450": ((H + "df.x = " + "+".join(["df.latency"] * 450)).encode(), ["--demo"],
                         None, 1, "3:8", "nested more than 100 deep"),
    "unknown-table": (b"import px\ndf = px.DataFrame('http_event')\n", ["--demo"], None, 1,
                      "2:19", "did you mean 'http_events'?"),
    "string-vs-number": ((H + "df = df[df.req_path > 1]\npx.display(df)\n").encode(),
                         ["--demo"], None, 1, "3:9", "cannot apply '>'"),
}

USAGE_CASES = {
    "missing-script": (["run", "{tmp}/nope.pxl"], "no script file"),
    "table-without-equals": (["run", "{ok}", "--table", "http_events"], "expected NAME=PATH"),
    "parquet-without-out": (["run", "{ok}", "--demo", "-o", "parquet"], "add --out PATH"),
    "data-missing-dir": (["run", "{ok}", "--data", "{tmp}/no_such_dir"], "not a directory"),
    "corrupt-parquet": (["run", "{ok}", "--table", "t={tmp}/bad.parquet"], "bad.parquet"),
}


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory) -> dict[str, tuple[CliResult, str]]:
    """Every CLI case, run at once in parallel subprocesses: name → (result, script path)."""
    tmp = tmp_path_factory.mktemp("cli")
    ok = tmp / "ok.pxl"
    ok.write_text("import px\npx.display(px.DataFrame('t'))\n")
    (tmp / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    jobs: dict[str, tuple[list[str], bytes | None, str]] = {}
    for name, (script, args, stdin, *_rest) in CLI_CASES.items():
        if script is None:
            jobs[name] = (["run", "-", *args], stdin, "<stdin>")
        else:
            path = tmp / f"{name}.pxl"
            path.write_bytes(script)
            jobs[name] = (["run", str(path), *args], None, str(path))
    for name, (args, _message) in USAGE_CASES.items():
        jobs[name] = ([a.format(tmp=tmp, ok=ok) for a in args], None, "")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {n: pool.submit(run_cli, *a, stdin=s) for n, (a, s, _p) in jobs.items()}
        return {n: (f.result(), jobs[n][2]) for n, f in futures.items()}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_script_errors(name, cli_results):
    result, path = cli_results[name]
    script, _args, stdin, code, where, message = CLI_CASES[name]
    where = where if where.startswith("<stdin>") else f"{path}:{where}"
    err = result.err
    assert result.code == code, err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.splitlines()
    assert lines[0].startswith(f"{where}: "), err
    assert message in err
    assert set(lines[2].strip()) == {"^"}, err  # the caret line under the source line
    line, col = map(int, where.rsplit(":", 2)[1:])
    source_line = (script or stdin).decode("utf-8", "replace").splitlines()[line - 1]
    if len(source_line) <= 200:  # longer lines are shown cut around the column
        assert lines[2].startswith("  " + " " * (col - 1) + "^"), err
    assert lines[-1].startswith("hint: "), err
    assert result.out == ""


@pytest.mark.parametrize("name", list(USAGE_CASES))
def test_cli_usage_errors_exit_2(name, cli_results):
    result, _path = cli_results[name]
    assert result.code == 2, result.err
    assert USAGE_CASES[name][1] in result.err
    assert "Traceback" not in result.err
    assert result.out == ""


def test_no_cli_case_prints_a_traceback(cli_results):
    for name, (result, _path) in cli_results.items():
        assert "Traceback" not in result.err + result.out, name
        assert result.code in (1, 2), name


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
