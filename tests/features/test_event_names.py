"""One stored type name, one event class: a second class with a taken name is refused unless it says so."""

from __future__ import annotations

import pytest

from eventuali import ConfigurationError, Event, event_registry, register_event

_HERE = r"tests\.features\.test_event_names"


@pytest.fixture(autouse=True)
def _forget_names():
    """The classes defined here leave the process-wide registry afterwards."""
    before = set(event_registry.names())
    yield
    for name in set(event_registry.names()) - before:
        event_registry.unregister(name)


def test_a_second_class_with_a_taken_name_is_refused_naming_both():
    class ParcelShipped(Event):
        parcel: str

    with pytest.raises(ConfigurationError, match=(
            rf"event type 'ParcelShipped' is already registered by {_HERE}\.test_a_second_class_with_a_"
            r"taken_name_is_refused_naming_both\.<locals>\.ParcelShipped \(defined at .*test_event_names\.py:"
            rf"\d+\); {_HERE}\..*<locals>\.ParcelShipped \(defined at .*\) cannot take it too.*"
            r"__event_type__ = 'ParcelShippedV2'.*replace_registered=True")):
        class ParcelShipped(Event):  # noqa: F811 - the second class is the point
            weight: int
    assert event_registry.resolve("ParcelShipped") is ParcelShipped
    assert "parcel" in ParcelShipped.model_fields

    # An extra name given with register_event() is checked the same way.
    class Other(Event):
        __event_type__ = "parcel.other"
        weight: int

    with pytest.raises(ConfigurationError, match=r"'ParcelShipped' is already registered.*<locals>\.Other"):
        register_event(Other, name="ParcelShipped")
    assert event_registry.resolve("ParcelShipped") is ParcelShipped


def test_a_taken_explicit_type_name_is_refused_and_the_first_class_stays():
    class Dup(Event):
        __event_type__ = "parcel.dup"

    with pytest.raises(ConfigurationError, match=r"'parcel\.dup' is already registered by .*<locals>\.Dup "
                                                 r"\(defined at .*\); .*<locals>\.Dup2 \("):
        class Dup2(Event):
            __event_type__ = "parcel.dup"
    assert event_registry.resolve("parcel.dup") is Dup


async def test_replacing_on_purpose_loads_stored_events_as_the_new_class(store):
    class ParcelRouted(Event):
        hub: str

    await store.save_events([ParcelRouted(aggregate_id="parcel-1", hub="LYS")])

    class ParcelRouted(Event, replace_registered=True):  # noqa: F811
        hub: str
        note: str = "v2"

    [back] = await store.load_events("parcel-1")
    assert type(back) is ParcelRouted and back.hub == "LYS" and back.note == "v2"
    # The plain function form takes the same opt-in.
    register_event(ParcelRouted, name="parcel.routed")

    class Later(Event):
        hub: str

    register_event(Later, name="parcel.routed", replace=True)
    assert event_registry.resolve("parcel.routed") is Later


def test_running_the_same_class_statement_again_is_not_a_second_class():
    def define():
        class ParcelScanned(Event):
            at: str

        return ParcelScanned

    first, again = define(), define()  # a reloaded module or a factory does this
    assert first is not again and event_registry.resolve("ParcelScanned") is again


def test_unregister_forgets_a_name():
    class ParcelLost(Event):
        reason: str

    assert event_registry.unregister("ParcelLost") is ParcelLost
    assert event_registry.resolve("ParcelLost") is None and event_registry.unregister("ParcelLost") is None

    class ParcelLost(Event):  # noqa: F811 - the name is free again: no replace needed
        reason: str
        fee: int = 0

    assert event_registry.resolve("ParcelLost") is ParcelLost
