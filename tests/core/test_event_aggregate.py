"""Event envelope, conversions, and aggregate dispatch - no store involved."""

from __future__ import annotations

from datetime import timezone
from uuid import UUID

import pytest

from eventuali import (
    Aggregate,
    Event,
    InvalidInputError,
    MissingApplyMethodError,
    SerializationError,
)
from eventuali.event import snake_case

from .domain import User, UserDeactivated, UserEmailChanged, UserRegistered, registered_user


def test_apply_stamps_the_envelope_and_records_the_event():
    u = User(id="u-1")
    u.register("Ada", "ada@example.com")
    (ev,) = u.get_uncommitted_events()
    assert isinstance(ev.event_id, UUID) and ev.event_id.version == 7
    assert ev.aggregate_id == "u-1"
    assert ev.aggregate_type == "User"
    assert ev.event_type == "UserRegistered"
    assert ev.event_version == 1
    assert ev.aggregate_version == 1
    assert ev.timestamp is not None and ev.timestamp.tzinfo is not None
    assert ev.timestamp.utcoffset() == timezone.utc.utcoffset(None)
    assert u.version == 1 and u.name == "Ada" and u.is_active


def test_versions_count_up_and_ids_are_time_ordered():
    u = registered_user(n_changes=5)
    evs = u.get_uncommitted_events()
    assert [e.aggregate_version for e in evs] == [1, 2, 3, 4, 5, 6]
    ids = [e.event_id for e in evs]
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert u.version == 6 and u.email == "ada4@example.com"


def test_explicit_envelope_values_are_kept():
    fixed = UUID("01890000-0000-7000-8000-000000000001")
    u = User(id="u")
    u.apply(UserRegistered(name="a", email="a@x", event_id=fixed, user_id="admin"))
    ev = u.get_uncommitted_events()[0]
    assert ev.event_id == fixed and ev.user_id == "admin"


def test_missing_apply_method_names_the_method_and_leaves_the_aggregate_unchanged():
    class Thing(Aggregate):
        pass

    t = Thing(id="t")
    with pytest.raises(MissingApplyMethodError) as info:
        t.apply(UserRegistered(name="a", email="b"))
    msg = str(info.value)
    assert "apply_user_registered" in msg and "Thing" in msg
    assert t.version == 0 and not t.has_uncommitted_events()


def test_a_failing_apply_method_records_nothing():
    class Fussy(Aggregate):
        def apply_user_registered(self, event):
            raise ValueError("no")

    f = Fussy(id="f")
    with pytest.raises(ValueError):
        f.apply(UserRegistered(name="a", email="b"))
    assert f.version == 0 and f.get_uncommitted_events() == []


def test_apply_refuses_non_events():
    with pytest.raises(InvalidInputError, match="takes an eventuali.Event"):
        User().apply({"name": "x"})  # type: ignore[arg-type]


def test_from_events_rebuilds_state_and_version():
    u = registered_user(n_changes=2)
    rebuilt = User.from_events(u.get_uncommitted_events())
    assert rebuilt.id == u.id and rebuilt.version == 3
    assert rebuilt.email == u.email and not rebuilt.has_uncommitted_events()


def test_from_events_without_events_needs_an_id():
    with pytest.raises(InvalidInputError):
        User.from_events([])
    assert User.from_events([], aggregate_id="x").version == 0


def test_snake_case_names():
    assert snake_case("UserRegistered") == "user_registered"
    assert snake_case("HTTPRequestSent") == "http_request_sent"
    assert snake_case("order.placed") == "order_placed"
    assert snake_case("V2Upgrade") == "v2_upgrade"


def test_guide_style_apply_event_override_fast_path():
    class Counter(Aggregate):
        count: int = 0

        def __init__(self, **data):
            super().__init__(**data)
            self.cache = {}

        def apply_event(self, event):
            if isinstance(event, UserEmailChanged):
                self.count += 1
                self.cache.clear()
            else:
                super().apply_event(event)

        def apply_user_registered(self, event):
            self.count = 100

    c = Counter(id="c")
    c.apply(UserRegistered(name="a", email="b"))
    c.apply(UserEmailChanged(new_email="x@y"))
    assert c.count == 101 and c.version == 2 and c.cache == {}


def test_event_json_and_dict_round_trip():
    u = registered_user()
    ev = u.get_uncommitted_events()[0]
    assert UserRegistered.from_json(ev.to_json()) == ev
    assert UserRegistered.from_dict(ev.to_dict()) == ev
    assert ev.to_dict()["event_id"] == str(ev.event_id)
    with pytest.raises(SerializationError, match="UserRegistered"):
        UserRegistered.from_json(b'{"name": 1}')


def test_event_types_register_on_definition_and_explicitly():
    from eventuali import event_registry as registry
    from eventuali import register_event

    assert registry.resolve("UserRegistered") is UserRegistered
    assert registry.resolve("UserDeactivated") is UserDeactivated

    class Renamed(Event):
        __event_type__ = "legacy.renamed"
        x: int

    assert registry.resolve("legacy.renamed") is Renamed
    register_event(Renamed, name="older.name")
    assert registry.resolve("older.name") is Renamed
