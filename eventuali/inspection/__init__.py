"""Store inspection for operators: what the ``eventuali`` command and the web console show.

One place for the logic both use (neither duplicates it):

- :mod:`.catalog`: which streams, checkpoints and snapshots a store holds, and
  its size - from the protocol (``read_all``) on every engine, or from a
  read-only SQL look at the documented table layout where one exists;
- :mod:`.records`: paging through the global feed, following it live, and the
  JSON view of one record (decoded when its class is importable, raw otherwise);
- :mod:`.transfer`: the JSON-lines export format, import, store-to-store copy
  and the digest that proves two stores hold the same records;
- :mod:`.verify`: the integrity checks, a list of small functions.
"""

from __future__ import annotations
