"""Nothing is stored that cannot be read back, through the public API, on every engine.

NaN/Infinity, JSON deeper than the reader goes, and event versions that would be
taken for expected-version sentinels are refused at save with an error that names
the event and the fix; nothing of the failed save is written.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from eventuali import (
    Aggregate,
    Event,
    InvalidInputError,
    OptimisticConcurrencyError,
    SerializationError,
)
from eventuali.payload_limits import MAX_JSON_DEPTH


class TrapMeasured(Event):
    reading: float = 0.0
    detail: Any = None


class TrapMeasuredLoose(Event):
    model_config = ConfigDict(ser_json_inf_nan="strings")
    reading: float = 0.0


class TrapPoint(BaseModel):
    x: float
    label: str = ""


class TrapShapes(Event):
    """Floats reached through every kind of container: each must still be checked."""

    point: TrapPoint | None = None
    weights: dict[str, float] = {}
    pair: tuple[int, float] = (0, 0.0)
    series: list[list[float]] = []
    either: int | float = 0
    maybe: float | None = None


class TrapNode(BaseModel):
    children: list[TrapNode] = []


class TrapTree(Event):
    root: TrapNode = TrapNode()


class TrapSensor(Aggregate):
    readings: list[float] = []

    def apply_trap_measured(self, event: TrapMeasured) -> None:
        self.readings = [*self.readings, event.reading]


def nested(levels: int) -> Any:
    """A JSON value whose arrays nest ``levels`` deep."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def assert_nothing_written(store, aggregate_id: str, head: int) -> None:
    assert store.head() == head
    assert store.stream_version(aggregate_id) == 0
    assert store.load(TrapSensor, aggregate_id) is None


# --- NaN and infinities ---------------------------------------------------------------


@pytest.mark.parametrize("value, shown", [(math.nan, "NaN"), (math.inf, "Infinity"),
                                           (-math.inf, "-Infinity")])
def test_a_non_finite_float_is_refused_at_save_and_nothing_is_written(sync_store, value, shown):
    ok = TrapSensor(id="sensor-ok")
    ok.apply(TrapMeasured(reading=1.5))
    bad = TrapSensor(id="sensor-bad")
    bad.apply(TrapMeasured(reading=2.0))
    bad.apply(TrapMeasured(reading=value))
    head = sync_store.head()
    with pytest.raises(SerializationError) as err:
        sync_store.save(ok, bad)  # one atomic save: the good aggregate is not written either
    message = str(err.value)
    assert "TrapMeasured" in message and "field reading" in message and shown in message
    assert "ser_json_inf_nan='strings'" in message
    assert_nothing_written(sync_store, "sensor-bad", head)
    assert sync_store.stream_version("sensor-ok") == 0
    assert len(bad.uncommitted_events) == 2  # still pending: the caller can fix and retry


def test_a_non_finite_float_deep_in_a_bare_event_is_named_by_its_path(sync_store):
    head = sync_store.head()
    event = TrapMeasured(aggregate_id="sensor-1", detail={"series": [1.0, {"peak": math.inf}]})
    with pytest.raises(SerializationError, match=r"field detail\.series\[1\]\.peak is Infinity"):
        sync_store.save_events([event])
    assert_nothing_written(sync_store, "sensor-1", head)


@pytest.mark.parametrize("fields, where", [
    ({"point": TrapPoint(x=math.nan)}, "point.x"),
    ({"weights": {"a": 1.0, "b": -math.inf}}, "weights.b"),
    ({"pair": (1, math.inf)}, "pair[1]"),
    ({"series": [[1.0], [2.0, math.nan]]}, "series[1][1]"),
    ({"either": math.inf}, "either"),
    ({"maybe": math.nan}, "maybe"),
], ids=["nested-model", "dict-value", "tuple", "nested-list", "union", "optional"])
def test_a_non_finite_float_in_any_container_is_refused(sync_store, fields, where):
    head = sync_store.head()
    with pytest.raises(SerializationError, match=rf"field {re.escape(where)} is "):
        sync_store.save_events([TrapShapes(aggregate_id="shapes", **fields)])
    assert_nothing_written(sync_store, "shapes", head)
    sync_store.save_events([TrapShapes(aggregate_id="shapes", maybe=None, either=2.5)])
    assert sync_store.load_events("shapes")[0].either == 2.5


