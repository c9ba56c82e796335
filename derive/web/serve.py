"""``derive serve``: the page on a local address.

Prints one line, ``derive: serving on http://HOST:PORT/``, once the port
is listening (``--port 0`` picks a free one), then serves until Ctrl-C.
Exit status 2, with one line on stderr, for bad options, a port it cannot
listen on, or a missing web extra.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from collections.abc import Sequence

from ..errors import DeriveError

USAGE = "derive serve [--host 127.0.0.1] [--port 8000] [--workers N] [--budget SECONDS]"
INSTALL = "derive serve needs the web extra: pip install 'derive[web]'"


def parser() -> argparse.ArgumentParser:
    from ..cli import _Parser

    p = _Parser(prog="derive serve", usage=USAGE, description="Serve derive's web page on a local address.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=2, help="derivations run at once (default 2)")
    p.add_argument("--budget", type=float, default=60.0, help="seconds a request may take (default 60)")
    return p


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A listening socket; a DeriveError naming the address if it cannot be had."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise DeriveError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise DeriveError(f"cannot listen on {host}:{port}: {e.strerror or e} (--port chooses another)") from None
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def main(argv: Sequence[str]) -> int:
    """Run the server; the exit status."""
    try:
        import uvicorn

        from .app import LOOPBACK, create_app, stop
    except ImportError:
        print(INSTALL, file=sys.stderr)
        return 2
    try:
        args = parser().parse_args(argv)
        if not 1 <= args.workers <= 64:
            raise DeriveError("--workers must be from 1 to 64")
        if not 0 < args.budget <= 86400:
            raise DeriveError("--budget must be a number of seconds above 0")
        if not 0 <= args.port <= 65535:
            raise DeriveError("--port must be from 0 to 65535")
        sock = listen(args.host, args.port)
    except DeriveError as e:
        print(f"derive serve: error: {e}", file=sys.stderr)
        return 2
    hosts = LOOPBACK if loopback(args.host) else None  # on a public address, any Host name
    app = create_app(workers=args.workers, budget=args.budget, allowed_hosts=hosts)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            stop(app)  # requests waiting for a derivation answer now; the work itself dies with the process
            await super().shutdown(sockets)

    print(f"derive: serving on {url(sock)} (Ctrl-C stops)", flush=True)
    try:
        Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0
