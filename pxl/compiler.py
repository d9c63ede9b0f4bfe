"""AST → logical plan, by evaluating the script over pxl's object model.

The evaluator walks the AST statement by statement. Constants, times and durations are folded
as they are met; column expressions become typed plan expressions checked against the function
registry; each DataFrame method adds one plan node; ``px.display`` adds an output. User functions
are called at compile time with their arguments. Python's eval/exec are never used.
"""

from __future__ import annotations

import contextlib
import difflib
import operator
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.catalog import Catalog
from engine.errors import CompileError, Span
from engine.exprs import Call, ColumnRef, Expr, Literal
from engine.registry import (
    REGISTRY,
    ArgumentError,
    CompileTimeFunction,
    ScalarFunction,
    TypeMismatch,
)
from engine.relations import Plan, Relation, Sink
from engine.types import ColumnType, DataType
from pxl import syntax as S
from pxl.args import ArgError, ScriptArg, VisSpec, convert, declared_args
from pxl.plancache import CompileReads, RecordingCatalog
from pxl.values import (
    BoundMethod,
    Builtin,
    ColumnValue,
    PxFunction,
    PxModule,
    TimeValue,
    TypeValue,
    UserFunction,
    describe_value,
    literal_of,
)

__all__ = ["Compiler", "Arg", "compile_module", "compile_interactive", "new_env", "REQUIRED",
           "closest"]

MAX_CALL_DEPTH = 50
MAX_EXPR_DEPTH = 100  # deeper column expressions overflow the recursion of later stages
REQUIRED = object()

_BINOPS = {"+": ("add", operator.add), "-": ("subtract", operator.sub),
           "*": ("multiply", operator.mul), "/": ("divide", operator.truediv),
           "%": ("modulo", operator.mod)}
_COMPARE = {"==": ("equal", operator.eq), "!=": ("notEqual", operator.ne),
            "<": ("lessThan", operator.lt), "<=": ("lessThanEqual", operator.le),
            ">": ("greaterThan", operator.gt), ">=": ("greaterThanEqual", operator.ge)}
_BOOL = {"and": "logicalAnd", "or": "logicalOr"}
_BUILTIN_TYPES = {"str": TypeValue("str", (str,)), "int": TypeValue("int", (int,)),
                  "float": TypeValue("float", (float, int)), "bool": TypeValue("bool", (bool,))}


@dataclass(frozen=True)
class Arg:
    """An evaluated argument and where it was written."""

    value: Any
    span: Span


class _Return(Exception):  # noqa: N818 - control flow, never escapes the compiler
    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass
