"""The engine behind the page: requests in, JSON-ready dicts out.

Nothing here knows about HTTP. :class:`Engine` reads a request (a dict
decoded from JSON), calls :func:`derive.derive`, :func:`derive.check` and
:func:`derive.writeup.documents` with it, and returns plain dicts and
strings. Bad input raises :class:`~derive.errors.DeriveError` with the
same one line the command line prints. Nothing is written anywhere.

The engine keeps no module-level state, so requests run side by side;
symmetric and diagonal variables and the proof's CPU-time budget
(``max_seconds``) are passed to it as they come.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .. import check as _check
from .. import derive as _derive
from ..cli import default_name, parse_shape
from ..errors import DeriveError
from ..writeup import FORMATS, documents, sections

MEDIA = MappingProxyType({"tex": "application/x-tex", "md": "text/markdown", "py": "text/x-python"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,60}")


@dataclass(frozen=True)
class Request:
    """One derivation asked for: hashable, so that results can be kept."""

    expr: str
    wrt: tuple[str, ...]
    shapes: tuple[tuple[str, tuple[int | str, ...]], ...] | None
    layout: str | None
    symmetric: tuple[str, ...] = ()
    diagonal: tuple[str, ...] = ()


# ----- reading a request -----


def _text(body: Mapping[str, Any], key: str, what: str, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise DeriveError(f"'{key}' must be a string ({what})")
    return value


def _names(value: object, key: str) -> tuple[str, ...]:
    """'x', 'x, x', 'x x' or ['x', 'x'] -> ('x', 'x')."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(n for n in re.split(r"[\s,]+", value) if n)
    if isinstance(value, list) and all(isinstance(n, str) for n in value):
        return tuple(n.strip() for n in value if n.strip())
    raise DeriveError(f"'{key}' must be a name, names separated by commas, or a list of names")


