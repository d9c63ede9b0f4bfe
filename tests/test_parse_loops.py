"""The parser's fast path against lark's own pipeline: the same tokens, trees, spans and errors.

``pxl.parser`` cuts the text into tokens itself and feeds them to a LALR parser loop: lark-cython's
when it is installed, else lark's. Lark's whole pipeline (its lexer, Indenter post-lexer and
parser loop) stays in the module as the reference. Every script here — the bundled and example
scripts, the error tests' sources, tricky snippets and random edits of all of them — must give
the same outcome through all three: the same AST with the same span on every node, or the same
error message, place, hint and rendering.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import lark
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import PxlSyntaxError
from pxl import parser as P
from pxl import syntax as S

ROOT = Path(__file__).resolve().parent.parent

LOOPS = ["python", "cython"] if P._cy is not None else ["python"]

#: Lark before 1.3 gives the dedents at the end of the text no position, which changes some
#: errors there ("'(' is never closed" for "unexpected end of block"): pxl's tokens have the
#: positions lark 1.3 gives, whatever lark is installed, so the reference is lark 1.3's.
needs_lark_1_3 = pytest.mark.skipif(
    tuple(int(p) for p in lark.__version__.split(".")[:2]) < (1, 3),
    reason="the reference is lark 1.3's end-of-text dedents")

SNIPPETS = [
    "",
    "\n\n",
    "# only a comment",
    "import px\nx = 1",  # no final new line
    "x = 1\r\ny = 2\r\n",
    "x = 1 + \\\n    2\n",
    "x = (1 +\n  2)\ny = [1,\n\n 2,  # two\n]\n",
    "def f(a: int = 1, b=2):\n    '''doc\n    more'''\n    return a\n\nx = f()\n",
    "def f():\n\tx = 1\n\treturn x\n",
    "def f():\n    def g():\n        return 1\n    return g()\ny = 2\n",
    "def f():\n    x = (1,\n",  # blocks and a bracket open at the end
    "def f():\n    return 1\n  y = 2\n",  # dedent to no outer block
    "def f():\nreturn 1\n",
    "x = 1\n    y = 2\n",
    "x = 'abc\ny = 2\n",
    "x = '''abc\n",
    "x = f'{y}'\n",
    "x = b'ab'\n",
    "x = 'a' \"b\" r'\\n' '\\x41\\u00e9\\N'\n",
    "x = 1_000 + 0x_ff + 1e-3 + .5 + 5. + 0xff\n",
    "x = 1abc\n",
    "x = a ** 2\ny = a // 2\nz += 1\n",
    "for x in y:\n    pass\n",
    "x = [i for i in y]\n",
    "x = a if b else c\n",
    "x = a not in b\n",
    "x = 1 < 2 < 3\n",
    "x = $\n",
    "x = é + ℌ + ٣\n",
    "x = f(a=1, a=2)\n",
    "x = f(a=1, 2)\n",
    "import os\n",
    "from px import a as b, c\n",
    "__x = 1\n",
    "x = (\n",
    "x = )\n",
    "x = 1;; y = 2\n",
    "x = 1; y = 2;\n",
    "def f(a, a):\n    pass\n",
    "def f(a=1, b):\n    pass\n",
    "x = {'a': 1, 'b': [2, (3,)], }\ny = ()\nz = (1)\n",
    "x = a.b[c](d)(e=f).g\n",
    "x = not a and b or -c % +d\n",
    "x = " + "+".join(["a"] * 600) + "\n",
    "x = (" + "+\n".join(["a"] * 600) + ")\n",
    "x = " + "-" * 499 + "a\n",
    "x = " + "[" * 101 + "]" * 101 + "\n",
]


def _sources() -> list[str]:
    texts = list(SNIPPETS)
    for pattern in ("pxl/scripts/**/*.pxl", "examples/**/*.pxl"):
        texts += [p.read_text(encoding="utf-8") for p in sorted(ROOT.glob(pattern))]
    from tests.test_errors import COMPILE_CASES, SYNTAX_CASES

    texts += [c.values[0] for c in SYNTAX_CASES + COMPILE_CASES if isinstance(c.values[0], str)]
    return texts


SOURCES = _sources()


def _dump(tree) -> list:
    """Every node with its fields and span, in order (nodes compare without spans); without
    recursion, for the deepest trees."""
    out, stack = [], [tree]
    while stack:
        x = stack.pop()
        if isinstance(x, S.Node):
            s = x.span
            fields = [getattr(x, f.name) for f in dataclasses.fields(x) if f.name != "span"]
            out.append((type(x).__name__, len(fields), s.file, s.line, s.col, s.end_line,
                        s.end_col))
            stack.extend(reversed(fields))
        elif isinstance(x, tuple | list):
            out.append(("sequence", len(x)))
            stack.extend(reversed(x))
        else:
            out.append((type(x).__name__, x))
    return out


def _outcome(text: str, loop: str):
    try:
        tree = P._parse(text, "t.pxl", loop)
    except PxlSyntaxError as err:
        return ("error", err.message, err.span, err.hint, err.render())
    return ("tree", _dump(tree))


def _check(text: str) -> None:
    reference = _outcome(text, "lark")
    for loop in LOOPS:
        assert _outcome(text, loop) == reference, (loop, text)


@needs_lark_1_3
@pytest.mark.parametrize("text", SOURCES, ids=range(len(SOURCES)))
def test_every_loop_gives_the_reference_outcome(text):
    _check(text)


_EDITS = st.sampled_from(
    list("()[]{}:,.=+-*/%'\"#\\\n\t ;<>!&|^~@\f\r$é٣") + [
        "\r\n", "    ", "\n    ", "\n  ", "'''", '"""', "**", "//", "+=", ":=", "f'", "rb'",
        "0x", "1e", "1.", "_", "\\\n", "for", "if", "in", "not in", "lambda", "def", "import",
        "return", "pass", "None", "and", "or", "not", "__x", "x", "1", "->", "def f():\n",
    ])


