"""The console's Starlette application: routes, templates and the live-tail event stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import anyio
from jinja2 import Environment, FunctionLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import EventualiError
from ..inspection.catalog import open_catalog, projections
from ..inspection.records import follow, iso, record_view
from ..store import SyncEventStore

FEED_PAGE = 50
"""Events the feed page shows before the live tail starts."""
STREAM_PAGE = 500
"""Events one stream's page shows at most (then a link to the next ones)."""
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _load(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text("utf-8")


def create_app(store: SyncEventStore) -> Starlette:
    """The console for ``store`` (which the caller opens and closes)."""
    env = Environment(loader=FunctionLoader(lambda n: _load(f"templates/{n}")),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False)
    env.filters["compact"] = lambda v: json.dumps(v, ensure_ascii=False)
    backend = store.backend
    where = store.url.redacted()

    def page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = env.get_template(name).render(where=where, **ctx)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def with_catalog(fn: Any) -> Any:
        # A catalog per request: its SQL connection stays in the thread that serves it.
        catalog = open_catalog(backend, store.url)
        try:
            return fn(catalog)
        finally:
            catalog.close()

    def overview(request: Request) -> Response:
        stats, projs, lists_all = with_catalog(
            lambda c: (c.stats(), projections(c), c.lists_all_checkpoints))
        return page("index.html", stats=stats, projections=projs, lists_all=lists_all)

    def streams(request: Request) -> Response:
        prefix = request.query_params.get("prefix") or None
        stype = request.query_params.get("type") or None
        try:
            limit = int(request.query_params.get("limit", "200"))
            if limit < 1:
                raise ValueError
        except ValueError:
            return page("error.html", 400, message="limit must be a whole number >= 1")
        rows = with_catalog(lambda c: c.streams(stype, prefix, limit))
        return page("streams.html", rows=rows, prefix=prefix or "", type=stype or "",
                    limit=limit, iso=iso)

    def stream(request: Request) -> Response:
        sid = request.path_params["stream_id"]
        try:
            start = int(request.query_params.get("from", "1"))
            records = backend.read_stream(sid, start, None, STREAM_PAGE)
        except (ValueError, EventualiError) as exc:
            return page("error.html", 400, message=f"cannot show stream {sid!r}: {exc}")
        views = [record_view(r, store.codec) for r in records]
        more = start + STREAM_PAGE if len(records) == STREAM_PAGE else None
        return page("stream.html", stream_id=sid, views=views, more=more)

    def feed(request: Request) -> Response:
        head = backend.head()
        records = backend.read_all(max(head - FEED_PAGE + 1, 1), FEED_PAGE)
        views = [record_view(r, store.codec) for r in records]
        return page("feed.html", views=views[::-1], head=head)

    async def feed_events(request: Request) -> Response:
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            return Response("after must be a position", status_code=400)

        async def events() -> AsyncIterator[str]:
            gen = follow(backend, after + 1, wait=1.0)
            try:
                while not await request.is_disconnected():
                    r = await anyio.to_thread.run_sync(next, gen)
                    if r is None:
                        yield ": idle\n\n"  # a comment: keeps proxies and the disconnect check alive
                    else:
                        yield f"data: {json.dumps(record_view(r, store.codec))}\n\n"
            finally:
                gen.close()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", **SECURITY_HEADERS})

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        types = {"console.js": "text/javascript", "console.css": "text/css"}
        if name not in types:
            return Response("not found", status_code=404)
        return Response(_load(f"static/{name}"), media_type=types[name], headers=SECURITY_HEADERS)

    return Starlette(routes=[
        Route("/", overview),
        Route("/streams", streams),
        Route("/streams/{stream_id:path}", stream),
        Route("/feed", feed),
        Route("/feed/events", feed_events),
        Route("/static/{name}", static),
    ])
