"""``eventuali serve``: the read-only web console (needs the ``console`` extra)."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from ..errors import ConfigurationError
from ._common import add_decoding, add_store, codec_for, open_store


def cmd_serve(args: argparse.Namespace, console: Console) -> int:
    try:
        import uvicorn

        from ..console import create_app
    except ImportError as exc:
        raise ConfigurationError(
            f"the web console needs Starlette, Jinja2 and uvicorn ({exc}); "
            'pip install "eventuali[console]"'
        ) from exc
    if not 0 < args.port < 65536:
        raise ConfigurationError(f"--port {args.port} is invalid; give 1-65535")
    codec = codec_for(args)
    store = open_store(args.url, args.backend, codec)
    app = create_app(store)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]warning:[/yellow] binding to {escape(args.host)}: the console has "
                      "no login, so anyone who can reach that address can read every event")
    console.print(f"eventuali console for {escape(store.url.redacted())} on "
                  f"http://{args.host}:{args.port}/ (read-only; Ctrl-C to stop)")
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        store.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="a read-only web console for the store")
    add_store(p)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    add_decoding(p)
    p.set_defaults(run=cmd_serve)