class Compiler:
    catalog: Catalog
    #: the time relative times are resolved against: read it through now_time() (which notes
    #: that the plan depends on it) or, for a window relative to it, window_time()
    now: int
    filename: str = "<script>"
    sinks: list[Sink] = field(default_factory=list)
    depth: int = 0
    #: script arguments: values given (already converted) and the declarations found in the script
    args: dict[str, Any] = field(default_factory=dict)
    #: (or a function finding them, called at the first px.arg: most scripts have none, and
    #: finding them walks the whole tree)
    declared: dict[str, ScriptArg] | Callable[[], dict[str, ScriptArg]] = \
        field(default_factory=dict)
    vis: VisSpec | None = None
    expr_depths: dict[int, tuple[int, Expr]] = field(default_factory=dict)  # id → (depth, expr)
    #: what the compile read besides the script, for the plan cache (pxl/plancache.py)
    reads: CompileReads | None = None

    # ------------------------------------------------------------------------------------------
    # statements
    def run_module(self, module: S.Module) -> Plan:
        env: dict[str, Any] = dict(_BUILTIN_TYPES)
        self.exec_block(module.body, env, env, in_function=False)
        if self.vis is not None:
            self.run_widgets(env, module.span)
        if not self.sinks:
            raise CompileError("the script displays nothing", module.span,
                               hint="call px.display(df) for each result you want to see")
        return Plan(tuple(self.sinks))

    def run_widgets(self, env: dict[str, Any], span: Span) -> None:
        """Pixie's vis.json: call each widget's function with its arguments and display it."""
        from pxl.dataframe import DataFrame

        assert self.vis is not None
        for w in self.vis.widgets:
            func = env.get(w.func)
            if not isinstance(func, UserFunction):
                raise CompileError(f"vis.json widget {w.name!r} calls {w.func!r}, which the script "
                                   "does not define", span)
            kwargs = {}
            for param, kind, ref in w.args:
                value = self.arg_value(ref, span) if kind == "variable" else ref
                kwargs[param] = Arg(value, span)
            frame = self.call_user(func, [], kwargs, span)
            if not isinstance(frame, DataFrame):
                raise CompileError(f"vis.json widget {w.name!r}: {w.func} returned "
                                   f"{describe_value(frame)}, not a DataFrame", span)
            options = (("chart_type", w.chart_type),) if w.chart_type else ()
            self.add_sink(frame.rel, w.name, options, span)

    def arg_value(self, name: str, span: Span) -> Any:
        """The value of script argument ``name``: given, else its default."""
        if name in self.args:
            return self.args[name]
        if callable(self.declared):
            self.declared = self.declared()
        decl = self.declared.get(name)
        if decl is None:
            raise CompileError(f"no script argument {name!r} is declared", span)
        if decl.required:
            raise CompileError(f"the script needs the argument --{name}", span,
                               hint=f"give it after --, e.g. pxl run SCRIPT -- --{name}=VALUE")
        return decl.default

    def exec_block(self, body: Sequence[S.Stmt], local: dict[str, Any], glob: dict[str, Any],
                   *, in_function: bool) -> None:
        for stmt in body:
            self.exec_stmt(stmt, local, glob, in_function=in_function)

    def exec_stmt(self, stmt: S.Stmt, local: dict[str, Any], glob: dict[str, Any], *,
                  in_function: bool) -> None:
        if isinstance(stmt, S.Import):
            local[stmt.alias or "px"] = PxModule()
        elif isinstance(stmt, S.FromImport):
            for name, alias in stmt.names:
                local[alias or name] = self.px_attr(name, stmt.span)
        elif isinstance(stmt, S.Assign):
            self.assign(stmt, local, glob)
        elif isinstance(stmt, S.ExprStmt):
            self.evaluate(stmt.expr, local, glob)
        elif isinstance(stmt, S.FunctionDef):
            local[stmt.name] = UserFunction(stmt, glob)
        elif isinstance(stmt, S.Return):
            if not in_function:
                raise CompileError("'return' outside a function", stmt.span)
            raise _Return(self.evaluate(stmt.value, local, glob) if stmt.value else None)
        elif isinstance(stmt, S.Pass):
            pass
        else:  # pragma: no cover - the parser makes no other statements
            raise CompileError(f"unsupported statement {type(stmt).__name__}", stmt.span)

    def assign(self, stmt: S.Assign, local: dict[str, Any], glob: dict[str, Any]) -> None:
        target = stmt.target
        value = self.evaluate(stmt.value, local, glob)
        if isinstance(target, S.Name):
            local[target.id] = value
            return
        assert isinstance(target, S.Attribute | S.Subscript)
        if not isinstance(target.value, S.Name):
            raise CompileError("only a DataFrame held in a name can get a column", target.span,
                               hint="assign to df.column or df['column'] where df is a name")
        from pxl.dataframe import DataFrame

        frame = self.evaluate(target.value, local, glob)
        if not isinstance(frame, DataFrame):
            raise CompileError(f"cannot set a column on {describe_value(frame)}", target.span,
                               hint="columns are set on DataFrames: df.x = df.a * 2")
        if isinstance(target, S.Attribute):
            column = target.attr
        else:
            column = self.evaluate(target.index, local, glob)
            if not isinstance(column, str):
                raise CompileError(f"a column name must be a string, not {describe_value(column)}",
                                   target.index.span)
        local[target.value.id] = frame.with_column(self, column, Arg(value, stmt.value.span),
                                                   target.span)

    # ------------------------------------------------------------------------------------------
    # expressions
    def evaluate(self, node: S.Expr, local: dict[str, Any], glob: dict[str, Any]) -> Any:
        method = getattr(self, f"eval_{type(node).__name__}")
        return method(node, local, glob)

    def eval_Const(self, node: S.Const, local, glob) -> Any:
        return node.value

    def eval_Name(self, node: S.Name, local, glob) -> Any:
        for scope in (local, glob):
            if node.id in scope:
                return scope[node.id]
        known = sorted(set(local) | set(glob))
        hint = closest(node.id, known)
        if node.id == "px":
            hint = "add 'import px' at the top of the script"
        raise CompileError(f"name {node.id!r} is not defined", node.span, hint=hint)

    def eval_ListExpr(self, node: S.ListExpr, local, glob) -> list[Any]:
        return [self.evaluate(i, local, glob) for i in node.items]

    def eval_TupleExpr(self, node: S.TupleExpr, local, glob) -> tuple[Any, ...]:
        return tuple(self.evaluate(i, local, glob) for i in node.items)

    def eval_DictExpr(self, node: S.DictExpr, local, glob) -> dict[Any, Any]:
        out = {}
        for k, v in node.pairs:
            key = self.evaluate(k, local, glob)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise CompileError(f"a dict key must be a constant, not {describe_value(key)}",
                                   k.span)
            out[key] = self.evaluate(v, local, glob)
        return out

    def eval_Attribute(self, node: S.Attribute, local, glob) -> Any:
        obj = self.evaluate(node.value, local, glob)
        return self.get_attr(obj, node.attr, node.span)

    def get_attr(self, obj: Any, name: str, span: Span) -> Any:
        from pxl.dataframe import DataFrame, GroupBy

        if isinstance(obj, PxModule):
            return self.px_attr(name, span)
        if isinstance(obj, DataFrame | GroupBy):
            return obj.attribute(self, name, span)
        raise CompileError(f"{describe_value(obj)} has no attribute {name!r}", span)

    def px_attr(self, name: str, span: Span) -> Any:
        from pxl.builtins import PX_BUILTINS

        if name in PX_BUILTINS:
            return PX_BUILTINS[name]
        fn = REGISTRY.lookup(name)
        if fn is not None:
            return PxFunction(fn)
        known = sorted(set(PX_BUILTINS) | REGISTRY.names())
        raise CompileError(f"px has no function {name!r}", span,
                           hint=closest(name, known) or "see docs/reference.md for the functions")

    def eval_Subscript(self, node: S.Subscript, local, glob) -> Any:
        from pxl.dataframe import Ctx, DataFrame

        obj = self.evaluate(node.value, local, glob)
        index = self.evaluate(node.index, local, glob)
        if isinstance(obj, DataFrame | Ctx):
            return obj.subscript(self, Arg(index, node.index.span), node.span)
        if isinstance(obj, list | tuple) and isinstance(index, int) and not isinstance(index, bool):
            if -len(obj) <= index < len(obj):
                return obj[index]
            raise CompileError(f"index {index} is out of range ({len(obj)} items)", node.index.span)
        if isinstance(obj, dict):
            if index in obj:
                return obj[index]
            raise CompileError(f"key {index!r} is not in the dict", node.index.span)
        raise CompileError(f"cannot index {describe_value(obj)} with {describe_value(index)}",
                           node.span)

    def eval_Call(self, node: S.Call, local, glob) -> Any:
        func = self.evaluate(node.func, local, glob)
        args = [Arg(self.evaluate(a, local, glob), a.span) for a in node.args]
        kwargs = {k.name: Arg(self.evaluate(k.value, local, glob), k.value.span) for k in node.keywords}
        return self.call(func, args, kwargs, node.span)

    def call(self, func: Any, args: list[Arg], kwargs: dict[str, Arg], span: Span) -> Any:
        if isinstance(func, Builtin):
            return func.impl(self, args, kwargs, span)
        if isinstance(func, BoundMethod):
            return func.obj.call_method(self, func.name, args, kwargs, span)
        if isinstance(func, PxFunction):
            return self.call_px(func, args, kwargs, span)
        if isinstance(func, UserFunction):
            return self.call_user(func, args, kwargs, span)
        raise CompileError(f"{describe_value(func)} cannot be called", span)

    def call_px(self, func: PxFunction, args: list[Arg], kwargs: dict[str, Arg], span: Span) -> Any:
        fn = func.fn
        if kwargs:
            name = next(iter(kwargs))
            raise CompileError(f"px.{fn.name} takes no keyword arguments (got {name}=)",
                               kwargs[name].span)
        if isinstance(fn, CompileTimeFunction):
            return self.call_compile_time(fn, args, span)
        if isinstance(fn, ScalarFunction):
            return self.apply(fn.name, args, span)
        raise CompileError(f"px.{fn.name} is an aggregate: use it inside agg()", span,
                           hint=f"df.groupby('col').agg(out=('col', px.{fn.name}))")

    def call_compile_time(self, fn: CompileTimeFunction, args: list[Arg], span: Span) -> Any:
        want = len(fn.signatures[0].args)
        if len(args) != want:
            raise CompileError(f"px.{fn.name} takes {want} argument(s), got {len(args)}", span,
                               hint=f"write {fn.usage}")
        types = [_constant_type(a.value) for a in args]
        if None in types or not any(s.bind(types) is not None for s in fn.signatures):
            for i, (a, t) in enumerate(zip(args, types, strict=True)):  # name the bad argument
                accepted = [s.args[i] for s in fn.signatures]
                if t is None or not any(w in (t.name, "ANY", "T") or (
                        t is DataType.INT64 and w == "FLOAT64") for w in accepted):
                    kinds = dict.fromkeys(_KIND.get(w, "a constant") for w in accepted)
                    raise CompileError(f"px.{fn.name} needs {' or '.join(kinds)}, not "
                                       f"{describe_value(a.value)}", a.span,
                                       hint=f"write {fn.usage}")
            raise CompileError(f"px.{fn.name} does not take these arguments", span,
                               hint=f"write {fn.usage}")
        try:
            return fn.impl(self, *(a.value for a in args))
        except ArgumentError as exc:
            raise CompileError(f"px.{fn.name}: {exc}", args[exc.position].span,
                               hint=f"write {fn.usage}") from None

    def now_time(self) -> TimeValue:
        """The time the script runs at, as a value: the plan depends on it."""
        if self.reads is not None:
            self.reads.now = True
        return TimeValue(self.now)

    def window_time(self, offset: int) -> int:
        """The time ``offset`` ns from the run's, for a window that keeps it relative
        (Scan.relative_to): the plan cache moves such windows with the time."""
        return self.now + offset

    def call_user(self, func: UserFunction, args: list[Arg], kwargs: dict[str, Arg],
                  span: Span) -> Any:
        node = func.node
        if self.depth >= MAX_CALL_DEPTH:
            raise CompileError(f"calls nest more than {MAX_CALL_DEPTH} deep (recursion?) in "
                               f"{node.name}", span, hint="PxL functions cannot recurse")
        spec = [(p.name, REQUIRED if p.default is None else p.default) for p in node.params]
        bound = self.bind(node.name, args, kwargs, spec, span, evaluate_defaults=func.globals)
        local: dict[str, Any] = {}
        for p in node.params:
            arg = bound[p.name]
            if p.annotation is not None:
                self.check_annotation(p, arg, func.globals)
            local[p.name] = arg.value
        self.depth += 1
        try:
            self.exec_block(node.body, local, func.globals, in_function=True)
        except _Return as ret:
            return ret.value
        finally:
            self.depth -= 1
        return None

    def check_annotation(self, param: S.Param, arg: Arg, glob: dict[str, Any]) -> None:
        from pxl.dataframe import DataFrame

        want = self.evaluate(param.annotation, glob, glob)  # type: ignore[arg-type]
        value = arg.value
        if isinstance(want, TypeValue):
            ok = isinstance(value, want.python) and not (
                isinstance(value, bool) and bool not in want.python)
        elif isinstance(want, Builtin) and want.name == "DataFrame":
            ok = isinstance(value, DataFrame)
        else:
            ok = True  # semantic-type annotations (px.Service …) accept any value
        if not ok:
            wanted = want.name if isinstance(want, TypeValue | Builtin) else str(want)
            raise CompileError(f"argument {param.name!r} must be {wanted}, not "
                               f"{describe_value(value)}", arg.span)

    def bind(self, fname: str, args: list[Arg], kwargs: dict[str, Arg],
             spec: Sequence[tuple[str, Any]], span: Span,
             evaluate_defaults: dict[str, Any] | None = None) -> dict[str, Arg]:
        """Match arguments to parameters ``[(name, default or REQUIRED)]``."""
        names = [n for n, _ in spec]
        if len(args) > len(spec):
            raise CompileError(f"{fname} takes at most {len(spec)} positional argument(s), "
                               f"got {len(args)}", args[len(spec)].span,
                               hint=f"parameters: {', '.join(names) or 'none'}")
        bound = dict(zip(names, args, strict=False))
        for key, arg in kwargs.items():
            if key not in names:
                raise CompileError(f"{fname} has no parameter {key!r}", arg.span,
                                   hint=closest(key, names) or f"parameters: {', '.join(names)}")
            if key in bound:
                raise CompileError(f"{fname} got {key!r} twice", arg.span)
            bound[key] = arg
        for name, default in spec:
            if name in bound:
                continue
            if default is REQUIRED:
                raise CompileError(f"{fname} needs the argument {name!r}", span)
            if isinstance(default, S.Expr):
                assert evaluate_defaults is not None
                default = self.evaluate(default, evaluate_defaults, evaluate_defaults)
            bound[name] = Arg(default, span)
        return bound

    # --- operators
    def eval_BinOp(self, node: S.BinOp, local, glob) -> Any:
        left = Arg(self.evaluate(node.left, local, glob), node.left.span)
        right = Arg(self.evaluate(node.right, local, glob), node.right.span)
        fn, op = _BINOPS[node.op]
        return self.operate(fn, op, node.op, [left, right], node.span)

    def eval_Compare(self, node: S.Compare, local, glob) -> Any:
        left = Arg(self.evaluate(node.left, local, glob), node.left.span)
        right = Arg(self.evaluate(node.right, local, glob), node.right.span)
        fn, op = _COMPARE[node.op]
        return self.operate(fn, op, node.op, [left, right], node.span)

    def eval_BoolOp(self, node: S.BoolOp, local, glob) -> Any:
        left = Arg(self.evaluate(node.left, local, glob), node.left.span)
        right = Arg(self.evaluate(node.right, local, glob), node.right.span)
        if not _is_column(left.value) and not _is_column(right.value):
            if node.op == "and":
                return left.value and right.value
            return left.value or right.value
        return self.apply(_BOOL[node.op], [left, right], node.span, symbol=node.op)

    def eval_Not(self, node: S.Not, local, glob) -> Any:
        arg = Arg(self.evaluate(node.operand, local, glob), node.operand.span)
        if not _is_column(arg.value):
            return not arg.value
        return self.apply("logicalNot", [arg], node.span, symbol="not")

    def eval_UnaryOp(self, node: S.UnaryOp, local, glob) -> Any:
        arg = Arg(self.evaluate(node.operand, local, glob), node.operand.span)
        if node.op == "+":
            if not _is_number(arg.value) and not _is_column(arg.value):
                raise CompileError(f"cannot apply unary + to {describe_value(arg.value)}", node.span)
            return arg.value
        if _is_number(arg.value):
            return -arg.value
        return self.apply("negate", [arg], node.span, symbol="-")

    def operate(self, fn: str, op: Callable[[Any, Any], Any], symbol: str, args: list[Arg],
                span: Span) -> Any:
        """A binary operator on constants (folded here) or columns (a plan expression)."""
        a, b = args[0].value, args[1].value
        if not _is_column(a) and not _is_column(b):
            return self.fold(op, symbol, args, span)
        return self.apply(fn, args, span, symbol=symbol)

    def fold(self, op: Callable[[Any, Any], Any], symbol: str, args: list[Arg], span: Span) -> Any:
        a, b = args[0].value, args[1].value
        if isinstance(a, TimeValue) or isinstance(b, TimeValue):
            return _fold_time(op, symbol, a, b, span)
        if symbol == "/" and _is_number(a) and _is_number(b):
            if b == 0:
                raise CompileError("division by zero", args[1].span)
            return a / b
        if symbol == "%" and _is_number(b) and b == 0:
            raise CompileError("modulo by zero", args[1].span)
        if symbol in ("+", "-", "*", "/", "%") and not (
                (_is_number(a) and _is_number(b)) or (symbol == "+" and isinstance(a, str)
                                                      and isinstance(b, str))):
            raise CompileError(f"cannot apply '{symbol}' to {describe_value(a)} and "
                               f"{describe_value(b)}", span)
        try:
            return op(a, b)
        except TypeError:
            raise CompileError(f"cannot apply '{symbol}' to {describe_value(a)} and "
                               f"{describe_value(b)}", span) from None

    def apply(self, name: str, args: list[Arg], span: Span, symbol: str | None = None) -> Any:
        """A registry scalar function on columns and/or constants → a typed column expression.

        Calls on constants only are left to the optimizer's constant folding."""
        fn = REGISTRY.scalar(name)
        exprs = [self.to_expr(a, fn, i) for i, a in enumerate(args)]
        if fn.normalize is not None:
            consts = [e.value if isinstance(e, Literal) else None for e in exprs]
            try:
                new = fn.normalize(consts)
            except ArgumentError as exc:
                raise CompileError(f"px.{fn.name}: {exc}", args[exc.position].span) from None
            exprs = [literal_of(n, e.span) if isinstance(e, Literal) and n != e.value else e
                     for e, n in zip(exprs, new, strict=True)]  # type: ignore[misc]
        for i in fn.literal_args:
            if i < len(exprs) and not isinstance(exprs[i], Literal):
                raise CompileError(f"px.{fn.name}: argument {i + 1} must be a constant",
                                   args[i].span)
        try:
            ctype = fn.resolve([e.ctype for e in exprs])
        except TypeMismatch as exc:
            raise self.type_error(fn, symbol, args, exprs, span, exc) from None
        call = Call(fn.name, tuple(exprs), ctype, span=span)
        depth = 1 + max((self.expr_depths.get(id(e), (1,))[0] for e in exprs), default=0)
        if depth > MAX_EXPR_DEPTH:
            raise CompileError(f"the expression is nested more than {MAX_EXPR_DEPTH} deep", span,
                               hint="split it into steps: df.part = ...; df.x = df.part + ...")
        self.expr_depths[id(call)] = (depth, call)
        return ColumnValue(call)

    def to_expr(self, arg: Arg, fn: ScalarFunction, position: int = -1) -> Expr:
        value = arg.value
        if isinstance(value, ColumnValue):
            return value.expr
        if isinstance(value, list | tuple) and position in fn.literal_args:
            return self.list_literal(arg, fn)
        lit = literal_of(value, arg.span)
        if lit is None:
            raise CompileError(f"px.{fn.name} cannot take {describe_value(value)}", arg.span)
        return lit

    def list_literal(self, arg: Arg, fn: ScalarFunction) -> Literal:
        """A constant list argument (px.equals_any's values): a Literal holding a tuple, typed
        by its elements (ints and floats together are FLOAT64)."""
        items = [literal_of(v, arg.span) for v in arg.value]
        if not items:
            raise CompileError(f"px.{fn.name} cannot take an empty list", arg.span)
        kinds = {i.dtype if i is not None and i.dtype is not DataType.TIME64NS else None
                 for i in items}
        if kinds == {DataType.INT64, DataType.FLOAT64}:
            kinds = {DataType.FLOAT64}
        if None in kinds or len(kinds) != 1:
            raise CompileError(f"px.{fn.name} needs a list of constants of one type (strings, "
                               "ints, floats or bools)", arg.span)
        dtype = kinds.pop()
        values = tuple(float(i.value) if dtype is DataType.FLOAT64 else i.value
                       for i in items)  # type: ignore[union-attr]
        return Literal(values, ColumnType(dtype), span=arg.span)

    def type_error(self, fn: ScalarFunction, symbol: str | None, args: list[Arg],
                   exprs: list[Expr], span: Span, exc: TypeMismatch) -> CompileError:
        shown = [f"{_show(e)} ({e.dtype})" for e in exprs]
        if symbol is not None and len(exprs) == 2:
            message = f"cannot apply '{symbol}' to {shown[0]} and {shown[1]}"
            hint = None
            types = {e.dtype for e in exprs}
            if DataType.STRING in types and types & {DataType.INT64, DataType.FLOAT64}:
                hint = ("compare a string column with a string (in quotes), a number with a "
                        "number" if symbol in _COMPARE else "arithmetic needs numbers on both sides")
            return CompileError(message, span, hint=hint)
        if symbol is not None:
            return CompileError(f"cannot apply '{symbol}' to {shown[0]}", span)
        return CompileError(str(exc), span)

    # --- output
    def add_sink(self, relation: Relation, name: str, options: tuple[tuple[str, Any], ...],
                 span: Span) -> None:
        taken = {s.name for s in self.sinks}
        unique, n = name, 1
        while unique in taken:
            unique, n = f"{name}_{n}", n + 1
        self.sinks.append(Sink(relation, unique, options, span=span))



