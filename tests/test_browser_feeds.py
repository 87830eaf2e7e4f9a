"""The search page's "Follow this search" link, in Chromium: shown with results, pointing at the same search as an Atom feed."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

import feedparser
from playwright.sync_api import expect

from service.feeds import TAG

from fixtures import settled

HEAD_FEED = 'head link[rel="alternate"][type="application/atom+xml"]'




def test_follow_this_search_links_to_the_feed_of_the_results_shown(page, live_service):
    page.goto(live_service + "/")
    settled(page)
    expect(page.locator("#follow")).to_be_hidden()
    assert page.locator(HEAD_FEED).count() == 0

    page.fill("#q", "biofuels")
    page.press("#q", "Enter")
    page.wait_for_selector(".result")
    settled(page)
    follow = page.locator("#follow")
    expect(follow).to_be_visible()
    assert follow.inner_text() == "Follow this search"
    assert follow.get_attribute("rel") == "alternate" and follow.get_attribute("type") == "application/atom+xml"
    href = follow.get_attribute("href")
    assert href.startswith(live_service + "/search?")
    assert dict(parse_qsl(urlsplit(href).query)) == {"q": "biofuels", "mode": "hybrid", "group_by": "speech", "format": "atom"}

    # Filters and the order chosen on the page: the feed has the same words and filters, and the same passages.
    page.click("#filters-panel summary")
    page.select_option("#f-house", "commons")
    page.wait_for_url("**house=commons**")
    settled(page)
    page.select_option("#f-sort", "-date")
    page.wait_for_url("**sort=-date**")
    settled(page)
    expect(page.locator("#follow")).to_have_attribute("href", live_service + "/search?q=biofuels&house=commons&mode=hybrid"
                                                     "&group_by=speech&format=atom")
    href = follow.get_attribute("href")
    assert page.locator(HEAD_FEED).get_attribute("href") == href
    shown = [card.get_attribute("data-id") for card in page.locator(".result").all()]
    assert len(shown) == 10

    answer = page.request.get(href)
    assert answer.ok and answer.headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(answer.body())
    assert not feed.bozo and feed.feed.title == "Hansard: biofuels (house: commons)"
    assert {unquote(e.id.removeprefix(TAG + "passage/")) for e in feed.entries} == set(shown)
    first = page.locator(".result").first
    entry = next(e for e in feed.entries if e.id == TAG + "passage/" + shown[0].replace("#", "%23"))
    assert entry.author == first.locator(".speaker").inner_text()
    assert entry.published[:10] == first.locator("time").get_attribute("datetime")

    # No results, or the similar-speeches view: nothing to follow.
    page.goto(live_service + "/?q=biofuels&speaker=Nobody+At+All")
    settled(page)
    expect(page.locator("#follow")).to_be_hidden()
    assert page.locator(HEAD_FEED).count() == 0
    page.goto(live_service + "/?q=biofuels")
    page.wait_for_selector(".result")
    settled(page)
    assert page.locator(HEAD_FEED).count() == 1
    page.locator(".result .similar").first.click()
    page.wait_for_selector(".result")
    settled(page)
    expect(page.locator("#follow")).to_be_hidden()
    assert page.locator(HEAD_FEED).count() == 0