def test_a_recursive_model_deeper_than_the_limit_is_refused(sync_store):
    node = TrapNode()
    for _ in range(MAX_JSON_DEPTH // 2):  # each level is an object and a list
        node = TrapNode(children=[node])
    head = sync_store.head()
    with pytest.raises(SerializationError, match="field 'root' is the deepest"):
        sync_store.save_events([TrapTree(aggregate_id="tree", root=node)])
    assert sync_store.head() == head and sync_store.stream_version("tree") == 0


def test_the_words_nan_and_infinity_inside_text_are_plain_data(sync_store):
    sync_store.save_events([TrapMeasured(aggregate_id="s", detail="NaN Infinity -Infinity")])
    [loaded] = sync_store.load_events("s")
    assert loaded.detail == "NaN Infinity -Infinity"


def test_a_class_that_stores_non_finite_floats_as_strings_gets_them_back(sync_store):
    sync_store.save_events([TrapMeasuredLoose(aggregate_id="s", reading=v)
                            for v in (math.inf, -math.inf, math.nan)])
    loaded = [e.reading for e in sync_store.load_events("s")]
    assert loaded[:2] == [math.inf, -math.inf] and math.isnan(loaded[2])
    assert [se.event.reading for se in sync_store.read_all()][:2] == [math.inf, -math.inf]


# --- deep JSON ------------------------------------------------------------------------


def test_json_at_the_depth_limit_is_saved_and_reads_back(sync_store):
    # The event object is level 1, the list field adds MAX_JSON_DEPTH - 1 levels.
    deepest = nested(MAX_JSON_DEPTH - 1)
    sync_store.save_events([TrapMeasured(aggregate_id="deep", detail=deepest)])
    [loaded] = sync_store.load_events("deep")
    assert loaded.detail == deepest
    assert [se.event.detail for se in sync_store.read_all()] == [deepest]


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH, 199, 250])
def test_json_deeper_than_the_limit_is_refused_and_nothing_is_written(sync_store, levels):
    head = sync_store.head()
    with pytest.raises(SerializationError) as err:
        sync_store.save_events([TrapMeasured(aggregate_id="deep", detail=nested(levels))])
    message = str(err.value)
    assert f"nests {levels + 1} levels deep" in message and "'detail'" in message
    assert f"MAX_JSON_DEPTH = {MAX_JSON_DEPTH}" in message
    assert_nothing_written(sync_store, "deep", head)


def test_the_depth_limit_is_below_what_the_reader_parses():
    from pydantic_core import from_json

    from eventuali.payload_limits import json_depth

    assert MAX_JSON_DEPTH < 200
    doc = b'{"a":' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    assert json_depth(doc) == MAX_JSON_DEPTH
    from_json(doc)  # pydantic's parser reads it
    assert json_depth(b'{"s":"[[[{{{","t":["]"]}') == 2  # brackets inside strings do not count


# --- versions on events are >= 1 ------------------------------------------------------


@pytest.mark.parametrize("version", [0, -1, -2, -3])
def test_an_event_version_below_one_is_refused_not_taken_as_a_sentinel(sync_store, version):
    sync_store.save_events([TrapMeasured(aggregate_id="acct", reading=1.0)])
    head = sync_store.head()
    with pytest.raises(InvalidInputError, match=rf"aggregate_version={version}; versions on "
                                                r"events start at 1"):
        sync_store.save_events([TrapMeasured(aggregate_id="acct", aggregate_version=version)])
    assert sync_store.head() == head
    assert [e.aggregate_version for e in sync_store.load_events("acct")] == [1]


def test_versions_on_events_are_still_an_exact_expectation(sync_store):
    sync_store.save_events([TrapMeasured(aggregate_id="acct", aggregate_version=1)])
    sync_store.save_events([TrapMeasured(aggregate_id="acct", aggregate_version=2),
                            TrapMeasured(aggregate_id="acct", aggregate_version=3)])
    with pytest.raises(OptimisticConcurrencyError):
        sync_store.save_events([TrapMeasured(aggregate_id="acct", aggregate_version=3)])
    assert [e.aggregate_version for e in sync_store.load_events("acct")] == [1, 2, 3]


@pytest.mark.parametrize("version", [-1, -2, -3])
def test_an_aggregate_with_a_negative_version_is_refused(sync_store, version):
    sensor = TrapSensor(id="sensor-neg", version=version)
    sensor.apply(TrapMeasured(reading=1.0))
    head = sync_store.head()
    with pytest.raises(InvalidInputError, match="version is >= 0"):
        sync_store.save(sensor)
    assert_nothing_written(sync_store, "sensor-neg", head)


# --- read_all filter values: one rule on every engine ------------------------------------


@pytest.mark.parametrize("filters", [{"event_types": [""]}, {"event_types": ["TrapMeasured", ""]},
                                     {"aggregate_types": [""]}])
def test_an_empty_type_name_in_a_read_filter_is_invalid_input(sync_store, filters):
    sync_store.save_events([TrapMeasured(aggregate_id="s")])
    with pytest.raises(InvalidInputError, match="empty name"):
        sync_store.read_all(**filters)


def test_empty_prefix_and_empty_tenant_filters_follow_the_stated_rule(sync_store):
    sync_store.save_events([TrapMeasured(aggregate_id="s")])
    assert len(sync_store.read_all(aggregate_id_prefix="")) == 1
    assert len(sync_store.read_all(tenant="")) == 1  # the default tenant
    assert sync_store.read_all(event_types=[]) == []
