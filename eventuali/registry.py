"""Find, load and choose storage engines registered under ``eventuali.backends``.

Our own backends register through the same entry-point group a third party
uses.  Entry points are loaded lazily - only the candidate being tried - and
the choice is made on first use, never at import.  Precedence: an explicit
argument (or a ``+name`` in the URL scheme) beats ``EVENTUALI_BACKEND``, which
beats ``auto``.

``auto`` tries backends by descending priority: "not installed" is silent, a
backend that is installed but fails to load warns once and the next one is
tried.  A backend *named* explicitly that cannot load raises at once, naming
the value, where it came from, the reason and the fix.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .errors import (
    BackendNotFoundError,
    BackendUnavailableError,
    EventualiError,
    UnknownSchemeError,
)
from .protocol import BackendProvider
from .records import StoreURL

GROUP = "eventuali.backends"
ENV_VAR = "EVENTUALI_BACKEND"

_lock = threading.Lock()
_loaded: dict[str, type[BackendProvider]] = {}
_failed: dict[str, str] = {}
_warned: set[str] = set()
_extra: dict[str, type[BackendProvider]] = {}


@dataclass
class BackendInfo:
    """What ``eventuali backends`` reports about one registered backend."""

    name: str
    entry_point: str
    loads: bool
    error: str | None = None
    schemes: frozenset[str] = frozenset()
    priority: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    return found


def register(provider: type[BackendProvider]) -> None:
    """Register a provider class directly (tests, or code that cannot ship metadata).

    Entry points are the normal way; this is the in-process equivalent.
    """
    with _lock:
        _extra[provider.name] = provider
        _loaded.pop(provider.name, None)
        _failed.pop(provider.name, None)


def unregister(name: str) -> None:
    """Undo :func:`register`."""
    with _lock:
        _extra.pop(name, None)
        _loaded.pop(name, None)
        _failed.pop(name, None)


def names() -> list[str]:
    """Names of every registered backend, loaded or not."""
    return sorted(set(_entry_points()) | set(_extra))


def load(name: str) -> type[BackendProvider]:
    """Load the backend ``name``; raise ``BackendNotFoundError`` / ``BackendUnavailableError``."""
    with _lock:
        if name in _loaded:
            return _loaded[name]
        if name in _extra:
            _loaded[name] = _extra[name]
            return _extra[name]
        if name in _failed:
            raise BackendUnavailableError(_failed[name])
        eps = _entry_points()
        ep = eps.get(name)
        if ep is None:
            raise BackendNotFoundError(
                f"no eventuali backend named {name!r} is installed; registered backends: "
                f"{', '.join(sorted(set(eps) | set(_extra))) or '(none)'}"
                + ("; install the native one with: pip install ./backends/c" if name == "c" else "")
            )
        try:
            provider = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import failure means "cannot load"
            reason = f"backend {name!r} ({ep.value}) is installed but cannot be loaded: {exc}"
            _failed[name] = reason
            raise BackendUnavailableError(reason) from exc
        _loaded[name] = provider
        return provider


def _describe(name: str) -> BackendInfo:
    ep = _entry_points().get(name)
    value = ep.value if ep is not None else f"registered in-process ({_extra[name].__module__})"
    try:
        provider = load(name)
    except BackendUnavailableError as exc:
        return BackendInfo(name=name, entry_point=value, loads=False, error=str(exc))
    try:
        details = dict(provider.describe())
    except Exception as exc:  # noqa: BLE001 - describe() failing is reported, not fatal
        details = {"describe error": str(exc)}
    return BackendInfo(
        name=name,
        entry_point=value,
        loads=True,
        schemes=frozenset(provider.schemes),
        priority=provider.priority,
        details=details,
    )


def describe_all() -> list[BackendInfo]:
    """One :class:`BackendInfo` per registered backend (loads each one)."""
    return [_describe(name) for name in names()]


def all_schemes() -> dict[str, list[str]]:
    """scheme -> names of the loadable backends that serve it."""
    out: dict[str, list[str]] = {}
    for info in describe_all():
        for scheme in info.schemes:
            out.setdefault(scheme, []).append(info.name)
    return out


def _scheme_error(url: StoreURL, detail: str = "") -> UnknownSchemeError:
    served = all_schemes()
    listing = "; ".join(f"{s}:// ({', '.join(sorted(b))})" for s, b in sorted(served.items()))
    return UnknownSchemeError(
        f"no installed backend serves scheme {url.scheme!r} of store URL {url.redacted()!r}"
        f"{detail}; schemes served: {listing or '(none)'}"
    )


def choose(url: StoreURL, backend: str | None = None) -> type[BackendProvider]:
    """The provider that should serve ``url``.

    ``backend`` (an argument) beats the URL's ``+name``, which beats
    ``EVENTUALI_BACKEND``, which beats ``auto``.
    """
    if backend is not None:
        name, source = backend, "the backend= argument"
    elif url.backend is not None:
        name, source = url.backend, f"the URL scheme {url.scheme}+{url.backend}://"
    else:
        name = os.environ.get(ENV_VAR, "auto").strip() or "auto"
        source = f"the environment variable {ENV_VAR}"
    if name != "auto":
        try:
            provider = load(name)
        except BackendNotFoundError as exc:
            raise BackendNotFoundError(f"{exc} (backend {name!r} came from {source})") from None
        except BackendUnavailableError as exc:
            raise BackendUnavailableError(
                f"{exc} (backend {name!r} came from {source}); fix the installation, or "
                f"choose another backend with {ENV_VAR}=auto or {ENV_VAR}=python"
            ) from exc.__cause__
        if url.scheme not in provider.schemes:
            raise UnknownSchemeError(
                f"backend {name!r} (from {source}) does not serve scheme {url.scheme!r} of "
                f"store URL {url.redacted()!r}; it serves "
                f"{', '.join(sorted(provider.schemes))}; use {ENV_VAR}=auto to let eventuali pick "
                "a backend that does"
            )
        return provider
    candidates = []
    for cand in names():
        try:
            provider = load(cand)
        except BackendUnavailableError as exc:
            if cand not in _warned:
                _warned.add(cand)
                warnings.warn(f"{exc}; falling back to another backend", RuntimeWarning, stacklevel=3)
            continue
        if url.scheme in provider.schemes:
            candidates.append(provider)
    if not candidates:
        raise _scheme_error(url)
    candidates.sort(key=lambda p: (-p.priority, p.name))
    return candidates[0]


def open_backend(url: StoreURL, backend: str | None = None):
    """Choose a provider for ``url`` and open the store."""
    return choose(url, backend).open(url)


_accelerators: dict[str, Any] = {}


def accelerator(name: str) -> Any:
    """The native helper ``name`` offered by an installed engine (highest priority first), or None.

    Engines offer helpers through an optional ``accelerator(name)`` classmethod
    on their provider (see :mod:`eventuali.protocol`); the core uses them
    without importing any engine package.  Looked up once per name.
    """
    if name in _accelerators:
        return _accelerators[name]
    found = None
    providers = []
    for n in names():
        try:
            providers.append(load(n))
        except EventualiError:
            continue
    for p in sorted(providers, key=lambda p: -getattr(p, "priority", 0)):
        get = getattr(p, "accelerator", None)
        found = get(name) if callable(get) else None
        if found is not None:
            break
    _accelerators[name] = found
    return found
