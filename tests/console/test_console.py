"""The web console: pages over HTTP, and in a real headless browser (Chromium via Playwright).

The browser tests skip when Playwright or Chromium is missing - unless
``EVENTUALI_REQUIRE_BROWSER=1`` (CI), where they fail.  Chromium is Debian's
package (``apt-get install chromium``), driven at ``/usr/bin/chromium``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REQUIRED = os.environ.get("EVENTUALI_REQUIRE_BROWSER") == "1"
try:
    import uvicorn
except ImportError as exc:  # the console extra is missing
    if REQUIRED:
        raise
    pytest.skip(f'the console needs pip install "eventuali[console]" ({exc})',
                allow_module_level=True)

from eventuali.console import create_app  # noqa: E402
from eventuali.store import SyncEventStore  # noqa: E402

from ..cli.conftest import seed  # noqa: E402
from ..cli.test_browse import raw_write  # noqa: E402

CHROMIUM = os.environ.get("EVENTUALI_CHROMIUM", "/usr/bin/chromium")
XSS = b'{"note": "<script>alert(1)</script><img src=x onerror=alert(2)>"}'


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite://{tmp_path}/console.db"
    seed(url, "python", accounts=3, deposits=2)
    with SyncEventStore.create(url) as s:
        s.backend.append([raw_write("evil-1", "Evil<b>", XSS)])
        s.backend.set_checkpoint("totals", 4)
    return url


class Client:
    """Plain HTTP against the running console (what a browser or curl sends)."""

    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method: str, path: str, params: dict[str, str] | None = None) -> Response:
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        req = urllib.request.Request(url, method=method.upper())
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return Response(r.status, r.headers, r.read().decode())
        except urllib.error.HTTPError as e:
            return Response(e.code, e.headers, e.read().decode())

    def get(self, path: str, params: dict[str, str] | None = None) -> Response:
        return self.request("get", path, params)


@dataclass
class Response:
    status_code: int
    headers: Any
    text: str


@pytest.fixture
def server(store_url: str) -> Iterator[str]:
    """The console for the store, served by uvicorn on a free port of 127.0.0.1."""
    with SyncEventStore.create(store_url) as store:
        srv = uvicorn.Server(uvicorn.Config(create_app(store), host="127.0.0.1", port=0,
                                            log_level="warning"))
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not srv.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        port = srv.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            srv.should_exit = True
            thread.join(30)


@pytest.fixture
def client(server: str) -> Client:
    return Client(server)


def test_pages_show_metrics_streams_events_and_projections(client):
    home = client.get("/")
    assert home.status_code == 200
    assert "<th>events</th><td>10</td>" in home.text.replace("\n", "")
    assert "totals" in home.text and "<td class=\"lag\">6</td>" in home.text
    streams = client.get("/streams", params={"prefix": "acc-", "type": "Account"})
    assert streams.text.count('href="/streams/acc-') == 3 and "evil-1" not in streams.text
    one = client.get("/streams/acc-1")
    assert one.status_code == 200 and "&#34;amount&#34;: 11.0" in one.text
    assert client.get("/streams", params={"limit": "x"}).status_code == 400


def test_everything_shown_is_escaped_and_scripts_are_only_our_own(client):
    for path in ("/streams/evil-1", "/feed", "/streams"):
        r = client.get(path)
        assert "<script>alert" not in r.text and "<img src=x" not in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/streams/evil-1").text
    assert "Evil&lt;b&gt;" in client.get("/feed").text


def test_the_console_never_writes(client, store_url):
    for method in ("post", "put", "delete", "patch"):
        for path in ("/", "/streams", "/streams/acc-1", "/feed"):
            assert client.request(method, path).status_code == 405
    with SyncEventStore.create(store_url) as s:
        assert s.head() == 10 and s.backend.get_checkpoint("totals") == 4


# --- in a browser ----------------------------------------------------------------------


def _browser_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture
def served(server: str) -> str:
    problem = _browser_problem()
    if problem:
        if REQUIRED:
            pytest.fail(f"{problem} (EVENTUALI_REQUIRE_BROWSER=1, so this is a failure)")
        pytest.skip(problem)
    return server


@pytest.fixture
def page(served: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1200, "height": 700})
        pg.dialogs = []
        pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
        try:
            yield pg
        finally:
            browser.close()


def test_browser_pages_load_and_link_together(page, served):
    page.goto(served + "/")
    assert page.locator("#metrics").inner_text().count("\n") >= 5
    assert "totals" in page.locator("#projections").inner_text()
    page.goto(served + "/streams")
    page.fill("input[name=prefix]", "acc-")
    page.click("button[type=submit]")
    assert page.locator("#streams tbody tr").count() == 3
    page.click("text=acc-2")
    assert "acc-2" in page.locator("h1").inner_text()
    assert '"amount": 10.0' in page.locator("article.event").nth(1).inner_text()


def test_browser_live_tail_shows_a_new_event_without_reload(page, served, store_url):
    page.goto(served + "/feed")
    page.wait_for_function("document.getElementById('status').textContent === 'live'",
                           timeout=30_000)
    with SyncEventStore.create(store_url) as s:
        s.backend.append([raw_write("live-1", "JustArrived", XSS)])
    row = page.locator("#feed tr.new").first
    row.wait_for(timeout=30_000)
    text = row.inner_text()
    assert "live-1" in text and "JustArrived" in text
    assert "<script>alert(1)</script>" in text  # shown as text...
    assert page.locator("script").count() == 1  # ...and no script element but ours
    assert page.locator("img").count() == 0
    assert page.dialogs == []
    shot = os.environ.get("EVENTUALI_CONSOLE_SCREENSHOT")
    if shot:
        page.screenshot(path=shot, full_page=False)


def test_browser_shows_a_script_payload_as_text(page, served):
    page.goto(served + "/streams/evil-1")
    assert "<script>alert(1)</script><img src=x onerror=alert(2)>" in page.locator(
        "article.event pre").inner_text()
    assert page.locator("article.event h3").inner_text().startswith("#1 Evil<b>")
    assert page.locator("main script, main img, main b").count() == 0
    assert page.dialogs == []
