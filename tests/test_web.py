"""The search page's routes and security headers: CORS and frame-ancestors as configured."""

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.app import create_app
from service.settings import Settings
from service.routes.pages import frame_ancestors

PORTAL = "https://portal.example.org"


@pytest.fixture(scope="module")
def configured(store, encoder):
    """The app with one allowed origin."""
    app = create_app(store.settings(allowed_origins=f"{PORTAL}, http://localhost:9000"), encoder=encoder)
    with TestClient(app) as client:
        yield client


def test_page_and_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'data-layout="full"' in page.text and 'src="/static/app.js"' in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")
    script = client.get("/embed.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert 'data-layout="embed"' in client.get("/embed?q=rail").text
    assert client.get("/static/../settings.py").status_code == 404


def test_pages_carry_a_strict_content_security_policy(client):
    policy = client.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert policy.endswith("frame-ancestors 'self'")
    assert client.get("/").headers["x-frame-options"] == "SAMEORIGIN"


def test_by_default_no_other_origin_may_frame_the_embed_or_read_the_api(client):
    embed = client.get("/embed")
    assert embed.headers["content-security-policy"].endswith("frame-ancestors 'self'")
    response = client.get("/search", params={"q": "rail"}, headers={"Origin": PORTAL})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_allowed_origins_may_frame_the_embed_but_not_the_full_page(configured):
    embed = configured.get("/embed")
    assert embed.headers["content-security-policy"].endswith(f"frame-ancestors 'self' {PORTAL} http://localhost:9000")
    assert "x-frame-options" not in embed.headers  # it would override the list in older browsers
    assert configured.get("/").headers["content-security-policy"].endswith("frame-ancestors 'self'")


def test_cors_answers_allowed_origins_only(configured):
    allowed = configured.get("/search", params={"q": "rail"}, headers={"Origin": PORTAL})
    assert allowed.headers["access-control-allow-origin"] == PORTAL
    refused = configured.get("/search", params={"q": "rail"}, headers={"Origin": "https://elsewhere.example"})
    assert refused.status_code == 200 and "access-control-allow-origin" not in refused.headers

    preflight = configured.options("/similar", headers={
        "Origin": PORTAL, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "accept"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == PORTAL
    refused_preflight = configured.options("/similar", headers={
        "Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"})
    assert refused_preflight.status_code == 400
    writing = configured.options("/search", headers={"Origin": PORTAL, "Access-Control-Request-Method": "DELETE"})
    assert writing.status_code == 400  # the API is read-only: GET alone is offered


def test_allowed_origins_setting_is_checked():
    assert Settings(allowed_origins="https://a.example, http://b.example:8080/").allowed_origins == [
        "https://a.example", "http://b.example:8080"]
    assert Settings(allowed_origins="").allowed_origins == []
    with pytest.raises(ValidationError, match="not scheme://host"):
        Settings(allowed_origins="https://a.example/path")
    with pytest.raises(ValidationError, match="not scheme://host"):
        Settings(allowed_origins="portal.example.org")


def test_allowed_origins_from_the_environment(monkeypatch):
    monkeypatch.setenv("HANSARD_ALLOWED_ORIGINS", "https://a.example https://b.example")
    assert Settings().allowed_origins == ["https://a.example", "https://b.example"]
    assert frame_ancestors(["*"]) == "*"
    assert frame_ancestors([]) == "'self'"
