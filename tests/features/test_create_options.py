"""``EventStore.create(url, **settings)``: keyword settings are URL options, validated alike, on every store."""

from __future__ import annotations

import os

import pytest

from eventuali import ConfigurationError, EventStore, SyncEventStore
from eventuali.url import parse_url

from .domain import User, UserRegistered

# One setting each scheme accepts, and a second value for it.
_SETTING = {"sqlite": ("busy_timeout", 1234, 99), "postgresql": ("pool_timeout", 7, 8)}

def _sqlite_file(url: str) -> str | None:
    parsed = parse_url(url)
    return parsed.path if parsed.scheme == "sqlite" and parsed.path != ":memory:" else None


async def test_a_keyword_setting_is_the_url_option(store_url):
    url, backend = store_url
    scheme = parse_url(url).scheme
    if scheme not in _SETTING:
        # memory:// takes no options: a keyword setting is refused as the URL option is.
        with pytest.raises(ConfigurationError, match="takes no options, got busy_timeout"):
            await EventStore.create(url, backend=backend, busy_timeout=5)
        return
    key, value, other = _SETTING[scheme]
    store = await EventStore.create(url, backend=backend, **{key: value})
    try:
        assert store.url.options[key] == str(value)
        u = User(id="kw")
        u.apply(UserRegistered(name="n", email="e"))
        await store.save(u)
    finally:
        await store.close()
    sep = "&" if "?" in url else "?"
    # The same value in the URL and as a keyword is one setting; different values are refused.
    same = SyncEventStore.create(f"{url}{sep}{key}={value}", backend=backend, **{key: value})
    try:
        assert same.load(User, "kw").name == "n"
    finally:
        same.close()
    with pytest.raises(ConfigurationError, match=rf"{key}='{value}' in the URL and {key}='{other}' "
                                                 "as a keyword argument; give each setting once"):
        await EventStore.create(f"{url}{sep}{key}={value}", backend=backend, **{key: other})


async def test_an_unknown_keyword_setting_is_refused_listing_the_valid_ones_and_opens_nothing(store_url, tmp_path):
    url, backend = store_url
    scheme = parse_url(url).scheme
    if scheme == "sqlite" and _sqlite_file(url):
        url = f"sqlite:///{tmp_path}/never.db"
    valid = {"sqlite": "valid options are synchronous, busy_timeout, mode",
             "postgresql": "valid options for postgresql:// are .*pool_size",
             "memory": "the memory backend takes no options"}[scheme]
    with pytest.raises(ConfigurationError, match=rf"pool_sise.*{valid}|{valid}.*pool_sise"):
        await EventStore.create(url, backend=backend, pool_sise=20)
    with pytest.raises(ConfigurationError, match="pool_sise"):
        SyncEventStore.create(url, backend=backend, pool_sise=20)
    if scheme == "sqlite":
        assert not os.path.exists(f"{tmp_path}/never.db")  # refused before anything is opened
    with pytest.raises(ConfigurationError, match="'pool' is a dict; only connect_args, server_settings"):
        await EventStore.create(url, backend=backend, pool={"size": 2})
    with pytest.raises(ConfigurationError, match=r"pool_size=\[20\] must be a string or a number"):
        await EventStore.create(url, backend=backend, pool_size=[20])
