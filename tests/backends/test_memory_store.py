"""memory:// naming: a named store is shared in the process, an unnamed one is private."""

from __future__ import annotations

import uuid

import pytest

from eventuali.errors import ConfigurationError
from eventuali.records import NO_STREAM
from eventuali.registry import open_backend
from eventuali.testing.contract import write
from eventuali.url import parse_url


def test_named_store_is_shared_and_outlives_a_close() -> None:
    name = f"memory://shared-{uuid.uuid4().hex}"
    one = open_backend(parse_url(name))
    one.append([write("s", NO_STREAM, 2)])
    one.close()
    two = open_backend(parse_url(name))
    assert two.stream_version("s") == 2
    two.close()


def test_unnamed_store_is_private() -> None:
    one, two = open_backend(parse_url("memory://")), open_backend(parse_url("memory://"))
    one.append([write("s", NO_STREAM, 1)])
    assert two.head() == 0
    one.close()
    two.close()


def test_memory_takes_no_options() -> None:
    with pytest.raises(ConfigurationError, match="takes no options"):
        open_backend(parse_url("memory://x?size=1"))
