"""The operator console in a real browser: Debian's chromium, driven by Playwright.

Against the session's main test gateway (``gateway_url``: Serve, the fake upstream, the
embedded store): no Serve app of its own. Traffic is made with the official openai SDK;
everything the test then expects to see is waited for (the spend and decision flushers
write about once a second), with generous deadlines.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from playwright.sync_api import expect

from devtools.configs import CHEAP, MASTER_KEY, MID

CHROMIUM = "/usr/bin/chromium"
FIRST_SCREEN_BUDGET = 300_000
"""Bytes the first screen (sign-in redirect, overview page, its assets and data) may transfer."""


def _chromium() -> str:
    """Debian's chromium; ``make test`` installs it (scripts/test-servers.sh). Playwright's own
    browser download is never used."""
    if not os.path.exists(CHROMIUM) and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, capture_output=True)
    if not os.path.exists(CHROMIUM):
        msg = f"{CHROMIUM} is missing and could not be installed (apt install chromium)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    path = _chromium()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def base(gateway_url: str) -> str:
    return gateway_url.removesuffix("/v1")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()


def eventually(check: Callable[[], bool], timeout: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def sign_in(page: Any, base: str, key: str = MASTER_KEY) -> None:
    page.goto(f"{base}/ui")
    page.get_by_label("Key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def client(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=30)


def test_a_wrong_key_cannot_sign_in(page: Any, base: str) -> None:
    sign_in(page, base, "sk-not-a-key-" + secrets.token_hex(8))
    assert page.get_by_role("alert").inner_text().startswith("Incorrect API key")
    assert page.url.endswith("/ui/login")
    assert not [c for c in page.context.cookies() if c["name"] == "routeiq_console"]


def test_sign_in_first_screen_size_and_keyboard(page: Any, base: str) -> None:
    sizes: list[int] = []  # from a cold cache: the login page, then the overview and everything it loads
    page.on("requestfinished", lambda req: sizes.append(req.sizes()["responseBodySize"]
                                                        + req.sizes()["responseHeadersSize"]))
    page.goto(f"{base}/ui")
    page.get_by_label("Key").fill(MASTER_KEY)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/ui/overview")
    page.locator("#tiles .tile").first.wait_for()
    page.wait_for_load_state("networkidle")
    assert 0 < sum(sizes) < FIRST_SCREEN_BUDGET, sizes
    cookie = next(c for c in page.context.cookies() if c["name"] == "routeiq_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "routeiq_console" not in page.evaluate("document.cookie")  # no script can read the session
    assert MASTER_KEY not in page.content()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Overview"


def _table_has(page: Any, table: str, row_text: str) -> bool:
    return bool(page.locator(f"{table} tbody tr", has_text=row_text).count())


def test_traffic_appears_on_overview_and_routing(page: Any, base: str) -> None:
    sdk = client(base, MASTER_KEY)
    ids = []
    for i in range(4):
        raw = sdk.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": f"console test {i}"}])
        ids.append(raw.headers["x-request-id"])
    sdk.chat.completions.create(model=MID, messages=[{"role": "user", "content": "console test direct"}])
    with pytest.raises(openai.APIStatusError):  # a concrete model's failure: counted as an error too
        sdk.with_options(max_retries=0).chat.completions.create(
            model=MID, messages=[{"role": "user", "content": "console test [[fake error=500]]"}])
    sign_in(page, base)
    page.wait_for_url(f"{base}/ui/overview")

    def overview_shows() -> bool:
        page.reload()
        page.locator("#tiles .tile").first.wait_for()
        if not (_table_has(page, "#by-router", "auto") and _table_has(page, "#by-model", MID)):
            return False
        cells = page.locator("#by-model tbody tr", has_text=MID).first.locator("td").all_inner_texts()
        p50 = cells[3].replace(".", "", 1)  # a number once the minute is counted (else a dash)
        return int(cells[1]) >= 2 and int(cells[2]) >= 1 and p50.isdigit()  # requests, errors, p50

    eventually(overview_shows, what="the test's traffic, its error and latency on the overview")
    assert page.locator("#chart-requests canvas").count() == 1  # uPlot drew the chart

    page.get_by_role("link", name="Routing").click()
    page.wait_for_url(f"{base}/ui/routing")

    def routing_shows() -> bool:
        page.reload()
        page.wait_for_selector("#routers section")
        return page.get_by_text(ids[-1][:18]).count() > 0

    eventually(routing_shows, what="the test's routed request among recent decisions")
    section = page.locator("section", has=page.get_by_role("heading", name="Router auto"))
    assert section.locator("text=cost-first").count() > 0


def test_a_key_made_in_the_console_works_shows_spend_and_is_blocked(page: Any, base: str) -> None:
    alias = f"console-{secrets.token_hex(4)}"
    sign_in(page, base)
    page.get_by_role("link", name="Keys & teams").click()
    form = page.locator("#key-form")
    form.get_by_label("Alias").fill(alias)
    form.get_by_label("Models").fill(f"{CHEAP}, {MID}")
    form.get_by_label("Max budget ($)").fill("5")
    form.get_by_label("Budget window").fill("30d")
    form.get_by_label("Requests per minute").fill("1000")
    form.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key-value").inner_text()
    assert key.startswith("sk-")

    answer = client(base, key).chat.completions.create(model=CHEAP, messages=[{"role": "user", "content": "hello"}])
    assert answer.choices[0].message.content

    def spend_shows() -> bool:
        page.get_by_label("Search").fill(alias)
        page.get_by_role("button", name="Search").click()
        row = page.locator("#keys tbody tr", has_text=alias)
        expect(page.locator("#status")).to_have_text("")
        return row.count() == 1 and "$0.000000" not in row.locator("td").nth(4).inner_text()

    eventually(spend_shows, what="the key's spend in its budget window")
    row = page.locator("#keys tbody tr", has_text=alias)
    cells = row.locator("td")
    assert cells.nth(5).inner_text() == "$5.00" and cells.nth(6).inner_text().endswith("UTC")  # budget left, window end
    assert cells.nth(8).inner_text() == "active"

    row.get_by_role("button", name=f"block {alias}").click()
    eventually(lambda: "blocked" in page.locator("#keys tbody tr", has_text=alias).inner_text(), what="blocked")
    with pytest.raises(openai.AuthenticationError):
        client(base, key).chat.completions.create(model=CHEAP, messages=[{"role": "user", "content": "again"}])

    page.get_by_role("link", name="Spend").click()
    page.wait_for_url(f"{base}/ui/spend")
    key_id = page.evaluate(f"fetch('/ui/api/keys?q={alias}').then(r => r.json()).then(d => d.keys[0].key_id)")
    eventually(lambda: _table_has(page, "#spend", key_id), what="the key's row on the spend page")
    with page.expect_download() as got:
        page.get_by_role("link", name="Export CSV").click()
    assert key_id in open(got.value.path()).read()  # noqa: SIM115


def test_a_mutation_without_the_csrf_token_is_refused(page: Any, base: str) -> None:
    sign_in(page, base)
    page.wait_for_url(f"{base}/ui/overview")
    refused = page.request.post(f"{base}/ui/api/keys", data={"key_alias": "forged"})
    assert refused.status == 403 and refused.json()["error"]["code"] == "csrf_failed"
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    allowed = page.request.post(f"{base}/ui/api/teams", data={"team_id": f"t-{secrets.token_hex(4)}"},
                                headers={"x-csrf-token": token})
    assert allowed.status == 200
