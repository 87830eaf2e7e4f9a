"""Who may write: admin endpoints exist only when configured, and need the bearer token."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

TOKEN = "s3cret-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NEW_SPEECH = {
    "id": "test/admin/lighthouses/1",
    "house": "commons",
    "section": "debates",
    "date": "2009-11-02",
    "major_heading": "Lighthouses",
    "speaker": {"name": "Test Member", "party": "Labour"},
    "reference": "c101",
    "paragraphs": [
        {"text": "The lighthouse keepers of the Farne Islands deserve a pay rise before the winter storms."},
        {"text": "Automation has not removed the need for people who know the rocks and the tides."},
    ],
}


@pytest.fixture
def admin(writable_store, encoder):
    """A writable copy of the small index (in each store), served with the admin endpoints on."""
    app = create_app(writable_store.settings(admin_token=TOKEN, reload_interval=0), encoder=encoder)
    with TestClient(app) as client:
        yield client, writable_store


def test_read_only_by_default_no_admin_routes(client):
    assert client.post("/admin/speeches", json={"speeches": [NEW_SPEECH]}).status_code == 404
    assert client.post("/admin/reload").status_code == 404
    assert client.delete("/admin/speeches/x").status_code in (404, 405)
    assert not any(path.startswith("/admin") for path in client.get("/openapi.json").json()["paths"])


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/admin/speeches", {"speeches": [NEW_SPEECH]}),
    ("DELETE", "/admin/speeches/" + quote("uk.org.publicwhip/westminhall/2009-10-27a.1.2", safe=""), None),
    ("POST", "/admin/reload", None),
])
def test_admin_endpoints_refuse_without_the_right_token(admin, method, path, body):
    client, _ = admin
    before = client.get("/stats").json()["passages"]
    missing = client.request(method, path, json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert "Bearer" in missing.json()["message"]
    wrong = client.request(method, path, json=body, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 403
    basic = client.request(method, path, json=body, headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    assert client.get("/stats").json()["passages"] == before  # nothing changed


def test_add_replace_and_delete_a_speech_with_the_token(admin):
    client, target = admin
    before = client.get("/stats").json()

    added = client.post("/admin/speeches", json={"speeches": [NEW_SPEECH]}, headers=AUTH)
    assert added.status_code == 200, added.text
    assert added.json()["speeches_added"] == 1 and added.json()["passages"] == before["passages"] + 2
    top = client.get("/search", params={"q": "lighthouse keepers pay rise", "k": 1}).json()["results"][0]
    assert top["speech_id"] == NEW_SPEECH["id"] and top["citation"] == "HC Deb 2 November 2009 c101"

    replaced = client.post("/admin/speeches", headers=AUTH, json={"speeches": [
        {**NEW_SPEECH, "paragraphs": [{"text": "Lighthouse keepers now need only one paragraph of praise."}]}]})
    assert replaced.json()["speeches_replaced"] == 1 and replaced.json()["speeches_added"] == 0
    speech = client.get("/speeches/" + quote(NEW_SPEECH["id"], safe="")).json()
    assert [p["text"] for p in speech["passages"]] == ["Lighthouse keepers now need only one paragraph of praise."]

    deleted = client.delete("/admin/speeches/" + quote(NEW_SPEECH["id"], safe=""), headers=AUTH)
    assert deleted.status_code == 200 and deleted.json()["speeches_deleted"] == 1
    assert client.get("/speeches/" + quote(NEW_SPEECH["id"], safe="")).status_code == 404
    assert client.get("/stats").json()["passages"] == before["passages"]
    assert client.delete("/admin/speeches/" + quote(NEW_SPEECH["id"], safe=""), headers=AUTH).status_code == 404
    if target.backend == "embedded":  # only the index directory was written to: its live version and nothing stray
        assert sorted(p.name for p in target.index_dir.iterdir() if not p.name.startswith("v-")) == [".lock", "CURRENT"]


def test_bad_writes_are_refused_with_the_field_named(admin):
    client, _ = admin
    no_text = client.post("/admin/speeches", headers=AUTH, json={"speeches": [{**NEW_SPEECH, "paragraphs": []}]})
    assert no_text.status_code == 422 and "paragraphs" in no_text.json()["message"]
    unknown_field = client.post("/admin/speeches", headers=AUTH, json={"speeches": [{**NEW_SPEECH, "colour": "red"}]})
    assert unknown_field.status_code == 422 and "colour" in unknown_field.json()["message"]
    twice = client.post("/admin/speeches", headers=AUTH, json={"speeches": [NEW_SPEECH, NEW_SPEECH]})
    assert twice.status_code == 422 and "twice" in twice.json()["message"]
    assert client.post("/admin/speeches", headers=AUTH, json={"speeches": []}).status_code == 422


def test_reload_picks_up_a_version_written_by_another_process(admin, encoder, tmp_path):
    from indexer.build import index_speeches
    from indexer.sources.records import Speech

    client, target = admin
    first = client.get("/health").json()["index_version"]
    assert client.post("/admin/reload", headers=AUTH).json() == {"reloaded": False, "index_version": first}
    # As `hansard-search index` would:
    index_speeches([Speech.model_validate(NEW_SPEECH)], target.location, encoder)
    answer = client.post("/admin/reload", headers=AUTH).json()
    assert answer["reloaded"] is True and answer["index_version"] != first
    assert client.get("/speeches/" + quote(NEW_SPEECH["id"], safe="")).status_code == 200


def test_a_short_admin_token_is_refused():
    with pytest.raises(ValueError, match="at least 16"):
        Settings(admin_token="short")