@needs_lark_1_3
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(SOURCES),
       edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3), _EDITS), min_size=1,
                      max_size=3))
def test_random_edits_give_the_reference_outcome(base, edits):
    """Insertions and deletions anywhere: mostly errors, which must be the same too."""
    text = base
    for where, delete, insert in edits:
        i = int(where * len(text))
        text = text[:i] + insert + text[i + delete:]
    _check(text)


@pytest.mark.parametrize("loop", LOOPS)
def test_the_fast_table_fails_where_the_exact_one_does(loop):
    """The fast table skips states that only pass a value on: it must accept the same scripts,
    build the same trees, and fail at the same token (its error is then taken from the exact
    table, so that the expected tokens named in the hint are the same)."""
    from lark.exceptions import UnexpectedToken

    exact, fast, state_class, Tok = P._machine(loop == "cython")

    def feed(conf, tokens, error):
        try:
            return ("tree", _dump(P._feed(conf, state_class, Tok, tokens, error)))
        except UnexpectedToken as exc:
            return ("unexpected", exc.token.start_pos, exc.token.type)
        except Exception as exc:  # noqa: BLE001 - the builder's errors, lexing errors
            return (type(exc).__name__, str(exc))

    for text in SOURCES:
        if "\0" in text or len(text) > P.MAX_SOURCE_CHARS:
            continue
        tokens, error = P._tokens(text if text.endswith("\n") else text + "\n", Tok)
        assert feed(fast, tokens, error) == feed(exact, tokens, error), text


def _token_fields(t):
    return (t.type, t.value, t.start_pos, t.line, t.column, t.end_line, t.end_column, t.end_pos)


@needs_lark_1_3
@pytest.mark.parametrize("text", SOURCES, ids=range(len(SOURCES)))
def test_tokens_are_lark_lexer_and_indenter_tokens(text):
    """The tokens themselves (and the lexing error after them), against lark's ``lex``."""
    if "\0" in text or len(text) > P.MAX_SOURCE_CHARS:
        return  # refused before lexing
    text = text if text.endswith("\n") else text + "\n"
    expected, error = [], None
    try:
        for tok in P._lark().lex(text):
            expected.append(_token_fields(tok))
    except Exception as exc:  # noqa: BLE001 - any lexing error: compared by kind and place
        error = exc
    for Tok in [P._Token] + ([P._cy.Token] if P._cy is not None else []):
        tokens, ours = P._tokens(text, Tok)
        if isinstance(error, AssertionError):
            # a closing bracket with none open: lark's post-lexer stops at it (an assertion),
            # after the parser has failed on that bracket; ours goes on
            assert [_token_fields(t) for t in tokens[:len(expected)]] == expected
            assert expected[-1][0] in ("RPAR", "RSQB", "RBRACE")
            continue
        assert [_token_fields(t) for t in tokens] == expected
        assert type(ours) is type(error)
        if error is not None and hasattr(error, "pos_in_stream"):
            assert (ours.pos_in_stream, ours.line, ours.column) == \
                (error.pos_in_stream, error.line, error.column)


def test_without_lark_cython_lark_s_loop_is_used(monkeypatch):
    used = []
    run = P._run
    monkeypatch.setattr(P, "_run", lambda text, loop: used.append(loop) or run(text, loop))
    text = "import px\nx = px.f(1, 'a')\n"
    tree = P._parse(text, "t.pxl")
    assert used == [LOOPS[-1]]  # lark-cython's whenever it is installed
    monkeypatch.setattr(P, "_cy", None)
    assert _dump(P._parse(text, "t.pxl")) == _dump(tree)
    assert used[-1] == "python"


@pytest.mark.parametrize("loop", LOOPS)
def test_long_scripts_parse_in_linear_time(loop):
    """Repetitions (statements, arguments, list items) are collected in place, not copied."""
    import time

    def cost(n: int) -> float:
        text = ("x = f(" + ", ".join(["a"] * n) + ")\n") + "".join(f"y{i} = {i}\n" for i in range(n))
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            P._parse(text, "t.pxl", loop)
            best = min(best, time.process_time() - started)
        return best

    small, large = cost(1_000), cost(8_000)
    assert large < 8 * 3 * small  # 8× the input; quadratic would be 64×
