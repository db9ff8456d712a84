"""Aggregate caching: ``CacheManager`` (L1 in-process LRU, L2 Redis) and ``CachedEventStore``.

``CachedEventStore(store, cache_manager)`` keeps loaded aggregates' state so
that a load costs a cache read plus one version check instead of a replay.

Correctness comes first: with ``"invalidation": "event_based"`` (the default)
every load asks the store for the stream's current version and uses a cached
state only if it is at that version.  A cached state that is behind (another
process saved meanwhile) is brought up to date by applying just the newer
events; a cache can therefore never return a stale aggregate, whoever wrote.
``"ttl"`` skips the check and trusts the TTL: faster, and stale for up to
``ttl`` seconds after another writer's save - opt in only when that is fine.

Entries hold the aggregate's JSON (``model_dump_json``) behind a header with
the class layout fingerprint (the one snapshots use) and the version, so a
deploy that changes the class never reads an old layout.  L2 entries go
through the store's payload transforms: with encryption on, Redis holds
ciphertext bound to the cache key and version.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import secrets
import struct
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from ..aggregate import Aggregate
from ..errors import ConfigurationError, EventualiError
from ..serialization import RecordIdentity
from ..snapshots import _continue as _continue_from_state
from ..snapshots import layout_fingerprint
from ..store_identity import store_id

A = TypeVar("A", bound=Aggregate)

_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?B?)\s*", re.IGNORECASE)
_ENTRY_MAGIC = b"EC1"
_ENTRY_HEADER = struct.Struct(">3s8sq")  # magic, layout fingerprint, version
_CACHE_ID = b"eventuali-cache\x00"  # the event id bound when an L2 entry is encrypted
_ENTRY_OVERHEAD = 120  # bytes an L1 entry costs beyond key and value (dict slot, tuple, floats)

STRATEGIES = ("write_through", "write_around")
INVALIDATIONS = ("event_based", "ttl")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def parse_size(value: object, where: str) -> int:
    """``"256MB"`` -> bytes (binary units: KB = 1024 B).  An int is bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    m = _SIZE_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None or float(m.group(1)) <= 0:
        raise ConfigurationError(
            f"{where} size {value!r} is invalid; give a positive number of bytes or a string such "
            "as '512KB', '256MB', '1GB'"
        )
    unit = m.group(2).upper()
    unit = unit if unit.endswith("B") or not unit else unit + "B"
    return int(float(m.group(1)) * _UNITS[unit])


