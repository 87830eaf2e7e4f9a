"""The search page's small defects a newcomer meets first, in Debian's Chromium.

The small index (SMALL_SLICE) covers one month, October 2009, and one year:
the footer's span and the month chart are drawn from exactly that.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from fixtures import settled




def _footer_loaded(page) -> None:
    expect(page.locator("#index-info")).to_contain_text("passages")


@pytest.mark.parametrize("path", ["/", "/?q=zzqxjv+wqpfkx&mode=keyword"], ids=["empty page", "no results"])
def test_export_links_and_pager_are_hidden_without_results(page, live_service, path):
    page.goto(live_service + path)
    settled(page)
    _footer_loaded(page)
    if "q=" in path:
        expect(page.locator("#status")).to_contain_text("Nothing matches")
    for selector in ("#toolbar", "#export-csv", "#export-jsonl", "#pager", "#prev", "#next"):
        expect(page.locator(selector)).to_be_hidden()


def test_export_links_and_pager_show_with_results(page, live_service):
    page.goto(live_service + "/?q=lone+parents")
    settled(page)
    for selector in ("#export-csv", "#pager"):
        expect(page.locator(selector)).to_be_visible()


def test_footer_names_one_year_once(page, live_service):
    page.goto(live_service + "/")
    _footer_loaded(page)
    text = page.locator("#index-info").inner_text()
    assert text.endswith(", 2009"), text
    assert "2009–2009" not in text


def test_favicon_is_linked_and_served(page, live_service):
    page.goto(live_service + "/")
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert href
    for path in (href, "/favicon.ico"):
        answer = httpx.get(live_service + path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in answer.text


def test_month_chart_of_one_month_is_not_a_solid_block(page, live_service):
    page.goto(live_service + "/?q=lone+parents")
    settled(page)
    chart = page.locator("#chart")
    expect(chart).to_be_visible()
    bars = page.locator("#bars .bar")
    assert bars.count() == 1
    bar, area = bars.first.bounding_box(), page.locator("#bars").bounding_box()
    assert bar["width"] <= area["width"] / 4, (bar, area)  # a bar, not the whole chart filled
    label = page.locator("#axis-start").inner_text()
    assert "Oct 2009" in label and "match" in label, label


def test_a_result_opens_in_context_scrolled_to_its_passage_and_marked(page, live_service):
    page.goto(live_service + "/?q=biofuels+deforestation")
    settled(page)
    first = page.locator("#results .result").first
    passage_id = first.get_attribute("data-id")
    link = first.locator("a.context")
    expect(link).to_have_text("Read in context")
    link.click()
    page.wait_for_url("**/read/**")
    assert "#" in page.url and page.url.startswith(live_service + "/read/")
    target = page.locator(".passage:target")
    expect(target).to_have_count(1)
    expect(target).to_be_visible()
    expect(target).to_be_in_viewport()
    assert target.get_attribute("id") == passage_id
    marked = target.evaluate("el => getComputedStyle(el).backgroundColor")
    other = page.locator(".passage:not(:target)").first.evaluate("el => getComputedStyle(el).backgroundColor")
    assert marked != other  # the :target rule marks it
    expect(page.locator("h1")).to_have_text("Biofuels")
