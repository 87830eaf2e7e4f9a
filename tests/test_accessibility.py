"""Accessibility of the search page and the embed, in Debian's Chromium (docs/accessibility.md).

- axe-core audits each view of the page (empty, results, filters open, no
  results, similar speeches) and /embed: no violation of impact serious or
  critical may be left. axe-core's JavaScript comes inside the
  axe-playwright-python wheel (the `test` extra): nothing is fetched.
- Keyboard only (page.keyboard: Tab, Shift+Tab, Enter, Space, arrows): search,
  a filter, the next page, "similar" and back, with focus always visible and
  never dropped to <body> when the page redraws.
- Screen readers: every update is announced by one polite live region,
  #announce ("10 results for “HS2”, 1–10 of 57 speeches"), on the page and in
  the embed.

The page is the same whichever store answers it (test_api covers the stores'
agreement), so this module serves the embedded store only: one live service,
half the time.
"""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from service.app import create_app

from fixtures import StoreUnderTest, uvicorn_app, settled

QUERY = "surveillance cameras HS2"
NOTHING = "zzqxjv wqpfkx"  # in keyword mode nothing matches
AXE = Axe()  # the axe-core build inside the wheel


@pytest.fixture(scope="module")
def service(small_index, encoder, portals):
    """The real app over the small index (embedded store), allowing the first portal's origin to embed it."""
    _, allowed_origin, _ = portals
    settings = StoreUnderTest("embedded", index_dir=small_index).settings(allowed_origins=[allowed_origin], reload_interval=0)
    with uvicorn_app(create_app(settings, encoder=encoder)) as url:
        yield url




# ---------------------------------------------------------------- axe-core


def _audit(page, view: str) -> None:
    """axe-core over the page as it is now: fail on serious or critical violations, naming each and where.

    The audit runs under the page's own strict CSP (script-src 'self'), with no
    bypass_csp: Playwright's page.evaluate goes through the DevTools protocol,
    which the page's policy does not govern, so axe's script is injected while
    the page stays exactly as served. (Were that ever refused, the fix is a
    context made with bypass_csp=True for the audit alone.)"""
    violations = AXE.run(page, options={"resultTypes": ["violations"]}).response["violations"]
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, f"axe-core on {view}: " + "; ".join(
        f"{v['id']} ({v['impact']}: {v['help']}) at " + ", ".join(" >>> ".join(n["target"]) for n in v["nodes"])
        for v in bad)


def _similar_view(page, service):
    page.goto(f"{service}/?q={QUERY}")
    page.locator(".result .similar").first.click()
    page.wait_for_selector("#status cite")


VIEWS = {
    "empty page": lambda page, service: page.goto(service + "/"),
    "results": lambda page, service: page.goto(f"{service}/?q={QUERY}"),
    "filters open": lambda page, service: (page.goto(f"{service}/?q={QUERY}"), page.click("#filters-panel summary")),
    "no results": lambda page, service: page.goto(f"{service}/?q={NOTHING}&mode=keyword"),
    "similar speeches": _similar_view,
    "embed, empty": lambda page, service: page.goto(service + "/embed"),
    "embed with results": lambda page, service: page.goto(f"{service}/embed?q={QUERY}"),
}


@pytest.mark.parametrize("view", list(VIEWS))
def test_axe_finds_no_serious_or_critical_violations(page, service, view):
    VIEWS[view](page, service)
    settled(page)
    expect(page.locator("#index-info")).to_contain_text("passages")  # the footer drawn too
    if view == "filters open":
        expect(page.locator("#f-house")).to_be_visible()
    _audit(page, view)


# ---------------------------------------------------------------- keyboard only

_FOCUSED = """() => {
  const e = document.activeElement, s = getComputedStyle(e);
  return {id: e.id, tag: e.tagName.toLowerCase(), cls: String(e.className), text: (e.textContent || "").trim().slice(0, 40),
          ring: (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none"};
}"""


def _focused(page) -> dict:
    return page.evaluate(_FOCUSED)


def _tab_to(page, wanted, key: str = "Tab", limit: int = 80) -> dict:
    """Press Tab (or Shift+Tab) until the focused element is the wanted one; it must show that it has focus."""
    seen = []
    for _ in range(limit):
        page.keyboard.press(key)
        focused = _focused(page)
        if wanted(focused):
            assert focused["ring"], f"focus is not visible on {focused}"
            return focused
        seen.append(focused["id"] or focused["tag"])
    raise AssertionError(f"{key} never reached it; it went through {seen}")


