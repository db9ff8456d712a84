"""``eventuali serve``: a read-only web console over one store (extra ``eventuali[console]``).

Pages: the store's metrics and projections (``/``), streams searched by id
prefix and type (``/streams``), one stream's events with their JSON
(``/streams/<id>``), and the global feed with a live tail (``/feed``, fed by
server-sent events from ``/feed/events``).  Everything shown comes from
:mod:`eventuali.inspection`, as in the command line.

Read-only by construction: every route is a GET that calls only read methods.
Everything shown is escaped (Jinja2 autoescape on the server, ``textContent``
in the browser), and the Content-Security-Policy admits no inline script, so a
payload holding ``<script>`` is text.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
