"""The parser: the AST of every construct PxL has, and the spans (line/col) of its nodes.

Nodes compare without their spans, so expected trees are written with the helpers below; spans
are checked separately where they matter.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import PxlSyntaxError, Span
from pxl import syntax as S
from pxl.parser import parse

_ = Span("<expected>", 0, 0)  # nodes compare without spans


def name(i: str) -> S.Name:
    return S.Name(i, span=_)


def const(v) -> S.Const:
    return S.Const(v, span=_)


def attr(value: S.Expr, a: str) -> S.Attribute:
    return S.Attribute(value, a, span=_)


def sub(value: S.Expr, index: S.Expr) -> S.Subscript:
    return S.Subscript(value, index, span=_)


def call(func: S.Expr, *args: S.Expr, **kwargs: S.Expr) -> S.Call:
    return S.Call(func, args, tuple(S.Keyword(k, v, span=_) for k, v in kwargs.items()), span=_)


def binop(op: str, left: S.Expr, right: S.Expr) -> S.BinOp:
    return S.BinOp(op, left, right, span=_)


def unary(op: str, operand: S.Expr) -> S.UnaryOp:
    return S.UnaryOp(op, operand, span=_)


def compare(op: str, left: S.Expr, right: S.Expr) -> S.Compare:
    return S.Compare(op, left, right, span=_)


def boolop(op: str, left: S.Expr, right: S.Expr) -> S.BoolOp:
    return S.BoolOp(op, left, right, span=_)


def not_(operand: S.Expr) -> S.Not:
    return S.Not(operand, span=_)


def lst(*items: S.Expr) -> S.ListExpr:
    return S.ListExpr(items, span=_)


def tup(*items: S.Expr) -> S.TupleExpr:
    return S.TupleExpr(items, span=_)


def dct(*pairs: tuple[S.Expr, S.Expr]) -> S.DictExpr:
    return S.DictExpr(pairs, span=_)


def assign(target: S.Expr, value: S.Expr) -> S.Assign:
    return S.Assign(target, value, span=_)


def expr_stmt(e: S.Expr) -> S.ExprStmt:
    return S.ExprStmt(e, span=_)


def body(source: str) -> tuple[S.Stmt, ...]:
    return parse(source, "t.pxl").body


def expr(source: str) -> S.Expr:
    """The value of ``x = SOURCE``."""
    (stmt,) = body(f"x = {source}\n")
    assert isinstance(stmt, S.Assign)
    return stmt.value


def value(source: str):
    """The constant ``SOURCE`` stands for, with its exact Python type."""
    e = expr(source)
    assert isinstance(e, S.Const), e
    return e.value


# ----------------------------------------------------------------------------------------------
# imports


@pytest.mark.parametrize("source, node", [
    ("import px", S.Import("px", None, span=_)),
    ("import px as p", S.Import("px", "p", span=_)),
    ("from px import DataFrame", S.FromImport("px", (("DataFrame", None),), span=_)),
    ("from px import DataFrame, display",
     S.FromImport("px", (("DataFrame", None), ("display", None)), span=_)),
    ("from px import DataFrame as D, display as show",
     S.FromImport("px", (("DataFrame", "D"), ("display", "show")), span=_)),
])
def test_imports(source, node):
    assert body(source) == (node,)


# ----------------------------------------------------------------------------------------------
# assignments and statements


def test_assign_to_name():
    assert body("x = 1") == (assign(name("x"), const(1)),)


def test_assign_to_attribute_column():
    assert body("df.lat_ms = df.latency / 1000000") == (
        assign(attr(name("df"), "lat_ms"),
               binop("/", attr(name("df"), "latency"), const(1000000))),)


def test_assign_to_subscript_column():
    assert body("df['service'] = 'checkout'") == (
        assign(sub(name("df"), const("service")), const("checkout")),)


def test_expression_statement():
    assert body("px.display(df)") == (expr_stmt(call(attr(name("px"), "display"), name("df"))),)


def test_pass():
    assert body("pass") == (S.Pass(span=_),)


def test_semicolons_separate_statements_and_may_end_a_line():
    assert body("x = 1; y = 2;\nz = 3") == (
        assign(name("x"), const(1)), assign(name("y"), const(2)), assign(name("z"), const(3)))


def test_empty_script_and_comment_only_script():
    assert body("") == ()
    assert body("\n\n   \n") == ()
    assert body("# nothing here\n# at all") == ()


def test_comments_and_blank_lines_are_ignored():
    source = (
        "# header comment\n"
        "\n"
        "import px  # trailing comment\n"
        "   \n"
        "x = [1,  # inside brackets\n"
        "     # a comment line inside brackets\n"
        "     2]\n"
        "\t\n"
        "# a comment at the end without a newline"
    )
    assert body(source) == (S.Import("px", None, span=_), assign(name("x"), lst(const(1), const(2))))


def test_backslash_continuation():
    assert body("x = 1 + \\\n    2\ny = 3") == (
        assign(name("x"), binop("+", const(1), const(2))), assign(name("y"), const(3)))


def test_crlf_line_endings():
    source = "import px\r\n\r\ndef f(a):\r\n    return a * 2\r\n\r\nx = f(1)\r\n"
    assert body(source) == body(source.replace("\r\n", "\n"))
    stmts = body(source)
    assert [s.span.line for s in stmts] == [1, 3, 6]


def test_script_without_final_newline():
    assert body("x = 1") == body("x = 1\n")


def test_multi_line_call_with_brackets():
    source = "df = px.DataFrame(\n    table='http_events',\n    start_time='-5m',\n)\n"
    assert body(source) == (assign(name("df"), call(
        attr(name("px"), "DataFrame"), table=const("http_events"), start_time=const("-5m"))),)


# ----------------------------------------------------------------------------------------------
# function definitions


def test_def_with_annotations_defaults_docstring_and_return():
    (fn,) = body(
        "def f(df: px.DataFrame, n: int = 5, name='x') -> px.DataFrame:\n"
        "    '''Top n rows.'''\n"
        "    out = df.head(n)\n"
        "    return out\n"
    )
    assert isinstance(fn, S.FunctionDef)
    assert fn.name == "f"
    assert fn.docstring == "Top n rows."
    assert fn.params == (
        S.Param("df", attr(name("px"), "DataFrame"), None, span=_),
        S.Param("n", name("int"), const(5), span=_),
        S.Param("name", None, const("x"), span=_),
    )
    assert fn.returns == attr(name("px"), "DataFrame")
    assert fn.body == (
        assign(name("out"), call(attr(name("df"), "head"), name("n"))),
        S.Return(name("out"), span=_),
    )


def test_def_without_params_docstring_or_annotation():
    (fn,) = body("def g():\n    return\n")
    assert fn == S.FunctionDef("g", (), None, (S.Return(None, span=_),), None, span=_)


def test_def_on_one_line_and_trailing_comma_in_params():
    (fn,) = body("def g(a, b,): return a")
    assert [p.name for p in fn.params] == ["a", "b"]
    assert fn.body == (S.Return(name("a"), span=_),)


def test_def_triple_quoted_multiline_docstring_and_blank_lines_in_body():
    (fn,) = body('def g():\n    """Line one.\n\n    Line two."""\n\n    # note\n    pass\n')
    assert fn.docstring == "Line one.\n\n    Line two."
    assert fn.body == (S.Pass(span=_),)


def test_a_string_that_is_not_first_is_no_docstring():
    (fn,) = body("def g():\n    x = 1\n    'not a doc'\n")
    assert fn.docstring is None
    assert fn.body[1] == expr_stmt(const("not a doc"))


def test_nested_def_and_dedent_to_top_level():
    stmts = body("def f():\n    def g():\n        return 1\n    return g()\nx = f()\n")
    outer = stmts[0]
    assert isinstance(outer.body[0], S.FunctionDef) and outer.body[0].name == "g"
    assert stmts[1] == assign(name("x"), call(name("f")))


def test_tabs_indent_a_body():
    (fn,) = body("def f():\n\tx = 1\n\treturn x\n")
    assert len(fn.body) == 2


# ----------------------------------------------------------------------------------------------
# calls, attributes, subscripts


def test_call_with_positional_and_keyword_args_and_trailing_comma():
    assert expr("f(1, 'a', n=2, name='b',)") == call(
        name("f"), const(1), const("a"), n=const(2), name=const("b"))


def test_call_without_args():
    assert expr("px.now()") == call(attr(name("px"), "now"))


def test_method_chain():
    assert expr("df.groupby('svc').agg(n=('latency', px.count))") == call(
        attr(call(attr(name("df"), "groupby"), const("svc")), "agg"),
        n=tup(const("latency"), attr(name("px"), "count")))


def test_subscripts():
    assert expr("df[df.x > 1]") == sub(name("df"), compare(">", attr(name("df"), "x"), const(1)))
    assert expr("df[['a', 'b']]") == sub(name("df"), lst(const("a"), const("b")))
    assert expr("d['k'][0]") == sub(sub(name("d"), const("k")), const(0))


# ----------------------------------------------------------------------------------------------
# operators and precedence


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "%"])
def test_binary_arithmetic(op):
    assert expr(f"a {op} b") == binop(op, name("a"), name("b"))


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_comparisons(op):
    assert expr(f"a {op} 1") == compare(op, name("a"), const(1))


@pytest.mark.parametrize("source, tree", [
    ("a + b * c", binop("+", name("a"), binop("*", name("b"), name("c")))),
    ("a * b + c", binop("+", binop("*", name("a"), name("b")), name("c"))),
    ("a - b - c", binop("-", binop("-", name("a"), name("b")), name("c"))),
    ("a / b % c", binop("%", binop("/", name("a"), name("b")), name("c"))),
    ("(a + b) * c", binop("*", binop("+", name("a"), name("b")), name("c"))),
    ("-a", unary("-", name("a"))),
    ("+a", unary("+", name("a"))),
    ("--a", unary("-", unary("-", name("a")))),
    ("-a * b", binop("*", unary("-", name("a")), name("b"))),
    ("-df.x", unary("-", attr(name("df"), "x"))),
    ("a - -1", binop("-", name("a"), unary("-", const(1)))),
    ("a + 1 < b * 2", compare("<", binop("+", name("a"), const(1)), binop("*", name("b"), const(2)))),
    ("a or b and c", boolop("or", name("a"), boolop("and", name("b"), name("c")))),
    ("a and b or c", boolop("or", boolop("and", name("a"), name("b")), name("c"))),
    ("not a and b", boolop("and", not_(name("a")), name("b"))),
    ("not a == b", not_(compare("==", name("a"), name("b")))),
    ("not not a", not_(not_(name("a")))),
    ("a or b or c", boolop("or", boolop("or", name("a"), name("b")), name("c"))),
    ("(a or b) and c", boolop("and", boolop("or", name("a"), name("b")), name("c"))),
    ("a < 1 or not b >= 2 and c",
     boolop("or", compare("<", name("a"), const(1)),
            boolop("and", not_(compare(">=", name("b"), const(2))), name("c")))),
])
def test_precedence(source, tree):
    assert expr(source) == tree


# ----------------------------------------------------------------------------------------------
# numbers


@pytest.mark.parametrize("source, expected", [
    ("0", 0), ("7", 7), ("1234567890", 1234567890), ("1_000_000", 1_000_000),
    ("0x1f", 31), ("0XFF", 255), ("0xdead_beef", 0xDEADBEEF),
    ("9223372036854775807", 2**63 - 1),
])
def test_integers(source, expected):
    v = value(source)
    assert v == expected and type(v) is int


@pytest.mark.parametrize("source, expected", [
    ("1.5", 1.5), (".5", 0.5), ("5.", 5.0), ("0.0", 0.0), ("1e3", 1000.0), ("1E-3", 0.001),
    ("2.5e+3", 2500.0), ("1_000.000_1", 1000.0001), ("6.02e23", 6.02e23), ("1_0e1_0", None),
])
def test_floats(source, expected):
    if expected is None:  # underscores are not allowed in exponents (nor in Python)
        with pytest.raises(PxlSyntaxError):
            expr(source)
        return
    v = value(source)
    assert v == expected and type(v) is float


def test_negative_numbers_are_unary_minus():
    assert expr("-1") == unary("-", const(1))
    assert expr("-1.5e3") == unary("-", const(1500.0))


def test_booleans_and_none():
    for source, v in [("True", True), ("False", False), ("None", None)]:
        got = value(source)
        assert got is v


# ----------------------------------------------------------------------------------------------
# strings


@pytest.mark.parametrize("source, expected", [
    ("'abc'", "abc"),
    ('"abc"', "abc"),
    ("''", ""),
    ('""', ""),
    ("'it\"s'", 'it"s'),
    ('"it\'s"', "it's"),
    (r"'it\'s'", "it's"),
    (r'"a\"b"', 'a"b'),
    (r"'a\nb\tc\\d'", "a\nb\tc\\d"),
    (r"'\r\a\b\f\v\0'", "\r\a\b\f\v\0"),
    (r"'\x41\x7e'", "A~"),
    (r"'\u00e9\u4e2d'", "é中"),
    (r"'\U0001F600'", "\U0001F600"),
    (r"'\101\60'", "A0"),
    (r"'\d\w'", "\\d\\w"),  # unknown escapes stay as written, as in Python
    ("'a\\\nb'", "ab"),  # backslash-newline inside a string is a continuation
    ("'日本語 ✓ 😀'", "日本語 ✓ 😀"),
    ("u'x'", "x"),
    ("U'x'", "x"),
])
def test_string_literals_and_escapes(source, expected):
    assert value(source) == expected


@pytest.mark.parametrize("source, expected", [
    (r"r'\n\d'", "\\n\\d"),
    (r'R"C:\path\to"', "C:\\path\\to"),
    (r"r'\''", "\\'"),
    ("r'''a\\nb'''", "a\\nb"),
])
def test_raw_strings(source, expected):
    assert value(source) == expected


@pytest.mark.parametrize("source, expected", [
    ('"""one\ntwo"""', "one\ntwo"),
    ("'''one\ntwo'''", "one\ntwo"),
    ('"""he said "hi" """', 'he said "hi" '),
    ("'''it's'''", "it's"),
    ('"""tab\\tand\\nnewline"""', "tab\tand\nnewline"),
    ('""""""', ""),
    ('"""# not a comment\n(not a bracket"""', "# not a comment\n(not a bracket"),
])
def test_triple_quoted_strings(source, expected):
    assert value(source) == expected