_KIND = {"INT64": "a number", "FLOAT64": "a number", "STRING": "a string",
         "BOOLEAN": "a bool", "TIME64NS": "a time"}


def _constant_type(v: Any) -> DataType | None:
    """The data type of a compile-time constant given to a compile-time function, or None."""
    lit = literal_of(v)
    return lit.dtype if lit is not None else None


def _is_column(v: Any) -> bool:
    return isinstance(v, ColumnValue)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _show(e: Expr) -> str:
    if isinstance(e, ColumnRef):
        return f"column {e.name!r}"
    if isinstance(e, Literal):
        return str(e)
    return f"'{e}'"


def _fold_time(op, symbol: str, a: Any, b: Any, span: Span) -> Any:
    ta, tb = isinstance(a, TimeValue), isinstance(b, TimeValue)
    if symbol in _COMPARE_SYMBOLS:
        x = a.ns if ta else a
        y = b.ns if tb else b
        if _is_number(x) and _is_number(y):
            return op(x, y)
    elif symbol == "-" and ta and tb:
        return a.ns - b.ns
    elif symbol in ("+", "-") and ta and isinstance(b, int) and not isinstance(b, bool):
        return TimeValue(op(a.ns, b))
    elif symbol == "+" and tb and isinstance(a, int) and not isinstance(a, bool):
        return TimeValue(a + b.ns)
    raise CompileError(f"cannot apply '{symbol}' to {describe_value(a)} and {describe_value(b)}",
                       span, hint="add or subtract durations such as px.minutes(5) to a time")


