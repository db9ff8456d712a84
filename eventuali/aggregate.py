"""``Aggregate``: a pydantic model whose state changes only by applying events.

``apply(event)`` stamps the event's envelope, dispatches it to
``apply_<snake_case_event_type>`` and records it as uncommitted;
``EventStore.save`` persists the uncommitted events.  Loading replays stored
events through ``apply_event`` (dispatch only), which subclasses may override
with a fast path, as the performance guide shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .errors import InvalidInputError, MissingApplyMethodError
from .event import Event, snake_case
from .records import MAX_STREAM_ID_LENGTH
from .serialization import EventCodec

A = TypeVar("A", bound="Aggregate")


class Aggregate(BaseModel):
    """Base class of aggregates.

    ::

        class User(Aggregate):
            name: str = ""

            def apply_user_registered(self, event: UserRegistered) -> None:
                self.name = event.name

    ``id`` defaults to a random UUID string; ``version`` is the version of the
    last applied event (0 for a new aggregate).  Extra attributes may be set
    freely (caches, computed fields); they are part of snapshots.
    """

    # extra="allow": aggregates keep ad-hoc attributes (the guide's caches);
    # no validate_assignment: apply methods assign on the hot replay path.
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    __aggregate_type__: ClassVar[str] = "Aggregate"
    __apply_methods__: ClassVar[dict[str, str]] = {}

    id: str = Field(default_factory=lambda: str(uuid4()))
    version: int = 0

    _uncommitted: list[Event] = PrivateAttr(default_factory=list)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "__aggregate_type__" not in cls.__dict__:
            cls.__aggregate_type__ = cls.__name__
        cls.__apply_methods__ = {}

    @classmethod
    def get_aggregate_type(cls) -> str:
        """The stream type this aggregate's events are stored under."""
        return cls.__aggregate_type__

    # --- changing state ----------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Record ``event`` as happening to this aggregate now, and apply it.

        If the apply method raises, the aggregate is unchanged: the event is not
        recorded and the version does not move.
        """
        if not isinstance(event, Event):
            raise InvalidInputError(
                f"{type(self).__name__}.apply() takes an eventuali.Event, got "
                f"{type(event).__name__} {event!r}"
            )
        d = self.__dict__
        version = d["version"] + 1
        EventCodec.stamp(event, d["id"], self.__aggregate_type__, version)
        self.apply_event(event)
        # Hot path: plain dict/slot access instead of pydantic's __setattr__ and
        # private-attribute __getattr__ (measured at ~0.4 and ~2.5 us a call).
        d["version"] = version
        self.__pydantic_private__["_uncommitted"].append(event)  # type: ignore[index]

    def apply_event(self, event: Event) -> None:
        """Dispatch ``event`` to ``apply_<snake_case_event_type>``; override for a fast path."""
        cls = type(self)
        et = event.event_type or type(event).__event_type__
        try:
            name = cls.__apply_methods__[et]
        except (KeyError, AttributeError):
            name = "apply_" + snake_case(et)
            if not hasattr(cls, "__apply_methods__") or "__apply_methods__" not in cls.__dict__:
                cls.__apply_methods__ = {}
            cls.__apply_methods__[et] = name
        method = getattr(self, name, None)
        if method is None:
            raise MissingApplyMethodError(
                f"{cls.__name__} has no method {name}() for event {et!r}; add "
                f"'def {name}(self, event: {type(event).__name__}) -> None' to {cls.__name__}"
            )
        method(event)

    # --- uncommitted events ------------------------------------------------------

    @property
    def uncommitted_events(self) -> list[Event]:
        return list(_pending(self))

    def get_uncommitted_events(self) -> list[Event]:
        return list(_pending(self))

    def has_uncommitted_events(self) -> bool:
        return bool(_pending(self))

    def mark_events_as_committed(self) -> None:
        _pending(self).clear()

    def is_new(self) -> bool:
        """True until the aggregate's first events are saved or it is loaded."""
        return self.version - len(_pending(self)) == 0

    # --- rebuilding --------------------------------------------------------------

    @classmethod
    def from_events(cls: type[A], events: Iterable[Event], aggregate_id: str | None = None) -> A:
        """Rebuild an aggregate by replaying ``events`` (oldest first)."""
        it = iter(events)
        first = next(it, None)
        if first is None:
            if aggregate_id is None:
                raise InvalidInputError(
                    f"{cls.__name__}.from_events() got no events and no aggregate_id; pass at least one"
                )
            return cls(id=aggregate_id)
        agg = cls(id=aggregate_id or first.aggregate_id or str(uuid4()))
        agg._replay(first)
        agg._replay_many(it)
        return agg

    def _replay(self, event: Event) -> None:
        self.apply_event(event)
        v = event.aggregate_version
        self.__dict__["version"] = v if v is not None else self.version + 1

    def _replay_many(self, events: Iterable[Event]) -> None:
        apply_event = self.apply_event
        version = self.version
        for event in events:
            apply_event(event)
            v = event.aggregate_version
            version = v if v is not None else version + 1
        self.__dict__["version"] = version

    # --- the guide's conversions -------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls: type[A], data: dict[str, Any]) -> A:
        return cls.model_validate(data)


def _pending(aggregate: Aggregate) -> list[Event]:
    """The aggregate's uncommitted events (the list itself, not a copy).

    Read straight from pydantic's private-attribute dict: going through
    ``aggregate._uncommitted`` costs a Python-level ``__getattr__`` (~2.5 us).
    """
    return aggregate.__pydantic_private__["_uncommitted"]  # type: ignore[index]


def check_aggregate_id(aggregate: Aggregate) -> None:
    """Refuse ids the store cannot hold, naming the aggregate and the limit."""
    aid = aggregate.id
    if not isinstance(aid, str) or not aid or len(aid) > MAX_STREAM_ID_LENGTH or "\x00" in aid:
        raise InvalidInputError(
            f"{type(aggregate).__name__} id {aid!r} is not a valid aggregate id; use a non-empty "
            f"string of at most {MAX_STREAM_ID_LENGTH} characters without NUL"
        )
