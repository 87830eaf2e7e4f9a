"""Retake the screenshots in docs/ from a running service (run by hand).

    HANSARD_ALLOWED_ORIGINS=http://localhost:8765 hansard-search serve --index INDEX --port 8000 &
    .venv/bin/python docs/screenshots.py --service http://127.0.0.1:8000 --portal-port 8765

Drives Debian's Chromium with Playwright, as the browser tests do.
"""

from __future__ import annotations

import argparse
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from tempfile import TemporaryDirectory
from urllib.parse import quote_plus

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", default="http://127.0.0.1:8000")
    parser.add_argument("--portal-port", type=int, default=8765)
    parser.add_argument("--query", default="Chinese surveillance cameras bought for HS2")
    parser.add_argument("--embed-query", default="rough sleeping and homelessness")
    parser.add_argument("--context-query", default="ethanol from recycled cooking oil for aviation")
    args = parser.parse_args()

    with TemporaryDirectory() as folder, sync_playwright() as playwright:
        (Path(folder) / "portal.html").write_text(
            "<!doctype html><html><head><meta charset='utf-8'><title>A research portal</title>"
            "<style>body{font-family:Georgia,serif;max-width:60rem;margin:2rem auto;color:#222}</style></head><body>"
            "<h1>Parliament and housing: a research portal</h1>"
            "<p>Search what was said in Parliament without leaving this page:</p><div id='hansard'></div>"
            f"<script src='{args.service}/embed.js' data-target='#hansard' data-q='{args.embed_query}' data-height='760'>"
            "</script></body></html>", encoding="utf-8")
        portal = ThreadingHTTPServer(("127.0.0.1", args.portal_port), partial(SimpleHTTPRequestHandler, directory=folder))
        threading.Thread(target=portal.serve_forever, daemon=True).start()
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1000})

        page.goto(f"{args.service}/")
        page.fill("#q", args.query)
        page.press("#q", "Enter")
        page.wait_for_selector("body:not(.busy) .result")
        page.screenshot(path=str(DOCS / "search-page.png"))

        # A result read in context: its debate, the passage anchored and marked.
        reading = browser.new_page(viewport={"width": 1100, "height": 1000})
        reading.goto(f"{args.service}/?q={quote_plus(args.context_query)}")
        reading.wait_for_selector("body:not(.busy) .result a.context")
        reading.goto(f"{args.service}{reading.locator('.result a.context').first.get_attribute('href')}")
        reading.wait_for_load_state("load")
        reading.screenshot(path=str(DOCS / "read-in-context.png"))
        reading.close()

        page.locator(".result .similar").first.click()
        page.wait_for_selector("#status cite")
        page.wait_for_selector("body:not(.busy) .result")
        page.screenshot(path=str(DOCS / "similar-speeches.png"))

        page.goto(f"http://localhost:{args.portal_port}/portal.html")
        page.frame_locator("#hansard iframe").locator("body:not(.busy) .result").first.wait_for()
        page.screenshot(path=str(DOCS / "embedded-in-a-portal.png"))
        browser.close()
        portal.shutdown()
    print(f"wrote {', '.join(p.name for p in sorted(DOCS.glob('*.png')))} in {DOCS}")


if __name__ == "__main__":
    main()
