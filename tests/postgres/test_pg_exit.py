"""A program using an async PostgreSQL store exits promptly, closed or not, and loses nothing acknowledged.

Each case runs a small program in a subprocess (``asyncio.run`` as the guide
writes it) with a generous timeout: a hang is a failure, not a slow test.
The PostgreSQL engine is the python engine's (the c engine serves memory://
and sqlite:// only).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from .conftest import fresh_schema_url

_GUIDE_POOL = "application_name=eventuali&pool_size=20&max_overflow=30&pool_timeout=30&pool_recycle=3600"

_PROGRAM = textwrap.dedent(
    """
    import asyncio, sys, warnings
    from eventuali import Event, EventStore, EventStreamer, Projection

    class Pinged(Event):
        n: int

    class Count(Projection):
        def __init__(self):
            self.seen = 0
        async def handle_pinged(self, event):
            self.seen += 1

    async def main(url, close, follow, pending):
        store = await EventStore.create(url)
        if follow:  # a live listener connection is open too
            streamer = EventStreamer(store)
            await streamer.subscribe(Count())
            await streamer.start()
        # One append right after opening: the pool is still opening its other
        # connections when the program ends, which is when exit used to hang.
        await store.save_events([Pinged(n=i, aggregate_id=f"p-{i % 3}") for i in range(20)])
        if pending:  # an append still in flight when main returns: not acknowledged
            asyncio.get_running_loop().create_task(
                store.save_events([Pinged(n=99, aggregate_id="p-late")]))
        print("acknowledged 20", flush=True)
        if close:
            await store.close()

    warnings.simplefilter("always", ResourceWarning)
    url, close, follow, pending = sys.argv[1], *(a == "1" for a in sys.argv[2:5])
    asyncio.run(main(url, close, follow, pending))
    print("exited", flush=True)
    """
)


async def _stored(url: str) -> list[int]:
    from eventuali import EventStore

    async with await EventStore.create(url) as store:
        return sorted(se.event.n for se in await store.read_all() if se.event.aggregate_id != "p-late")


@pytest.mark.parametrize("options", [_GUIDE_POOL, ""], ids=["guide-pool-url", "plain-url"])
@pytest.mark.parametrize(
    "close,follow,pending",
    [(False, False, False), (True, False, False), (False, True, False), (False, False, True)],
    ids=["unclosed", "closed", "unclosed-following", "unclosed-append-in-flight"],
)
async def test_program_exits_promptly_and_keeps_what_was_acknowledged(options, close, follow, pending):
    extra = dict(p.split("=", 1) for p in options.split("&")) if options else {}
    url, schema = fresh_schema_url(**extra)
    from .conftest import drop_schema

    try:
        flags = ["1" if f else "0" for f in (close, follow, pending)]
        try:
            done = subprocess.run([sys.executable, "-c", _PROGRAM, url, *flags],
                                  capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"the program did not exit within 60 s: stdout={exc.stdout!r} stderr={exc.stderr!r}")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["acknowledged 20", "exited"], done.stderr
        # An unclosed store says so, as an unclosed file does; a closed one does not.
        assert ("ResourceWarning: unclosed store" in done.stderr) is (not close), done.stderr
        assert await _stored(url) == list(range(20))
    finally:
        drop_schema(schema)