def test_implicit_concatenation():
    assert value("'a' \"b\" 'c'") == "abc"
    assert value("r'\\n' '\\n'") == "\\n\n"
    assert value("('select '\n     'from t'  # comment\n     )") == "select from t"
    assert value("'a' \\\n 'b'") == "ab"
    assert value("'''x''' 'y'") == "xy"


def test_unicode_names():
    assert body("café = 1\nπ = café") == (assign(name("café"), const(1)),
                                          assign(name("π"), name("café")))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=30))
def test_python_string_repr_round_trips(s):
    assert value(repr(s)) == s


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=2**64))
def test_integer_round_trips(n):
    assert value(str(n)) == n
    assert value(hex(n)) == n
    assert value(f"{n:_}") == n


# ----------------------------------------------------------------------------------------------
# lists, tuples, dicts


@pytest.mark.parametrize("source, tree", [
    ("[]", lst()),
    ("[1]", lst(const(1))),
    ("[1, 2]", lst(const(1), const(2))),
    ("[1, 2,]", lst(const(1), const(2))),
    ("[[1], []]", lst(lst(const(1)), lst())),
    ("()", tup()),
    ("(1,)", tup(const(1))),
    ("(1, 2)", tup(const(1), const(2))),
    ("(1, 2,)", tup(const(1), const(2))),
    ("(1)", const(1)),
    ("((1, 2), 'a')", tup(tup(const(1), const(2)), const("a"))),
    ("{}", dct()),
    ("{'a': 1}", dct((const("a"), const(1)))),
    ("{'a': 1, 2: [3],}", dct((const("a"), const(1)), (const(2), lst(const(3))))),
    ("[\n  1,\n  2,\n]", lst(const(1), const(2))),
    ("{\n  'a': 1,  # one\n  'b': 2,\n}", dct((const("a"), const(1)), (const("b"), const(2)))),
])
def test_collections(source, tree):
    assert expr(source) == tree