def _ttl(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(
            f"{where} ttl {value!r} is invalid; give a positive number of seconds, or None"
        )
    return float(value)


@dataclass
class CacheStats:
    """Counters since the manager was created."""

    l1_hits: int = 0
    l2_hits: int = 0
    misses: int = 0
    stale: int = 0
    """Cached states found behind the store and caught up with the newer events."""
    writes: int = 0
    evictions: int = 0
    l2_errors: int = 0
    l1_bytes: int = 0
    l1_entries: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.l1_hits + self.l2_hits + self.misses
        return (self.l1_hits + self.l2_hits) / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hit_rate": self.hit_rate}


class MemoryLRU:
    """L1: an in-process LRU bounded by the bytes it holds, with a TTL per entry."""

    def __init__(self, max_bytes: int, ttl: float | None, stats: CacheStats) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._stats = stats

    @staticmethod
    def _cost(key: str, value: bytes) -> int:
        return len(key) + len(value) + _ENTRY_OVERHEAD

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            expires, value = item
            if expires and expires < time.monotonic():
                self._remove(key)
                return None
            self._data.move_to_end(key)
            return value

    def set(self, key: str, value: bytes) -> None:
        cost = self._cost(key, value)
        if cost > self.max_bytes:
            return  # larger than the whole cache: do not flush everything for it
        expires = time.monotonic() + self.ttl if self.ttl else 0.0
        with self._lock:
            if key in self._data:
                self._remove(key)
            self._data[key] = (expires, value)
            self._bytes += cost
            while self._bytes > self.max_bytes:
                old = next(iter(self._data))
                self._remove(old)
                self._stats.evictions += 1
            self._stats.l1_bytes, self._stats.l1_entries = self._bytes, len(self._data)

    def delete(self, key: str) -> None:
        with self._lock:
            if key in self._data:
                self._remove(key)

    def _remove(self, key: str) -> None:
        _, value = self._data.pop(key)
        self._bytes -= self._cost(key, value)
        self._stats.l1_bytes, self._stats.l1_entries = self._bytes, len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0
            self._stats.l1_bytes = self._stats.l1_entries = 0

    @property
    def bytes_used(self) -> int:
        return self._bytes


class RedisCache:
    """L2: Redis via ``redis.asyncio``; entries expire by TTL under a key prefix.

    Redis trouble never fails a load: the error is counted, warned about once,
    and L2 is skipped for ``retry_after`` seconds (so a dead server costs one
    timeout, not one per load).
    """

    def __init__(self, url: str, ttl: float | None, prefix: str, stats: CacheStats,
                 max_bytes: int | None, retry_after: float = 5.0, client: Any = None) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError:
            raise ConfigurationError(
                "the L2 cache type 'redis' needs the redis package; pip install 'eventuali[redis]'"
            ) from None
        self._redis_errors = (aioredis.RedisError, OSError)
        self.url = url
        self.ttl = ttl
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.client = client or aioredis.Redis.from_url(
            url, socket_connect_timeout=1.0, socket_timeout=1.0
        )
        self._stats = stats
        self._retry_after = retry_after
        self._down_until = 0.0
        self._warned = False

    def _failed(self, exc: BaseException) -> None:
        self._stats.l2_errors += 1
        self._down_until = time.monotonic() + self._retry_after
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"L2 cache at {self.url} failed ({type(exc).__name__}: {exc}); serving from L1 and "
                f"the store, retrying Redis every {self._retry_after:g}s",
                RuntimeWarning, stacklevel=3,
            )

    def _up(self) -> bool:
        return time.monotonic() >= self._down_until

    async def get(self, key: str) -> bytes | None:
        if not self._up():
            return None
        try:
            return await self.client.get(self.prefix + key)  # type: ignore[return-value]
        except self._redis_errors as exc:
            self._failed(exc)
            return None

    async def set(self, key: str, value: bytes) -> None:
        if not self._up():
            return
        try:
            ttl = int(self.ttl) if self.ttl else None
            await self.client.set(self.prefix + key, value, ex=max(ttl, 1) if ttl else None)
        except self._redis_errors as exc:
            self._failed(exc)

    async def delete(self, key: str) -> None:
        if not self._up():
            return
        try:
            await self.client.delete(self.prefix + key)
        except self._redis_errors as exc:
            self._failed(exc)

    async def clear(self) -> int:
        """Delete every key under this cache's prefix (SCAN, never KEYS)."""
        n = 0
        try:
            async for k in self.client.scan_iter(match=self.prefix + "*", count=500):
                n += await self.client.delete(k)
        except self._redis_errors as exc:
            self._failed(exc)
        return n

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except self._redis_errors:
            return False

    async def close(self) -> None:
        await self.client.aclose()