def _shapes(value: object) -> tuple[tuple[str, tuple[int | str, ...]], ...] | None:
    """'A=4,3; x=3' (as ``--shape`` takes them), or {"A": [4, 3], "x": [3]}."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        parts = [p.strip() for p in re.split(r"[;\n]", value) if p.strip()]
        return tuple(parse_shape(p) for p in parts) or None
    if not isinstance(value, dict):
        raise DeriveError("'shapes' must be text like 'A=4,3; x=3' or an object like {\"A\": [4, 3]}")
    out = []
    for name, dims in value.items():
        if isinstance(dims, str):
            out.append(parse_shape(f"{name}={dims}"))
        elif isinstance(dims, list) and all(isinstance(d, int | str) and not isinstance(d, bool) for d in dims):
            out.append((name, tuple(dims)))
        else:
            raise DeriveError(f"the shape of {name!r} must be a list of sizes and dimension names, e.g. [4, 3]")
    return tuple(out)


def read(body: object, value: bool = False) -> Request:
    """The derivation a JSON body asks for; a DeriveError names the field that is wrong.

    ``value`` allows an empty 'wrt' (a claim about the expression's value).
    """
    if not isinstance(body, dict):
        raise DeriveError("the request must be a JSON object with 'expr' and 'wrt'")
    expr = _text(body, "expr", "the expression, in numpy syntax")
    wrt = _names(body.get("wrt"), "wrt")
    if not wrt and not value:
        raise DeriveError("'wrt' is empty: name the variable to differentiate by (two names for a Hessian)")
    layout = body.get("layout") or None
    if layout is not None and not isinstance(layout, str):
        raise DeriveError("'layout' must be 'numerator', 'denominator' or empty")
    return Request(
        expr=expr,
        wrt=wrt,
        shapes=_shapes(body.get("shapes")),
        layout=layout,
        symmetric=_names(body.get("symmetric"), "symmetric"),
        diagonal=_names(body.get("diagonal"), "diagonal"),
    )


# ----- the engine -----


class Engine:
    """derive(), check() and the write-ups behind one object, with results kept for downloads.

    The engine is thread-safe, so calls run side by side. ``cache`` bounds the
    number of derivations kept (0 keeps none); a proof that did not finish in
    its time is not kept, so asking again (on a quieter server) tries again.
    """

    def __init__(
        self, derive_fn: Callable[..., Any] = _derive, check_fn: Callable[..., Any] = _check, cache: int = 32
    ) -> None:
        self.derive_fn, self.check_fn = derive_fn, check_fn
        self._cache: OrderedDict[Request, tuple[Any, dict[str, Any]]] = OrderedDict()
        self._cache_size = cache
        self._cache_lock = threading.Lock()

    def derivation(
        self, req: Request, cancelled: Callable[[], bool] = lambda: False, max_seconds: float | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """The Derivation and its JSON form, kept for later requests (downloads).

        ``max_seconds`` bounds the proof in CPU seconds (None: the engine's default).
        """
        with self._cache_lock:
            if req in self._cache:
                self._cache.move_to_end(req)
                return self._cache[req]
        if cancelled():
            raise Abandoned
        wrt = req.wrt[0] if len(req.wrt) == 1 else req.wrt
        shapes = dict(req.shapes) if req.shapes is not None else None
        d = self.derive_fn(
            req.expr,
            wrt,
            shapes,
            layout=req.layout,
            symmetric=req.symmetric,
            diagonal=req.diagonal,
            max_seconds=max_seconds,
        )
        out = (d, derivation_json(d))
        if self._cache_size > 0 and d.proof.status != "not finished":
            with self._cache_lock:
                self._cache[req] = out
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out

    def derive(
        self, body: object, cancelled: Callable[[], bool] = lambda: False, max_seconds: float | None = None
    ) -> dict[str, Any]:
        """POST /api/derive: the matrix form, its proof, the numeric check and the steps."""
        return self.derivation(read(body), cancelled, max_seconds)[1]

    def check(
        self, body: object, cancelled: Callable[[], bool] = lambda: False, max_seconds: float | None = None
    ) -> dict[str, Any]:
        """POST /api/check: is the claim the derivative? (Without 'wrt': is it the value?)

        A check compares at a few small sizes and has no time budget of its own: ``max_seconds`` is unused.
        """
        req = read(body, value=True)
        claim = _text(body, "claim", "your derivative, in the same syntax")
        if cancelled():
            raise Abandoned
        by = None if not req.wrt else req.wrt[0] if len(req.wrt) == 1 else req.wrt
        shapes = dict(req.shapes) if req.shapes is not None else None
        c = self.check_fn(req.expr, by, claim, shapes, symmetric=req.symmetric, diagonal=req.diagonal)
        return check_json(c)

    def document(
        self, body: object, cancelled: Callable[[], bool] = lambda: False, max_seconds: float | None = None
    ) -> tuple[str, str, str]:
        """POST /api/download: (file name, media type, text) of the .tex, .md or .py, made in memory."""
        req = read(body)
        fmt = body.get("format")
        if fmt not in FORMATS:
            raise DeriveError(f"'format' must be one of {', '.join(FORMATS)}")
        name = body.get("name") or default_name(req.expr, req.wrt)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise DeriveError("'name' must be a Python identifier (it names the file and its functions)")
        d, _ = self.derivation(req, cancelled, max_seconds)
        if d.display is None:
            raise DeriveError(f"there is no matrix form to write up: {d.note}")
        if d.proof.status == "refuted" or (d.numeric is not None and d.numeric.failed):
            raise DeriveError("the matrix form failed its own check; no file made")  # as the command refuses
        files = documents(d, name, (fmt,))
        return f"{name}.{fmt}", MEDIA[fmt], files[f"{name}.{fmt}"]


class Abandoned(Exception):
    """The client went away or the budget ran out before the work started."""


# ----- results as JSON -----


def _number(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _dims(shape: tuple[object, ...]) -> list[int | str]:
    return [int(d) if str(d).isdigit() else str(d) for d in shape]


def derivation_json(d: Any) -> dict[str, Any]:
    """Everything the page shows about a Derivation, as JSON-ready values."""
    proof = d.proof
    numeric = d.numeric
    out: dict[str, Any] = {
        "expr": d.expr,
        "wrt": list(d.wrt),
        "kind": str(d.kind),
        "kind_name": d.kind.title,
        "text": d.text,
        "latex": d.latex_form() if d.display is not None else None,
        "layout": d.layout,
        "convention": d.convention,
        "note": d.note,
        "notes": list(d.problem.notes),
        "conventions": list(d.notes),
        "shapes": {n: _dims(d.problem.at_declared(s)) for n, s in d.shapes.items()},
        "name": default_name(d.expr, d.wrt),
        "proof": {
            "status": proof.status,
            "ok": proof.status == "proven",
            "method": proof.method,
            "exact": bool(proof.exact),
            "bits": proof.bits,
            "sizes": {n: [int(k) for k in s] for n, s in proof.shapes.items()},
            "entries": proof.entries,
            "seconds": proof.seconds,
            "text": str(proof),
        },
        "numeric": None,
        "steps": steps_json(d),
    }
    if numeric is not None:
        out["numeric"] = {
            "ran": numeric.ran,
            "ok": numeric.ok,
            "error": _number(numeric.error),
            "directions": numeric.directions,
            "sizes": {n: [int(k) for k in s] for n, s in numeric.shapes.items()},
            "text": str(numeric),
        }
    return out


def steps_json(d: Any) -> list[dict[str, Any]]:
    """The write-up's sections: titles, sentences with $inline$ LaTeX, display equations."""
    return [
        {"title": s.title, "blocks": [{"math": b.math, "lines": list(b.lines)} for b in s.blocks]} for s in sections(d)
    ]


def check_json(c: Any) -> dict[str, Any]:
    """The verdict on a claim: ok, the message, the counterexample and the mistake it looks like."""
    m = c.mismatch
    return {
        "ok": bool(c.ok),
        "claim": c.claim,
        "message": c.message,
        "mistake": c.mistake,
        "sizes": dict(c.sizes),
        "counterexample": None
        if m is None
        else {"entry": list(m.index), "claimed": str(m.got), "correct": str(m.expected)},
    }