# ----------------------------------------------------------------------------------------------
# spans


def span_of(node) -> tuple[int, int, int | None, int | None]:
    s = node.span
    return (s.line, s.col, s.end_line, s.end_col)


def test_spans_carry_the_file_name():
    (stmt,) = parse("x = 1", "my/script.pxl").body
    assert stmt.span.file == "my/script.pxl"
    assert str(stmt.value.span) == "my/script.pxl:1:5"


def test_spans_of_statements_and_nested_expressions():
    source = (
        "import px\n"                                      # 1
        "df = px.DataFrame('t', start_time='-5m')\n"       # 2
        "df.x = -df.a * 2\n"                               # 3
        "\n"                                               # 4
        "def f(a: int, b=2) -> int:\n"                     # 5
        "    '''doc'''\n"                                  # 6
        "    return a + b\n"                               # 7
    )
    imp, asg, col, fn = parse(source, "q.pxl").body
    assert span_of(imp) == (1, 1, 1, 10)
    assert span_of(asg)[:2] == (2, 1)
    assert span_of(asg.target) == (2, 1, 2, 3)
    c = asg.value
    assert span_of(c) == (2, 6, 2, 41)
    assert span_of(c.func) == (2, 6, 2, 18)
    assert span_of(c.func.value) == (2, 6, 2, 8)
    assert span_of(c.args[0]) == (2, 19, 2, 22)
    assert span_of(c.keywords[0]) == (2, 24, 2, 40)
    assert span_of(c.keywords[0].value) == (2, 35, 2, 40)
    assert span_of(col.target) == (3, 1, 3, 5)
    assert span_of(col.value) == (3, 8, 3, 17)
    assert span_of(col.value.left) == (3, 8, 3, 13)
    assert span_of(col.value.left.operand) == (3, 9, 3, 13)
    assert span_of(col.value.right) == (3, 16, 3, 17)
    assert span_of(fn)[:2] == (5, 1)
    assert span_of(fn.params[0]) == (5, 7, 5, 13)
    assert span_of(fn.params[0].annotation) == (5, 10, 5, 13)
    assert span_of(fn.params[1].default) == (5, 17, 5, 18)
    assert span_of(fn.returns) == (5, 23, 5, 26)
    (ret,) = fn.body
    assert span_of(ret) == (7, 5, 7, 17)
    assert span_of(ret.value) == (7, 12, 7, 17)
    assert span_of(ret.value.right) == (7, 16, 7, 17)