class CacheManager:
    """Two cache levels and the policy that uses them.

    ::

        cache_manager = CacheManager({
            "l1_cache": {"type": "memory", "size": "256MB", "ttl": 300},
            "l2_cache": {"type": "redis", "size": "1GB", "ttl": 3600},   # optional
            "cache_strategy": "write_through",     # or "write_around"
            "invalidation": "event_based",         # or "ttl"
        })

    ``l2_cache`` also takes ``url`` (default ``$EVENTUALI_REDIS_URL`` or
    ``redis://127.0.0.1:6379/0``) and ``key_prefix`` (default ``eventuali:``).
    Its ``size`` is validated and reported, but bounding Redis memory is the
    server's job (``maxmemory`` with an LRU eviction policy).
    """

    def __init__(self, config: Mapping[str, Any] | None = None, *, redis_client: Any = None) -> None:
        config = dict(config or {})
        known = {"l1_cache", "l2_cache", "cache_strategy", "invalidation"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown CacheManager option(s) {unknown}; valid options: {sorted(known)}"
            )
        self.stats = CacheStats()
        l1 = dict(config.get("l1_cache") or {"type": "memory", "size": "64MB", "ttl": 300})
        if l1.get("type", "memory") != "memory":
            raise ConfigurationError(
                f"l1_cache type {l1.get('type')!r} is invalid; the L1 cache is in-process: 'memory'"
            )
        self.l1 = MemoryLRU(parse_size(l1.get("size", "64MB"), "l1_cache"),
                            _ttl(l1.get("ttl", 300), "l1_cache"), self.stats)
        self.l2: RedisCache | None = None
        l2 = config.get("l2_cache")
        if l2:
            l2 = dict(l2)
            if l2.get("type", "redis") != "redis":
                raise ConfigurationError(
                    f"l2_cache type {l2.get('type')!r} is invalid; the supported L2 cache is 'redis'"
                )
            url = l2.get("url") or os.environ.get("EVENTUALI_REDIS_URL", DEFAULT_REDIS_URL)
            self.l2 = RedisCache(
                url, _ttl(l2.get("ttl", 3600), "l2_cache"), str(l2.get("key_prefix", "eventuali:")),
                self.stats, parse_size(l2["size"], "l2_cache") if "size" in l2 else None,
                client=redis_client,
            )
        self.strategy = config.get("cache_strategy", "write_through")
        if self.strategy not in STRATEGIES:
            raise ConfigurationError(
                f"cache_strategy={self.strategy!r} is invalid; use 'write_through' (cache on save) "
                "or 'write_around' (drop the entry on save, cache on the next load)"
            )
        self.invalidation = config.get("invalidation", "event_based")
        if self.invalidation not in INVALIDATIONS:
            raise ConfigurationError(
                f"invalidation={self.invalidation!r} is invalid; use 'event_based' (check the "
                "stream version on every load: never stale) or 'ttl' (trust the TTL)"
            )

    async def get(self, key: str) -> tuple[bytes | None, int]:
        """(value, level): level 1 or 2 for a hit, 0 for a miss.  L2 hits are promoted to L1."""
        value = self.l1.get(key)
        if value is not None:
            return value, 1
        if self.l2 is not None:
            value = await self.l2.get(key)
            if value is not None:
                return value, 2
        return None, 0

    async def set(self, key: str, l1_value: bytes, l2_value: bytes | None = None) -> None:
        self.stats.writes += 1
        self.l1.set(key, l1_value)
        if self.l2 is not None:
            await self.l2.set(key, l2_value if l2_value is not None else l1_value)

    async def delete(self, key: str) -> None:
        self.l1.delete(key)
        if self.l2 is not None:
            await self.l2.delete(key)

    async def clear(self) -> None:
        self.l1.clear()
        if self.l2 is not None:
            await self.l2.clear()

    async def close(self) -> None:
        if self.l2 is not None:
            await self.l2.close()

    def __repr__(self) -> str:
        return (
            f"CacheManager(l1={self.l1.max_bytes}B, l2={self.l2.url if self.l2 else None}, "
            f"strategy={self.strategy!r}, invalidation={self.invalidation!r})"
        )