_COMPARE_SYMBOLS = set(_COMPARE)


def closest(name: str, candidates: Sequence[str]) -> str | None:
    """'did you mean …?' for a mistyped name, or None."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    if not match:
        lowered = {c.lower(): c for c in candidates}
        if name.lower() in lowered:
            match = [lowered[name.lower()]]
    return f"did you mean {match[0]!r}?" if match else None


@contextlib.contextmanager
def _recursion_room(frames: int = 6_000) -> Iterator[None]:
    """The evaluator recurses once or twice per level of an expression; the parser lets
    expressions nest up to pxl.parser.MAX_EXPR_DEPTH, which needs more than Python's default."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, frames))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def compile_module(module: S.Module, catalog: Catalog, *, now: int,
                   filename: str = "<script>", args: dict[str, Any] | None = None,
                   vis: VisSpec | None = None, reads: CompileReads | None = None) -> Plan:
    """Evaluate a parsed script into a plan; raises CompileError/PlanError with spans.

    ``args`` are script argument values by name (raw text or Python values; converted to each
    argument's declared type); ``vis`` a Pixie vis.json whose widgets become outputs; ``reads``
    collects what the compile read of the catalog and the time (for the plan cache)."""
    def find() -> dict[str, ScriptArg]:
        return {a.name: a for a in declared_args(module, vis)}

    declared: dict[str, ScriptArg] | Callable[[], dict[str, ScriptArg]] = \
        find() if args else find
    values = {}
    for name, raw in (args or {}).items():
        assert isinstance(declared, dict)
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise ArgError(f"the script has no argument {name!r}", hint=f"arguments: {known}")
        values[name] = convert(declared[name], raw)
    if reads is not None:
        catalog = RecordingCatalog(catalog, reads)
    compiler = Compiler(catalog, now, filename, args=values, declared=declared, vis=vis,
                        reads=reads)
    try:
        with _recursion_room():
            return compiler.run_module(module)
    except RecursionError:
        raise CompileError("the script is nested too deeply to compile",
                           Span(filename, 1, 1)) from None


