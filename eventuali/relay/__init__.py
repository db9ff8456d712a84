"""The relay: a store's committed events, in order, published to NATS JetStream.

``Relay(store, nats=..., stream=...)`` in Python (``await relay.run()``), or
``eventuali relay URL --nats nats://127.0.0.1:4222 --stream EVENTS``.  Needs
the ``nats`` extra (``pip install "eventuali[nats]"``).  See docs/scaling.md.
"""

from .core import Relay
from .subjects import DEFAULT_SUBJECT, compile_subject

__all__ = ["DEFAULT_SUBJECT", "Relay", "compile_subject"]
