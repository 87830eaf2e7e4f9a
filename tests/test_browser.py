"""End to end in a real browser: Debian's Chromium, driven headless by Playwright.

A live uvicorn serves the small index on 127.0.0.1; "portal" pages on other
origins (localhost, other ports) embed it with the one-line snippet. One of
the portals is in HANSARD_ALLOWED_ORIGINS, the other is not.

Set HANSARD_UPDATE_SCREENSHOTS=1 to write the screenshots into docs/.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path


import pytest
from playwright.sync_api import expect

from service.app import create_app
from service.settings import Settings

from fixtures import HOSTILE_SPEECH, MARKUP, ROOT, uvicorn_app, settled


SCREENSHOTS = ROOT / "docs" if os.environ.get("HANSARD_UPDATE_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def hostile_service(small_index, encoder, tmp_path_factory):
    """A copy of the small index holding a speech with markup in every field, served live."""
    from indexer.build import index_speeches
    from indexer.sources.records import Speech

    index_dir = tmp_path_factory.mktemp("hostile") / "index"
    shutil.copytree(small_index, index_dir)
    index_speeches([Speech.model_validate(HOSTILE_SPEECH)], index_dir, encoder)
    with uvicorn_app(create_app(Settings(index=index_dir, reload_interval=0), encoder=encoder)) as url:
        yield url




def _screenshot(page, name: str, tmp_path: Path) -> Path:
    path = (SCREENSHOTS or tmp_path) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a real rendering, not a blank page
    return path


def test_search_page_end_to_end(page, live_service, tmp_path):
    page.goto(live_service + "/")
    page.fill("#q", "Chinese surveillance cameras bought for HS2")
    page.press("#q", "Enter")
    page.wait_for_selector(".result")

    # Results with citations, speakers and the best sentence marked.
    cards = page.locator(".result")
    assert cards.count() == 10
    first = cards.first
    assert first.locator(".citation").inner_text() == "HL Deb vol 823 cc554-7GC"
    assert first.locator(".debate").inner_text() == "Procurement Bill [HL]"
    assert "HS2" in "".join(first.locator(".text .best").all_inner_texts())
    assert first.locator(".text mark").count() >= 1
    assert "q=Chinese" in page.url

    # The chart of matches by month, and the count.
    assert page.locator("#chart").is_visible()
    bars = page.locator("#bars .bar")
    assert bars.count() >= 1
    assert sum(int(b.get_attribute("data-count")) for b in bars.all()) > 0
    assert page.locator("#count").inner_text().startswith("1–10 of ")
    _screenshot(page, "search-page.png", tmp_path)

    # Paging.
    first_page_ids = [c.get_attribute("data-id") for c in cards.all()]
    page.click("#next")
    page.wait_for_url("**offset=10**")
    expect(page.locator("#page-info")).to_have_text("Page 2")
    settled(page)
    second_page_ids = [c.get_attribute("data-id") for c in page.locator(".result").all()]
    assert second_page_ids and not set(second_page_ids) & set(first_page_ids)
    page.go_back()
    expect(page.locator("#page-info")).to_have_text("Page 1")

    # A filter: Commons only.
    page.click("#filters-panel summary")
    page.select_option("#f-house", "commons")
    page.wait_for_url("**house=commons**")
    settled(page)
    houses = page.locator(".result .house").all_inner_texts()
    assert houses and all("Commons" in h for h in houses)
    assert page.locator(".result .citation").first.inner_text().startswith("HC Deb")

    # Export: follow the CSV link; its rows are the cards on the page.
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert [r["citation"] for r in rows] == page.locator(".result .citation").all_inner_texts()
    assert all(r["house"] == "commons" for r in rows)

    # Similar speeches of the first result: never the seed itself.
    seed = page.locator(".result .similar").first.get_attribute("data-speech")
    page.locator(".result .similar").first.click()
    page.wait_for_url("**similar=**")
    page.wait_for_selector("#status cite")
    settled(page)
    assert "Speeches similar to" in page.locator("#status").inner_text()
    similar = [b.get_attribute("data-speech") for b in page.locator(".result .similar").all()]
    assert similar and seed not in similar
    assert page.locator(".result .text .best").count() >= 1  # nearest sentences, by meaning
    _screenshot(page, "similar-speeches.png", tmp_path)


def test_bad_input_shows_the_services_message(page, live_service):
    page.goto(live_service + "/?q=x&date_from=2010-01-01&date_to=2009-01-01")
    page.wait_for_selector("#status.error")
    assert "date" in page.locator("#status").inner_text()
    assert page.locator(".result").count() == 0


def _portal(folder: Path, name: str, service: str, query: str) -> str:
    (folder / name).write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>A research portal</title></head><body>"
        "<h1>Our research portal</h1><p>Search Parliament without leaving this page:</p>"
        f"<div id='hansard'></div><script src='{service}/embed.js' data-target='#hansard' data-q='{query}' "
        "data-height='700'></script></body></html>", encoding="utf-8")
    return name


def test_embed_in_an_allowed_portal(page, live_service, portals, tmp_path):
    folder, allowed_origin, _ = portals
    page.goto(f"{allowed_origin}/{_portal(folder, 'portal.html', live_service, 'palm oil and biofuels')}")
    frame = page.frame_locator("#hansard iframe")
    frame.locator(".result").first.wait_for()
    assert frame.locator("body").get_attribute("data-layout") == "embed"
    assert frame.locator(".masthead").is_hidden()  # the compact layout
    assert frame.locator(".result .citation").first.inner_text().startswith("HC Deb")
    assert frame.locator("#chart").is_visible()
    _screenshot(page, "embedded-in-a-portal.png", tmp_path)

    # Inside the frame: "similar" works, and the seed's speech is left out.
    seed = frame.locator(".result .similar").first.get_attribute("data-speech")
    frame.locator(".result .similar").first.click()
    frame.locator("#status cite").wait_for()
    frame.locator(".result").first.wait_for()
    assert seed not in [b.get_attribute("data-speech") for b in frame.locator(".result .similar").all()]

    # The JSON API answers this origin's scripts (CORS).
    status = page.evaluate(f"fetch('{live_service}/search?q=palm+oil&k=1').then(r => r.status)")
    assert status == 200


def test_embed_is_refused_to_a_portal_not_allowed(page, live_service, portals):
    folder, _, refused_origin = portals
    page.goto(f"{refused_origin}/{_portal(folder, 'other.html', live_service, 'palm oil')}")
    page.wait_for_selector("#hansard iframe")
    page.wait_for_timeout(1500)  # let the frame try to load
    frames = [f for f in page.frames if f != page.main_frame]
    assert frames, "the snippet made no frame"
    # Chromium replaces a frame refused by frame-ancestors with its error page.
    assert all(f.url.startswith("chrome-error://") or f.locator(".result").count() == 0 for f in frames)
    assert not any(f.url.startswith(live_service) and f.locator(".result").count() for f in frames)

    # And the JSON API refuses this origin's scripts (no CORS header: the browser blocks the read).
    outcome = page.evaluate(f"fetch('{live_service}/search?q=palm+oil&k=1').then(() => 'read', () => 'blocked')")
    assert outcome == "blocked"


def _watch_for_trouble(page, service: str) -> dict[str, list[str]]:
    """What a page did that it should not: requests to other sites, policy violations, dialogs."""
    seen: dict[str, list[str]] = {"outside": [], "refused": [], "dialogs": []}
    page.on("request", lambda r: seen["outside"].append(r.url)
            if not r.url.startswith((service, "data:", "blob:")) else None)
    page.on("console", lambda m: seen["refused"].append(m.text)
            if "Content Security Policy" in m.text or "Refused to" in m.text else None)
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    return seen


def test_api_docs_render_from_the_service_alone_under_its_policy(page, live_service):
    trouble = _watch_for_trouble(page, live_service)
    page.goto(live_service + "/docs")
    page.wait_for_selector(".opblock-summary-path")
    assert "/search" in page.locator(".opblock-summary-path").all_inner_texts()
    page.locator(".opblock-summary-path", has_text="/health").first.click()  # an operation opens
    page.wait_for_selector(".opblock-body")
    assert trouble == {"outside": [], "refused": [], "dialogs": []}


def test_markup_in_indexed_fields_is_shown_as_text_and_never_runs(page, hostile_service):
    trouble = _watch_for_trouble(page, hostile_service)
    page.goto(hostile_service + "/?q=lighthouse+keepers+Farne+Islands")
    page.wait_for_selector(".result")
    card = page.locator(".result").first
    assert card.get_attribute("data-id").startswith(HOSTILE_SPEECH["id"])
    assert MARKUP in card.locator(".text").inner_text()
    debate = card.locator(".debate").inner_text()
    assert debate.startswith(HOSTILE_SPEECH["major_heading"]) and debate.endswith(HOSTILE_SPEECH["minor_heading"])
    assert card.locator(".speaker").inner_text() == HOSTILE_SPEECH["speaker"]["name"]
    assert card.locator(".citation").get_attribute("href") == HOSTILE_SPEECH["url"]
    assert card.locator("script, img, svg, b").count() == 0  # no element came out of the text
    assert page.evaluate("typeof window.pwned") == "undefined"
    # Similar speeches shows the seed's speaker and debate as text too.
    card.locator(".similar").click()
    page.wait_for_selector("#status cite")
    settled(page)
    assert "<script>" in page.locator("#status").inner_text()
    assert page.locator("#status script, #status img").count() == 0
    assert trouble == {"outside": [], "refused": [], "dialogs": []}
