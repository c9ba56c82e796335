"""The parser refuses hostile or malformed text with one located line, and never evaluates it.

Every refusal must be a single :class:`DeriveError` (no chained exception,
no traceback text, no line breaks) and, where it applies, name the column.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from derive import DeriveError, derive
from derive.parse import parse

CANARY = "/tmp/derive_canary"

#: Strings that would have a side effect if anything evaluated them. ``{p}`` is
#: the canary path as bare text, ``{c}`` the same path as a quoted literal.
SIDE_EFFECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "import-system": ("__import__('os').system('touch {p}')", ("column 1",)),
    "open-write": ("open({c}, 'w').write('x')", ("column 1",)),
    "open-bare": ("open({c}, 'w')", ("column 1", "unknown function 'open'")),
    "pathlib-touch": ("__import__('pathlib').Path({c}).touch()", ("column 1",)),
    "subprocess": ("__import__('subprocess').run(['touch', {c}])", ("column 1",)),
    "getattr-system": ("getattr(__import__('os'), 'system')('touch {p}')", ("column 1",)),
    "os-system-touch": ("os.system('touch {p}')", ("column 1", "unknown function 'os.system'")),
    "eval-open": ("eval(\"open({c}, 'w')\")", ("column 1", "unknown function 'eval'")),
    "exec-open": ("exec(\"open({c}, 'w')\")", ("column 1", "unknown function 'exec'")),
    "lambda-open": ("(lambda: open({c}, 'w'))()", ("column 1",)),
    "comprehension-open": ("[open({c}, 'w') for c in x]", ("column 1", "comprehension")),
    "fstring-open": ("f\"{{open({c}, 'w')}}\"", ("column 1", "f-string")),
    "ifexp-open": ("x if open({c}, 'w') else y", ("column 1", "conditional")),
    "walrus-open": ("(f := open({c}, 'w'))", ("column 2", "assignment")),
    "and-open": ("x and open({c}, 'w')", ("column 1", "boolean")),
    "operand-open": ("sum(x) + open({c}, 'w').write('1')", ("column 10",)),
    "subscript-open": ("x[open({c}, 'w').write('1')]", ("column 1", "subscript")),
    "keyword-open": ("sum(x, axis=open({c}, 'w'))", ("column 13", "axis must be a whole number")),
    "starred-open": ("sum(*open({c}, 'w'))", ("column 1", "starred")),
    "argument-open": ("norm(x, open({c}, 'w'))", ("column 1", "norm() takes 1 argument")),
    "np-save": ("np.save({c}, x)", ("column 1", "unknown function 'np.save'")),
    "numpy-savetxt": ("numpy.savetxt({c}, x)", ("column 1", "unknown function 'numpy.savetxt'")),
}


def hostile(template: str, path: str) -> str:
    return template.format(p=path, c=repr(path))


def bad(text: object, *fragments: str, shapes: object = None, id: str | None = None) -> object:
    return pytest.param(text, shapes, fragments, id=id)


CONFLICT_AX_Y = {"A": (3, 4), "y": (5,)}
CONFLICT_ABC = {"A": (2, 3), "B": (3, 4), "C": (5, 6)}

BAD = [
    *(bad(hostile(t, CANARY), *f, id=name) for name, (t, f) in SIDE_EFFECTS.items()),
    # --- escapes, calls and attributes
    bad("open('/etc/passwd')", "column 1", "unknown function 'open'"),
    bad("getattr(x, '__class__')", "column 1", "unknown function 'getattr'"),
    bad("x.__class__", "column 1", "__class__"),
    bad("x.__class__.__base__.__subclasses__()", "column 1"),
    bad("np.linalg.norm.__call__(x)", "column 1", "unknown function"),
    bad("eval('1')", "column 1", "unknown function 'eval'"),
    bad("exec('1')", "column 1", "unknown function 'exec'"),
    bad("os.system('ls')", "column 1", "unknown function 'os.system'"),
    bad("np.linalg.foo(x)", "column 1", "unknown function 'np.linalg.foo'"),
    bad("np.random.rand(3)", "column 1", "unknown function 'np.random.rand'"),
    bad("np.softmax(x)", "column 1", "unknown function 'np.softmax'"),
    bad("(lambda: 1)()", "column 1"),
    bad("sum(x)(y)", "column 1"),
    bad("x.T.shape", "column 1", "shape"),
    bad("x + np.exp", "column 5", "np.exp"),
    bad("exp", "column 1", "function"),
    bad("__builtins__", "column 1", "__builtins__"),
    bad("é + x", "column 1", "'é'"),
    bad("x + y + é", "column 9", "'é'"),
    # --- arguments
    bad("norm(x, 2)", "column 1", "norm() takes 1 argument, got 2"),
    bad("outer(x)", "column 1", "outer() takes 2 arguments, got 1"),
    bad("sum(x, dtype=float)", "column 8", "keyword argument 'dtype'"),
    bad("sum(*x)", "column 1", "starred"),
    # --- syntax outside the grammar
    bad("lambda: 1", "column 1", "lambda"),
    bad("[c for c in x]", "column 1", "comprehension"),
    bad("(c for c in x)", "column 1", "generator"),
    bad('f"{x}"', "column 1", "f-string"),
    bad("x if y else z", "column 1", "conditional"),
    bad("x < y", "column 1", "comparison"),
    bad("x and y", "column 1", "boolean"),
    bad("not x", "column 1", "operator"),
    bad("~x", "column 1", "operator"),
    bad("x % y", "column 1", "operator"),
    bad("x // y", "column 1", "operator"),
    bad("x << 1", "column 1", "operator"),
    bad("x[0]", "column 1", "subscript"),
    bad("x[::-1]", "column 1", "subscript"),
    bad("x + y[0]", "column 5", "subscript"),
    bad("{1: 2}", "column 1", "dict"),
    bad("{x}", "column 1", "set"),
    bad("(x, y)", "column 1", "tuple"),
    bad("[x, y]", "column 1", "list"),
    bad("(x := 1)", "column 2", "assignment"),
    bad("await x", "column 1", "await"),
    bad("(yield x)", "column 2", "yield"),
    bad("yield x", "column 1"),
    bad("x; y", "column 2", "syntax error"),
    bad("import os", "column 1", "syntax error"),
    bad("def f(): pass", "column 1", "syntax error"),
    bad("x = 1", "column 3", "syntax error"),
    bad("x +", "syntax error"),
    bad("\ufeffx", "column 1", "syntax error"),
    # --- constants
    bad("'abc'", "column 1", "str"),
    bad("b'x'", "column 1", "bytes"),
    bad("1j", "column 1", "complex"),
    bad("True", "column 1", "bool"),
    bad("None", "column 1", "None"),
    bad("...", "column 1"),
    bad("1e400", "column 1", "out of range"),
    bad("x ** 1e400", "column 6", "out of range"),
    bad(str(10**100), "column 1", "out of range", id="10**100-literal"),
    bad("x ** y", "column 6", "exponent"),
    bad("2 ** x", "column 6", "exponent"),
    # --- shapes
    bad("A @ x + y", "column 1", "shape conflict", "'A @ x'", "'y'", shapes=CONFLICT_AX_Y),
    bad("A @ B @ C", "column 1", "shape conflict", "'A @ B'", "'C'", shapes=CONFLICT_ABC),
    bad("inv(x)", "column 1", "shape conflict", "inv(x)", "'x'"),
    bad("det(x)", "column 1", "shape conflict"),
    bad("x @ 3", "column 1", "shape conflict", "'3'"),
    bad("x @ y @ z", "column 1", "shape conflict"),
    bad("x", "out of range", shapes={"x": (0,)}),
    bad("x", "__class__", shapes={"__class__": ()}),
    bad("x", "dimension name", shapes={"x": ("__class__",)}),
    bad("x", "'x'", shapes={"x": (1.5,)}),
    bad("x", "'x'", shapes={"x": (1, 2, 3, 4, 5)}),
    bad("x", "shape", shapes=["x"], id="shapes-not-a-mapping"),
    bad("x", "'x'", shapes={"x": b"n"}, id="shape-as-bytes"),
    # --- size, emptiness, control characters
    bad("", "empty", id="empty"),
    bad(" \t\n  ", "empty", id="whitespace"),
    bad("x\x00", "column 2", "NUL", id="nul"),
    bad("\x00", "column 1", "NUL", id="nul-alone"),
    bad("x" * 5000, "5000", id="5000-chars"),
    bad("(" * 201 + "x" + ")" * 201, "nested", id="201-parentheses"),
    bad("exp(" * 200 + "x" + ")" * 200, "nested", id="200-calls"),
    bad("-" * 1000 + "x", "nested", id="1000-minus"),
    bad(None, "string", id="not-a-string-None"),
    bad(b"x", "string", id="not-a-string-bytes"),
    # --- locations across lines and around whitespace
    bad("(x +\n y[0])", "line 2", "column 2", "subscript", id="line-2-subscript"),
    bad("(x +\n $)", "line 2", "column 2", "syntax error", id="line-2-bad-token"),
    bad("  x + y[0]", "column 7", "subscript", id="leading-spaces"),
]


def check_message(err: DeriveError, fragments: tuple[str, ...]) -> None:
    message = str(err)
    assert message.strip(), "empty message"
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"
    assert "Traceback" not in message
    assert err.__cause__ is None, f"chained from {err.__cause__!r}"
    assert err.__context__ is None or err.__suppress_context__, f"raised while handling {err.__context__!r}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


@pytest.mark.parametrize(("text", "shapes", "fragments"), BAD)
def test_refused(text: str, shapes: object, fragments: tuple[str, ...]) -> None:
    with pytest.raises(DeriveError) as info:
        parse(text, shapes)
    check_message(info.value, fragments)


def test_table_is_large() -> None:
    assert len(BAD) >= 40


@pytest.mark.parametrize("name", sorted(SIDE_EFFECTS))
def test_no_side_effects(name: str, tmp_path: Path) -> None:
    canary = tmp_path / "derive_canary"
    shared_before = Path(CANARY).exists()
    text = hostile(SIDE_EFFECTS[name][0], str(canary))
    with pytest.raises(DeriveError) as info:
        derive(text, "x")
    check_message(info.value, ())
    assert not canary.exists(), f"{text!r} was evaluated"
    assert shared_before or not Path(CANARY).exists(), f"{text!r} created {CANARY}"


@pytest.mark.parametrize(
    ("text", "shapes", "parts"),
    [
        ("A @ x + y", CONFLICT_AX_Y, ["'A @ x' has shape (3,)", "'y' has shape (5,)"]),
        ("A @ B @ C", CONFLICT_ABC, ["'A @ B' has shape (2, 4)", "'C' has shape (5, 6)"]),
        ("A @ B", {"A": (2, 3), "B": (4, 5)}, ["'A' has shape (2, 3)", "'B' has shape (4, 5)"]),
        ("A @ x", {"A": ("p", "q"), "x": ("r",)}, ["'A' has shape (p, q)", "'x' has shape (r,)"]),
        ("x + y", {"x": (3,), "y": (4,)}, ["'x' has shape (3,)", "'y' has shape (4,)"]),
        ("x @ 3", None, ["'x' has shape (", "'3' has shape ()"]),
    ],
)
def test_shape_conflict_names_both_operands(text: str, shapes: dict | None, parts: list[str]) -> None:
    with pytest.raises(DeriveError) as info:
        parse(text, shapes)
    check_message(info.value, ("column 1", "shape conflict", *parts))


@pytest.mark.parametrize("wrt", ["z", ("x", "z"), "__import__('os')"])
def test_unknown_wrt_is_named(wrt: str | tuple[str, str]) -> None:
    name = wrt if isinstance(wrt, str) else wrt[1]
    with pytest.raises(DeriveError) as info:
        derive("norm(A @ x - b)**2", wrt)
    check_message(info.value, (f"'{name}'",))


@pytest.mark.parametrize("text", ["sum(x) / 0", "0 ** -1 * sum(x)", "x / 0"])
def test_division_by_zero_is_a_derive_error(text: str) -> None:
    with pytest.raises(DeriveError) as info:
        derive(text, "x")
    check_message(info.value, ())


# ----- accepted text -----


@pytest.mark.parametrize(
    ("text", "rank", "names"),
    [
        ("np.linalg.norm(A @ x - b) ** 2", 0, ["A", "x", "b"]),
        ("np.tanh(W @ x + b)", 1, ["W", "x", "b"]),
        ("x @ A @ x", 0, ["x", "A"]),
        ("(A @ x - b).T @ (A @ x - b)", 0, ["A", "x", "b"]),
        ("-x", 1, ["x"]),
        ("+x", 1, ["x"]),
        ("2.5 * x", 1, ["x"]),
        ("x / 2", 1, ["x"]),
        ("numpy.linalg.inv(A) @ x", 1, ["A", "x"]),
        ("sum(softmax(x) * log(x))", 0, ["x"]),
        ("logsumexp(x) + trace(A.T @ A)", 0, ["x", "A"]),
        ("(" * 200 + "x" + ")" * 200, 1, ["x"]),  # parentheses add no nesting work
    ],
)
def test_accepted(text: str, rank: int, names: list[str]) -> None:
    p = parse(text)
    assert len(p.expr.shape) == rank
    assert list(p.shapes) == names


def shapes_of(text: str, shapes: dict | None = None) -> dict[str, tuple[str, ...]]:
    return {name: tuple(str(d) for d in dims) for name, dims in parse(text, shapes).shapes.items()}


def test_inferred_shapes() -> None:
    assert shapes_of("norm(A @ x - b)**2") == {"A": ("m", "n"), "x": ("n",), "b": ("m",)}
    assert shapes_of("x @ A @ x") == {"x": ("m",), "A": ("m", "m")}


def test_declared_sizes_propagate() -> None:
    p = parse("norm(A @ x - b)**2", {"A": (4, 3)})
    assert {n: p.at_declared(s) for n, s in p.shapes.items()} == {"A": (4, 3), "x": (3,), "b": (4,)}


def test_declared_names_are_kept() -> None:
    assert shapes_of("norm(A @ x - b)**2", {"A": ("p", "q")}) == {"A": ("p", "q"), "x": ("q",), "b": ("p",)}


def test_declared_scalar() -> None:
    assert shapes_of("c * x", {"c": ()}) == {"c": (), "x": ("m",)}


# ----- nothing evaluates user text -----

PARSE_SOURCE = Path(inspect.getsourcefile(parse) or "")


@pytest.mark.parametrize("needle", ["eval(", "exec(", "sympify(", "parse_expr(", "compile("])
def test_parse_source_has_no_evaluator(needle: str) -> None:
    source = PARSE_SOURCE.read_text()
    # re.compile of a literal pattern compiles no user text; checked below.
    hits = [m.start() for m in re.finditer(re.escape(needle), source) if source[: m.start()][-3:] != "re."]
    assert not hits, f"{needle!r} appears in {PARSE_SOURCE.name}"


def test_parse_source_regexes_are_literal() -> None:
    tree = ast.parse(PARSE_SOURCE.read_text())
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "compile":
            assert all(isinstance(a, ast.Constant) for a in n.args), ast.unparse(n)