def test_spans_of_multi_line_nodes():
    (stmt,) = body("x = f(\n    1,\n    b=2,\n)\n")
    assert span_of(stmt.value) == (1, 5, 4, 2)
    assert span_of(stmt.value.args[0]) == (2, 5, 2, 6)
    assert span_of(stmt.value.keywords[0]) == (3, 5, 3, 8)
    (stmt,) = body('x = """a\nb""" + y\n')
    assert span_of(stmt.value.right) == (2, 8, 2, 9)


def test_spans_count_characters_not_bytes():
    (stmt,) = body("x = 'é中😀' + y\n")
    assert span_of(stmt.value.right) == (1, 13, 1, 14)


def test_spans_with_crlf_continuation_and_semicolons():
    stmts = body("a = 1\r\nb = 2; c = d\r\ne = 1 + \\\r\n  f\r\n")
    assert [span_of(s)[:2] for s in stmts] == [(1, 1), (2, 1), (2, 8), (3, 1)]
    assert span_of(stmts[2].value) == (2, 12, 2, 13)
    assert span_of(stmts[3].value.right) == (4, 3, 4, 4)


def test_spans_after_comments_and_blank_lines():
    (stmt,) = body("# c\n\n   \n# d\n  # e\nx = y  # z\n")
    assert span_of(stmt) == (6, 1, 6, 6)
    assert span_of(stmt.value) == (6, 5, 6, 6)


def test_spans_in_def_body_with_tabs():
    (fn,) = body("def f():\n\treturn  x\n")
    assert span_of(fn.body[0].value)[:2] == (2, 10)


def test_backslash_newline_inside_a_string_continues_it():
    assert value("'a\\\nb'") == "ab"
    assert value("'a\\\r\nb'") == "ab"
    assert value("r'a\\\nb'") == "a\\\nb"
    (a, b) = body("x = 'a\\\nb'\ny = 2\n")
    assert span_of(b) == (3, 1, 3, 6)