def new_env() -> dict[str, Any]:
    """The names a script starts with (``str``, ``int``, ``float``, ``bool``)."""
    return dict(_BUILTIN_TYPES)


def compile_interactive(module: S.Module, env: dict[str, Any], catalog: Catalog, *, now: int,
                        filename: str = "<input>") -> tuple[Plan, Any]:
    """Evaluate one REPL input into ``env``, where names persist from input to input.

    Returns the plan of the input's ``px.display`` calls and the value of its last statement
    when that is an expression (else None). ``env`` is changed in place, also when an error is
    raised: the caller keeps a copy to restore. ``px.arg(...)`` gives its default."""
    implicit = S.Module((S.Import("px", None, span=module.span), *module.body), span=module.span)
    declared = {a.name: a for a in declared_args(implicit)}  # `import px` is implicit
    compiler = Compiler(catalog, now, filename, declared=declared)
    body, value = module.body, None
    try:
        with _recursion_room():
            if body and isinstance(body[-1], S.ExprStmt):
                compiler.exec_block(body[:-1], env, env, in_function=False)
                value = compiler.evaluate(body[-1].expr, env, env)
            else:
                compiler.exec_block(body, env, env, in_function=False)
    except RecursionError:
        raise CompileError("the input is nested too deeply to compile",
                           Span(filename, 1, 1)) from None
    return Plan(tuple(compiler.sinks)), value
