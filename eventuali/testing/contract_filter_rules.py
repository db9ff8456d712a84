"""Conformance: the one rule every engine applies to ``read_all`` filter values.

Stated in :meth:`eventuali.protocol.Backend.read_all` and enforced by
:func:`eventuali.record_validation.check_read_all`: an empty event or stream
type name is invalid input (not "matches nothing"), an empty set matches no
record, an empty stream id prefix matches every stream, and ``tenant=""`` is
the default tenant only.
"""

from __future__ import annotations

import pytest

from eventuali.errors import InvalidInputError
from eventuali.protocol import Backend
from eventuali.records import NO_STREAM, ReadFilter, Record

from .contract import BackendFixtures, new_record, write


class FilterRulesContract(BackendFixtures):
    def _populate_rules(self, backend: Backend) -> list[Record]:
        backend.append([
            write("order-1", NO_STREAM, [new_record("Placed"), new_record("Paid")], "Order"),
            write("user-1", NO_STREAM, [new_record("Registered")], "User", tenant="acme"),
        ])
        return backend.read_all()

    @pytest.mark.parametrize(
        "filter",
        [
            ReadFilter(event_types=frozenset({""})),
            ReadFilter(event_types=frozenset({"Placed", ""})),
            ReadFilter(stream_types=frozenset({""})),
            ReadFilter(stream_types=frozenset({"Order", ""}), tenant="acme"),
        ],
        ids=["empty-event-type", "empty-among-event-types", "empty-stream-type",
             "empty-among-stream-types"],
    )
    def test_an_empty_type_name_is_invalid_input(self, backend: Backend, filter: ReadFilter) -> None:
        self._populate_rules(backend)
        with pytest.raises(InvalidInputError, match="empty"):
            backend.read_all(1, None, filter)

    def test_an_empty_set_matches_nothing(self, backend: Backend) -> None:
        assert len(self._populate_rules(backend)) == 3
        assert backend.read_all(1, None, ReadFilter(event_types=frozenset())) == []
        assert backend.read_all(1, None, ReadFilter(stream_types=frozenset())) == []

    def test_an_empty_prefix_matches_every_stream(self, backend: Backend) -> None:
        everything = self._populate_rules(backend)
        assert backend.read_all(1, None, ReadFilter(stream_id_prefix="")) == everything

    def test_the_empty_tenant_is_the_default_tenant_only(self, backend: Backend) -> None:
        everything = self._populate_rules(backend)
        default = backend.read_all(1, None, ReadFilter(tenant=""))
        assert [r.stream_id for r in default] == ["order-1", "order-1"]
        assert [r.stream_id for r in backend.read_all(1, None, ReadFilter(tenant="acme"))] == [
            "user-1"
        ]
        assert len(everything) == 3