async def _store_namespace(store: Any) -> str:
    """A short id of the store's data, so that two stores never share entries by accident.

    Keyed by the id the store keeps in itself (:mod:`eventuali.store_identity`),
    not by its URL: a database deleted and created again at the same path is
    another store and never sees the old one's entries.  Two stores on the same
    database (and tenant) share entries - that is the point of L2.  A store that
    cannot keep an id (no checkpoints, read-only) gets a namespace of its own
    that no other process shares.
    """
    try:
        sid = await store_id(store.backend)
    except EventualiError as exc:
        sid, why = None, f"it cannot be written ({type(exc).__name__}: {exc})"
    else:
        why = "its engine keeps no checkpoints"
    if sid is None:
        warnings.warn(
            f"the store {store!r} has no store id ({why}); its L2 cache entries are private "
            "to this CachedEventStore", RuntimeWarning, stacklevel=3,
        )
        sid = f"private:{os.getpid()}:{id(store.backend)}:{secrets.token_hex(8)}"
    tenant = getattr(store, "tenant", "") or ""
    return hashlib.blake2b(f"{sid}|{tenant}".encode(), digest_size=8).hexdigest()


class CachedEventStore:
    """An event store whose ``load`` is served from a :class:`CacheManager` when it can.

    Every other method is the wrapped store's.  ``save`` writes the new state
    through to the cache (or drops the entry, for ``write_around``).
    """

    def __init__(self, store: Any, cache_manager: CacheManager, *, namespace: str | None = None) -> None:
        if not hasattr(store, "backend") or not hasattr(store, "codec"):
            raise ConfigurationError(
                f"CachedEventStore wraps an EventStore, got {type(store).__name__} {store!r}"
            )
        if not inspect.iscoroutinefunction(getattr(store, "load", None)):
            raise ConfigurationError(
                f"CachedEventStore wraps the async EventStore, got {type(store).__name__}; open "
                "the store with 'await EventStore.create(url)'"
            )
        if not isinstance(cache_manager, CacheManager):
            raise ConfigurationError(
                f"CachedEventStore needs a CacheManager, got {type(cache_manager).__name__}"
            )
        self.store = store
        self.cache = cache_manager
        self.namespace = namespace
        """The key prefix of this store's entries; from the store's id, on first use."""
        self._uncacheable: set[type] = set()
        if getattr(store, "_keyring", None) is not None:
            # Forgetting a subject drops the cached states of its streams (L1 and Redis).
            store.on_forget(self._forgotten)

    async def _forgotten(self, result: Any) -> None:
        for stream in result.streams:
            await self.invalidate_stream(stream)

    async def invalidate_stream(self, aggregate_id: str) -> None:
        """Drop the entries of ``aggregate_id`` under every aggregate class, from both levels."""
        l1 = self.cache.l1
        prefix, suffix = (self.namespace or await self._namespace()) + ":", ":" + aggregate_id
        with l1._lock:
            keys = [k for k in l1._data if k.startswith(prefix) and k.endswith(suffix)]
        for k in keys:
            l1.delete(k)
        l2 = self.cache.l2
        if l2 is not None:
            pattern = re.sub(r"([*?\[\]\\])", r"\\\1", f"{l2.prefix}{prefix}") + "*" + re.sub(
                r"([*?\[\]\\])", r"\\\1", suffix)
            try:
                async for k in l2.client.scan_iter(match=pattern, count=500):
                    await l2.client.delete(k)
            except l2._redis_errors as exc:
                l2._failed(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    # --- keys and entries ----------------------------------------------------------------

    async def _namespace(self) -> str:
        if self.namespace is None:
            self.namespace = await _store_namespace(self.store)
        return self.namespace

    async def _key(self, cls: type[Aggregate], aggregate_id: str) -> str:
        namespace = self.namespace or await self._namespace()
        return f"{namespace}:{cls.__module__}.{cls.__qualname__}:{aggregate_id}"

    def _entries(self, key: str, agg: Aggregate) -> tuple[bytes, bytes] | None:
        cls = type(agg)
        if cls in self._uncacheable:
            return None
        body = agg.model_dump_json().encode()
        try:
            same = cls.model_validate_json(body).model_dump_json().encode() == body
        except (ValueError, EventualiError):
            same = False
        if not same:
            self._uncacheable.add(cls)
            warnings.warn(
                f"{cls.__name__} does not survive a JSON round trip, so it is not cached (loads "
                "replay from the store); give every field a JSON-serializable type to cache it",
                RuntimeWarning, stacklevel=3,
            )
            return None
        header = _ENTRY_HEADER.pack(_ENTRY_MAGIC, layout_fingerprint(cls), agg.version)
        codec = self.store.codec
        l2 = body
        if codec.transforms:
            l2 = codec.wrap(body, RecordIdentity(_CACHE_ID, key, agg.version))
        return header + body, header + l2

    def _decode(self, key: str, cls: type[A], raw: bytes, level: int = 1) -> tuple[int, bytes] | None:
        if len(raw) < _ENTRY_HEADER.size:
            return None
        magic, fp, version = _ENTRY_HEADER.unpack_from(raw)
        if magic != _ENTRY_MAGIC or fp != layout_fingerprint(cls):
            return None  # another format or another layout of the class: a miss
        body = raw[_ENTRY_HEADER.size :]
        codec = self.store.codec
        if level == 2 and body[:1] == b"{" and codec.encrypts and codec.strict:
            return None  # clear text in Redis on a strict encrypted store: not ours, a miss
        if body[:1] != b"{":
            try:
                body = self.store.codec.unwrap(body, RecordIdentity(_CACHE_ID, key, version))
            except EventualiError:
                return None  # e.g. a key we no longer hold: the store has the truth
        return version, body

    # --- the cached operations -------------------------------------------------------------

    async def load(self, aggregate_class: type[A], aggregate_id: str) -> A | None:
        """The aggregate, from the cache when its state is current, else from the store."""
        cache, stats = self.cache, self.cache.stats
        key = await self._key(aggregate_class, aggregate_id)
        raw, level = await cache.get(key)
        entry = self._decode(key, aggregate_class, raw, level) if raw is not None else None
        if entry is not None:
            version, body = entry
            if cache.invalidation == "ttl":
                current = version
            else:
                current = await self.store.stream_version(aggregate_id)
            if current == version:
                agg = aggregate_class.model_validate_json(body)
                if level == 1:
                    stats.l1_hits += 1
                else:
                    stats.l2_hits += 1
                    assert raw is not None  # an entry came from it
                    cache.l1.set(key, raw[: _ENTRY_HEADER.size] + body)
                return agg
            if current > version:
                # Someone saved since: apply only the newer events to the cached state.
                agg = aggregate_class.model_validate_json(body)
                records = await self.store.backend.read_stream(aggregate_id, version + 1)
                done = _continue_from_state(self.store, agg, records, await self.store._decode(records))
                if done is not None and done.version == current:
                    stats.stale += 1
                    await self._put(key, done)
                    return done
        stats.misses += 1
        agg = await self.store.load(aggregate_class, aggregate_id)
        if agg is None:
            if entry is not None:
                await cache.delete(key)  # deleted or truncated away
            return None
        await self._put(key, agg)
        return agg

    async def _put(self, key: str, agg: Aggregate) -> None:
        entries = self._entries(key, agg)
        if entries is not None:
            await self.cache.set(key, *entries)

    async def save(self, *aggregates: Aggregate) -> None:
        """Save through the store, then write the new states through to the cache."""
        await self.store.save(*aggregates)
        for agg in aggregates:
            if not isinstance(agg, Aggregate):
                continue  # a bare event (saved as save_events saves it) is not cached
            key = await self._key(type(agg), agg.id)
            if self.cache.strategy == "write_through":
                await self._put(key, agg)
            else:
                await self.cache.delete(key)

    async def save_all(self, aggregates) -> None:
        await self.save(*aggregates)

    async def invalidate(self, aggregate_class: type[Aggregate], aggregate_id: str) -> None:
        """Drop one aggregate's entry from both levels."""
        await self.cache.delete(await self._key(aggregate_class, aggregate_id))

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> CachedEventStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"CachedEventStore({self.store!r}, {self.cache!r})"
