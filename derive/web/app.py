"""The web page's server: a Starlette app made by :func:`create_app`.

Routes: ``GET /`` (the page), ``GET /static/...`` (its script, style and the
vendored KaTeX), ``GET /api/info``, and ``POST /api/derive``,
``POST /api/check``, ``POST /api/download`` (JSON in; JSON out, or the file).
Each POST runs in a bounded worker pool with a time budget; bad input is
HTTP 400 with ``{"error": "<one line>"}``, the line the command line prints.
Every response carries the Content-Security-Policy below. Nothing is
written on the server; all state lives in the app that the factory makes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import check as _check
from .. import derive as _derive
from ..article import CNN
from ..errors import DeriveError, TimeBudgetSpent
from .engine import Abandoned, Engine
from .pool import Busy, Pool

STATIC = Path(__file__).resolve().parent / "static"
KATEX_VERSION = "0.16.47"  # vendored in static/vendor/katex (see its README.md)
BODY_LIMIT = 64 * 1024  # bytes in a request body
PROOF_SHARE = 0.5  # of the budget left when a derivation starts, split between the workers, for its proof
LOG = logging.getLogger("derive.web")

#: Only the page's own files. Scripts: 'self' only, no inline script, no eval.
#: Styles: 'self' only, no inline <style> and no style="..." attributes. KaTeX
#: needs neither: katex.render() builds its DOM and sets each element's size
#: through the CSSOM (element.style), which CSP does not restrict; the browser
#: test renders under this policy and checks the sizes it sets. The page never
#: uses katex.renderToString (HTML with style attributes, which this policy
#: would block). The one style attribute KaTeX writes itself, the width of the
#: SVG piece of a very tall bracket, repeats the width its parent span already
#: has through the CSSOM, so blocking it changes nothing on screen.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class Example:
    """One click on the page: an expression, its variable(s), and optional fields."""

    label: str
    expr: str
    wrt: str
    shapes: str = ""
    symmetric: str = ""
    diagonal: str = ""


EXAMPLES = (
    Example("‖Ax − b‖² by x", "norm(A @ x - b)**2", "x"),
    Example("Wx + b by W", "W @ x + b", "W"),
    Example("σ(Wx + b) by W", "sigmoid(W @ x + b)", "W"),
    Example("Hessian of ‖Ax − b‖²", "norm(A @ x - b)**2", "x, x"),
    Example("softmax cross-entropy by W", "-(y @ log(softmax(W @ x)))", "W"),
    Example("a tiny CNN by its kernel (slow: about 10 s)", CNN, "K", "X=1,3,3; K=2,1,2,2; y=2"),
    Example("(x − m)ᵀS⁻¹(x − m) by a symmetric S", "(x - m) @ inv(S) @ (x - m)", "S", symmetric="S"),
)


def _version() -> str:
    try:
        return metadata.version("derive")
    except metadata.PackageNotFoundError:
        return "unknown"


# ----- every response: security headers, host check, no traceback -----


def _host(value: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1'; '[::1]:8000' -> '[::1]'."""
    if value.startswith("["):
        return value[: value.find("]") + 1]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware: adds :data:`HEADERS` to every response; refuses a Host not in
    ``allowed_hosts`` (DNS rebinding) and a cross-origin POST; turns an unexpected
    exception into a one-line 500 (logged here, never sent as a traceback)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] | None = None) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, secured)
            return
        try:
            await self.app(scope, receive, secured)
        except Exception as e:
            LOG.exception("unexpected error")
            if not started:
                await _error(500, f"internal error in derive ({type(e).__name__}); the server log has the details")(
                    scope, receive, secured
                )

    def _refusal(self, scope: Scope) -> Response | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if self.allowed is not None and _host(host).lower() not in self.allowed:
            return _error(400, f"this server answers only to {', '.join(sorted(self.allowed))}, not {host!r}")
        origin = headers.get("origin")  # browsers send it with every POST; "null" from sandboxes and files
        if (
            origin is not None
            and scope["method"] not in ("GET", "HEAD")
            and urlsplit(origin).netloc.lower() != host.lower()
        ):
            return _error(403, "requests from other sites are refused")
        return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"cache-control": "no-store"})


class Problem(Exception):
    """A request the server refuses before any work: status and one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_json(request: Request, limit: int) -> object:
    """The JSON body, at most ``limit`` bytes; a Problem (413, 415 or 400) otherwise."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise Problem(415, "send the request as JSON (Content-Type: application/json)")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise Problem(413, f"the request body is {int(length)} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, f"the request body is over the limit of {limit} bytes")
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # also bad UTF-8 and integers too long to convert
        raise Problem(400, "the request body is not valid JSON (UTF-8)") from None


async def _gone(receive: Receive) -> None:
    """Returns when the client disconnects."""
    while (await receive())["type"] != "http.disconnect":
        pass


# ----- the app -----