def test_keyboard_alone_searches_filters_pages_and_finds_similar_speeches(page, service):
    page.goto(service + "/")
    settled(page)
    announce = page.locator("#announce")

    # The search box, a query, Enter: focus stays in the box (to search again), and the results are announced.
    _tab_to(page, lambda f: f["id"] == "q")
    page.keyboard.type(QUERY)
    page.keyboard.press("Enter")
    page.wait_for_selector(".result")
    settled(page)
    assert _focused(page)["id"] == "q"
    expect(announce).to_have_text(re.compile(rf"^10 results for “{QUERY}”, 1–10 of \d+ speeches$"))
    page.keyboard.press("Tab")
    assert _focused(page)["id"] == "go"
    page.keyboard.press("Shift+Tab")
    assert _focused(page)["id"] == "q"

    # The filters: open the panel with Enter, choose Commons with an arrow key.
    _tab_to(page, lambda f: f["tag"] == "summary")
    page.keyboard.press("Enter")
    expect(page.locator("#filters-panel")).to_have_attribute("open", "")
    _tab_to(page, lambda f: f["id"] == "f-house")
    page.keyboard.press("ArrowDown")
    page.wait_for_url("**house=commons**")
    settled(page)
    assert _focused(page)["id"] == "f-house"  # the form is not redrawn: focus stays on the filter
    houses = page.locator(".result .house").all_inner_texts()
    assert houses and all("Commons" in h for h in houses)

    # The next page: focus moves to the new results (the list), and the new range is announced.
    _tab_to(page, lambda f: f["id"] == "next")
    page.keyboard.press("Enter")
    page.wait_for_url("**offset=10**")
    settled(page)
    expect(page.locator("#page-info")).to_have_text("Page 2")
    expect(announce).to_have_text(re.compile(r", 11–\d+ of \d+ speeches$"))
    focused = _focused(page)
    assert focused["id"] == "results" and focused["ring"], focused

    # "Similar speeches" on the first card, with Space: focus to the similar speeches, announced.
    seed = page.locator(".result .similar").first.get_attribute("data-speech")
    _tab_to(page, lambda f: "similar" in f["cls"].split())
    page.keyboard.press("Space")
    page.wait_for_url("**similar=**")
    page.wait_for_selector("#status cite")
    settled(page)
    assert _focused(page)["id"] == "results"
    expect(announce).to_have_text(re.compile(r"^\d+ speeches similar to .+, 1–\d+ of \d+ speeches$"))
    assert seed not in [b.get_attribute("data-speech") for b in page.locator(".result .similar").all()]

    # And back, with Shift+Tab to the "← back" button: page 2 of the Commons results again, focus on them.
    _tab_to(page, lambda f: f["text"] == "← back", key="Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"offset=10(?!.*similar)"))
    settled(page)
    expect(page.locator("#page-info")).to_have_text("Page 2")
    assert _focused(page)["id"] == "results"


# ---------------------------------------------------------------- screen readers


def _live_region(locator) -> None:
    expect(locator).to_have_attribute("role", "status")
    expect(locator).to_have_attribute("aria-live", "polite")
    expect(locator).to_have_attribute("aria-atomic", "true")


def test_the_page_announces_each_search_in_a_polite_live_region(page, service):
    page.goto(service + "/")
    settled(page)
    announce = page.locator("#announce")
    _live_region(announce)
    expect(announce).to_have_text("")

    page.fill("#q", QUERY)
    page.press("#q", "Enter")
    expect(announce).to_have_text(re.compile(rf"^10 results for “{QUERY}”, 1–10 of \d+ speeches$"))

    page.fill("#q", "lone parents")
    page.press("#q", "Enter")
    expect(announce).to_have_text(re.compile(r"^\d+ results? for “lone parents”"))

    page.click("#filters-panel summary")
    page.select_option("#f-mode", "keyword")
    page.fill("#q", NOTHING)
    page.press("#q", "Enter")
    expect(announce).to_have_text(f"No results for “{NOTHING}”")

    # An error is announced as well as shown.
    page.goto(service + "/?q=x&date_from=2010-01-01&date_to=2009-01-01")
    page.wait_for_selector("#status.error")
    expect(announce).to_contain_text("date")


def test_the_embed_announces_results_inside_a_portal(page, service, portals):
    folder, allowed_origin, _ = portals
    (folder / "a11y.html").write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>A portal</title></head><body><main>"
        f"<div id='hansard'></div><script src='{service}/embed.js' data-target='#hansard' data-q='palm oil'></script>"
        "</main></body></html>", encoding="utf-8")
    page.goto(f"{allowed_origin}/a11y.html")
    expect(page.locator("#hansard iframe")).to_have_attribute("title", "Search Hansard")  # the frame is named
    frame = page.frame_locator("#hansard iframe")
    announce = frame.locator("#announce")
    _live_region(announce)
    expect(announce).to_have_text(re.compile(r"^\d+ results? for “palm oil”, 1–\d+ of \d+ speeches$"))

    frame.locator("#q").fill(QUERY)
    frame.locator("#q").press("Enter")
    expect(announce).to_have_text(re.compile(rf"^10 results for “{QUERY}”"))


def test_axe_finds_no_serious_or_critical_violations_reading_in_context(page, service):
    page.goto(f"{service}/?q={QUERY}")
    settled(page)
    href = page.locator(".result a.context").first.get_attribute("href")
    page.goto(service + href)
    expect(page.locator(".passage:target")).to_be_visible()
    _audit(page, "read in context")
