"""``Event``: the pydantic base class of every domain event, and the registry of event types.

An event carries its envelope (id, aggregate, versions, time, causation,
correlation, user) beside the user's fields.  Subclasses register themselves
by type name when they are defined, so that stored events load back as the
right class; an event whose class is unknown loads as :class:`UnknownEvent`
with every stored field preserved.

Per class, ``__event_type__`` (default: the class name) is the stored type
name and ``__event_version__`` (default 1) the schema version that upcasters
bring older stored versions up to.

One type name, one class: a second, different class with a name already
registered is a ``ConfigurationError`` naming both, unless it says
``class OrderPlaced(Event, replace_registered=True)`` (then it is what stored
events of that name load as).  Running the same class statement again (a
reloaded module, a function defining a class called twice) is not a second
class and replaces the first quietly.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from types import FrameType
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from .errors import ConfigurationError, SerializationError

ENVELOPE_FIELDS = frozenset(
    {
        "event_id",
        "aggregate_id",
        "aggregate_type",
        "event_type",
        "event_version",
        "aggregate_version",
        "timestamp",
        "causation_id",
        "correlation_id",
        "user_id",
    }
)

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_SNAKE_1 = re.compile(r"(.)([A-Z][a-z]+)")
_SNAKE_2 = re.compile(r"([a-z0-9])([A-Z])")


def snake_case(name: str) -> str:
    """``UserRegistered`` -> ``user_registered``; ``HTTPRequestSent`` -> ``http_request_sent``.

    Dots and dashes (``order.placed``) become underscores, so any type name maps
    to a valid method suffix.
    """
    name = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return _SNAKE_2.sub(r"\1_\2", _SNAKE_1.sub(r"\1_\2", name)).lower()


class Event(BaseModel):
    """Base class of domain events.

    Define fields as on any pydantic model::

        class UserRegistered(Event):
            name: str
            email: str

    The envelope is filled in by ``Aggregate.apply`` (id, aggregate id/type and
    version, timestamp) unless set explicitly.
    """

    model_config = ConfigDict(ser_json_timedelta="float")

    __event_type__: ClassVar[str] = "Event"
    __event_version__: ClassVar[int] = 1
    __event_defined_at__: ClassVar[tuple[str, int] | None] = None
    """(file, line) of the class statement; tells a re-run definition from a second class."""

    event_id: UUID | None = None
    aggregate_id: str | None = None
    aggregate_type: str | None = None
    event_type: str | None = None
    event_version: int | None = None
    aggregate_version: int | None = None
    timestamp: datetime | None = None
    causation_id: UUID | None = None
    correlation_id: UUID | None = None
    user_id: str | None = None

    def __init_subclass__(cls, replace_registered: bool = False, **kwargs: Any) -> None:
        # The class keyword is taken here; pydantic hands it to __pydantic_init_subclass__ too.
        super().__init_subclass__(**kwargs)
        cls.__event_defined_at__ = _definition_site()

    @classmethod
    def __pydantic_init_subclass__(cls, replace_registered: bool = False, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "__event_type__" not in cls.__dict__:
            cls.__event_type__ = cls.__name__
        if not cls.__dict__.get("__abstract_event__", False):
            registry.register(cls, replace=replace_registered)

    @classmethod
    def get_event_type(cls) -> str:
        """The name this class is stored under."""
        return cls.__event_type__

    # --- conversions (the guide's to_json/from_json, to_dict/from_dict) -----------

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> Event:
        try:
            return cls.model_validate_json(data)
        except ValueError as exc:
            raise SerializationError(f"cannot read {cls.__name__} from JSON: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        try:
            return cls.model_validate(data)
        except ValueError as exc:
            raise SerializationError(f"cannot read {cls.__name__} from dict: {exc}") from exc


_CLASS_MACHINERY = ("pydantic", "abc", "typing", __name__)


def _definition_site() -> tuple[str, int] | None:
    """(file, line) of the class statement being executed: the first frame outside the
    class-creation machinery (pydantic's metaclass, this module)."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_CLASS_MACHINERY):
        frame = frame.f_back
    return None if frame is None else (frame.f_code.co_filename, frame.f_lineno)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _described(cls: type) -> str:
    """The module-qualified name, with where it was defined when that is known."""
    site = getattr(cls, "__event_defined_at__", None)
    return _qualified(cls) + (f" (defined at {site[0]}:{site[1]})" if site else "")


class UnknownEvent(Event):
    """A stored event whose type has no registered class; every stored field is kept.

    Fields beyond the envelope are available as attributes and in
    ``model_extra``; saving it again writes the same fields back.
    """

    model_config = ConfigDict(extra="allow")
    __abstract_event__: ClassVar[bool] = True


class EventRegistry:
    """Maps stored type names to event classes.

    Every ``Event`` subclass registers itself when defined; ``register(cls,
    name=...)`` adds an explicit (extra) name, e.g. for a renamed class.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, type[Event]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._lock = threading.Lock()

    def register(self, cls: type[Event], name: str | None = None, *, replace: bool = False) -> type[Event]:
        """Register ``cls`` under ``name`` (default: its ``__event_type__``).

        A name held by another class is refused, naming both, unless ``replace``
        is true; the same class statement run again (a reloaded module) replaces.
        """
        if not (isinstance(cls, type) and issubclass(cls, Event)):
            raise ConfigurationError(f"{cls!r} is not an Event subclass; only events can be registered")
        name = name or cls.__event_type__
        with self._lock:
            old = self._by_name.get(name)
            if old is not None and old is not cls and not replace and not _same_definition(old, cls):
                raise ConfigurationError(
                    f"event type {name!r} is already registered by {_described(old)}; "
                    f"{_described(cls)} cannot take it too, as stored {name!r} events can load as "
                    "one class only. Give one of them another name (__event_type__ = "
                    f"'{name}V2' in its body), or replace the first on purpose with "
                    f"class {cls.__name__}(..., replace_registered=True)"
                )
            self._by_name[name] = cls
        return cls

    def unregister(self, name: str) -> type[Event] | None:
        """Forget the class registered as ``name`` (returned, or None); stored events of that
        name then load as :class:`UnknownEvent`.  For plugins and tests that define classes
        for a while."""
        with self._lock:
            return self._by_name.pop(name, None)

    def register_upcaster(self, event_type: str, from_version: int, fn: Upcaster) -> None:
        """Register ``fn``: it turns a stored ``event_type`` dict at ``from_version`` into ``from_version + 1``."""
        key = (event_type, from_version)
        with self._lock:
            old = self._upcasters.get(key)
            # Re-running the same definition (a reloaded module, a notebook cell)
            # replaces it; a different function for the same step is a mistake.
            if old is not None and (old.__module__, old.__qualname__) != (
                fn.__module__,
                fn.__qualname__,
            ):
                raise ConfigurationError(
                    f"an upcaster for {event_type!r} from version {from_version} is already "
                    f"registered ({old.__module__}.{old.__qualname__}); one step, one upcaster"
                )
            self._upcasters[key] = fn

    def upcast(self, event_type: str, have: int, want: int, data: dict[str, Any]) -> dict[str, Any]:
        """Run the upcasters that bring ``data`` from schema version ``have`` to ``want``."""
        if have > want:
            raise SerializationError(
                f"stored {event_type!r} event has schema version {have}, newer than the class's "
                f"__event_version__ {want}; upgrade the code that reads it"
            )
        while have < want:
            fn = self._upcasters.get((event_type, have))
            if fn is None:
                raise SerializationError(
                    f"no upcaster registered for {event_type!r} from version {have} to "
                    f"{have + 1}; register one with @eventuali.upcaster({event_type!r}, from_version={have})"
                )
            data = fn(data)
            have += 1
        return data

    def resolve(self, name: str) -> type[Event] | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)


registry = EventRegistry()


def _same_definition(old: type[Event], new: type[Event]) -> bool:
    """The same class statement executed again (reload, a factory called twice)."""
    site = getattr(new, "__event_defined_at__", None)
    return (_qualified(old) == _qualified(new) and site is not None
            and site == getattr(old, "__event_defined_at__", None))


def register_event(cls: type[Event] | None = None, *, name: str | None = None, replace: bool = False):
    """Register an event class under its type name or ``name``; usable as a decorator.

    ``replace=True`` takes a name another class holds (see :meth:`EventRegistry.register`).
    """

    def deco(c: type[Event]) -> type[Event]:
        return registry.register(c, name, replace=replace)

    return deco(cls) if cls is not None else deco


def upcaster(event_type: str | type[Event], from_version: int):
    """Decorator: register a function that upgrades stored ``event_type`` data by one version.

    ::

        @upcaster("OrderPlaced", from_version=1)
        def order_placed_v1_to_v2(data: dict) -> dict:
            data["currency"] = "EUR"
            return data
    """
    name = event_type if isinstance(event_type, str) else event_type.__event_type__

    def deco(fn: Upcaster) -> Upcaster:
        registry.register_upcaster(name, from_version, fn)
        return fn

    return deco


UTC = timezone.utc