@dataclass(frozen=True)
class _Api:
    """What the routes share: the worker pool, the engine and the limits (see :func:`create_app`)."""

    pool: Pool
    engine: Engine
    workers: int
    budget: float
    body_limit: int
    max_seconds: float | None

    @property
    def late(self) -> str:
        return f"no answer within the time budget of {self.budget:g} s (derive serve --budget raises it)"

    def proof_seconds(self, asked: float) -> float:
        """CPU seconds for a proof that starts now, for a request that came at ``asked`` (monotonic)."""
        if self.max_seconds is not None:
            return self.max_seconds
        left = self.budget - (time.monotonic() - asked)
        if left <= 0:
            raise Abandoned
        return left * PROOF_SHARE / self.workers

    async def run(self, request: Request, method: Callable[..., Any]) -> Any:
        """``method(body, cancelled, max_seconds)`` in the pool, within the budget; a Problem if it cannot answer."""
        body = await read_json(request, self.body_limit)
        asked = time.monotonic()
        given_up = threading.Event()  # set when the request stops waiting; read by the worker
        try:
            job = self.pool.submit(lambda: method(body, given_up.is_set, self.proof_seconds(asked)))
        except Busy:
            n = self.pool.workers + self.pool.backlog
            raise Problem(503, f"the server is busy ({n} derivations running or queued); try again shortly") from None
        waiter = asyncio.wrap_future(job)
        gone = asyncio.ensure_future(_gone(request.receive))
        stop = asyncio.ensure_future(_stopping(request.app).wait())
        try:
            done, _ = await asyncio.wait({waiter, gone, stop}, timeout=self.budget, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            stop.cancel()
        if waiter in done:
            return waiter.result()
        given_up.set()
        waiter.cancel()  # cancels the job if it has not started; a running one finishes unseen
        if stop in done:
            raise Problem(503, "the server is stopping")
        if gone in done:
            raise Problem(503, "the client closed the request")
        raise Problem(503, self.late)

    def endpoint(self, method: Callable[..., Any], reply: Callable[[Any], Response]) -> Callable[[Request], Awaitable]:
        """A POST route: ``method`` run by :meth:`run`, its result sent by ``reply``; errors as one line."""

        async def handle(request: Request) -> Response:
            try:
                return reply(await self.run(request, method))
            except Problem as e:
                return _error(e.status, str(e))
            except TimeBudgetSpent:  # the engine's own clock ran out first
                return _error(503, self.late)
            except DeriveError as e:
                return _error(400, str(e))
            except Abandoned:  # the request gave up, or its budget was spent, before the work started
                return _error(503, self.late)

        return handle

    async def info(self, request: Request) -> Response:
        return _as_json(
            {
                "version": _version(),
                "katex": KATEX_VERSION,
                "budget": self.budget,
                "body_limit": self.body_limit,
                "in_flight": self.pool.in_flight,
                "examples": [asdict(e) for e in EXAMPLES],
            }
        )


def _as_json(result: Any) -> Response:
    return JSONResponse(result, headers={"cache-control": "no-store"})


def _as_file(result: tuple[str, str, str]) -> Response:
    name, media, text = result
    return Response(
        text,
        media_type=f"{media}; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )


async def _page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


def create_app(
    *,
    workers: int = 2,
    backlog: int | None = None,
    budget: float = 60.0,
    body_limit: int = BODY_LIMIT,
    max_seconds: float | None = None,
    derive_fn: Callable[..., Any] = _derive,
    check_fn: Callable[..., Any] = _check,
    cache: int = 32,
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """The page and its JSON API.

    ``workers`` threads run derivations, with ``backlog`` more queued (default
    2 x workers); past that a request gets 503 at once. A request that has no
    answer after ``budget`` seconds gets 503 (its work finishes in the
    background). So that the engine normally stops first, and answers with the
    matrix form and a proof "not finished", each proof gets ``max_seconds``
    CPU seconds; by default :data:`PROOF_SHARE` of the budget left when the
    work starts, divided by ``workers`` (the workers share one interpreter, so
    with all of them busy each thread gets about 1/workers of a CPU). The rest
    is for the numeric check and the steps. ``derive_fn``/``check_fn`` replace
    the engine (tests); ``cache``: see :class:`~derive.web.engine.Engine`.
    ``allowed_hosts`` (None: any) are the Host names the server answers to.
    """
    if budget <= 0 or body_limit < 1 or (max_seconds is not None and max_seconds <= 0):
        raise ValueError("budget, body_limit and max_seconds must be positive")
    pool = Pool(workers, 2 * workers if backlog is None else backlog)
    engine = Engine(derive_fn, check_fn, cache=cache)
    api = _Api(pool, engine, workers, budget, body_limit, max_seconds)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        _stopping(app)
        yield
        pool.close()

    app = Starlette(
        routes=[
            Route("/", _page),
            Route("/api/info", api.info),
            Route("/api/derive", api.endpoint(engine.derive, _as_json), methods=["POST"]),
            Route("/api/check", api.endpoint(engine.check, _as_json), methods=["POST"]),
            Route("/api/download", api.endpoint(engine.document, _as_file), methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(Guard, allowed_hosts=allowed_hosts)],
        lifespan=lifespan,
    )
    app.state.pool = pool
    app.state.engine = engine
    return app


def _stopping(app: Starlette) -> asyncio.Event:
    """The app's stop signal, made in its event loop on first use."""
    if not hasattr(app.state, "stopping"):
        app.state.stopping = asyncio.Event()
    return app.state.stopping


def stop(app: Starlette) -> None:
    """Answer every waiting request with 503 now (the server is shutting down); call in the app's loop."""
    _stopping(app).set()
