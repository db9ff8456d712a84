"""Leader election for an unpartitioned subscription: one process runs it, the others stand by.

``EventStreamer.start()`` calls :func:`start_elected` for each subscription.
It tries the projection's lease (``$lease:<name>``) once, so a lone process
starts at once; a process that finds the lease held leaves the subscription
in state ``"standby"`` with a task that looks again every
``lease_seconds / 4`` and starts it when the lease comes free (released on a
clean stop, or expired after its holder died).  The holder's task renews the
lease; once it is lost the subscription stops (its commits are fenced, so it
cannot write after that) and goes back to standby.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from typing import Any

from .leases import TICKS_PER_LEASE, Lease, LeaseLostError


def lease_stream(name: str) -> str:
    return f"$lease:{name}"


async def start_elected(streamer: Any, sub: Any) -> None:
    """Run ``sub`` now if this process gets its lease, else stand by for it."""
    lease = Lease(streamer.backend, lease_stream(sub.name), streamer.worker_id,
                  streamer.lease_seconds)
    if await lease.try_acquire():
        sub._lease = lease
        await streamer._run_subscription(sub)
    else:
        sub.state = "standby"
    sub._elector = asyncio.create_task(_keep(streamer, sub, lease),
                                       name=f"eventuali-lease-{sub.name}")


async def _keep(streamer: Any, sub: Any, lease: Lease) -> None:
    tick = lease.seconds / TICKS_PER_LEASE
    due = time.monotonic()
    while True:
        due += tick  # a fixed rate: a slow round does not stretch the period
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        due = max(due, time.monotonic() - tick)
        try:
            if sub._lease is None:
                if await lease.try_acquire():
                    sub._lease = lease
                    await streamer._run_subscription(sub)
                continue
            lost = isinstance(sub.error, LeaseLostError) and sub.state == "failed"
            if lost or not await lease.renew():
                lease.lose()
                await streamer._halt_subscription(sub)
                sub._lease = None
                sub.state = "standby"
                sub.error = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the store failed: try again next tick
            warnings.warn(f"projection {sub.name!r}: lease check failed ({exc!r})",
                          RuntimeWarning, stacklevel=1)
