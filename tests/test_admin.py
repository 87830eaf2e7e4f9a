"""Who may write: admin endpoints exist only when configured, and need the bearer token.

Refusals (no token, a wrong one, bodies too large, the token's setting) are in test_hostile_admin.py.
"""

from __future__ import annotations

from urllib.parse import quote

from fixtures import ADMIN_AUTH as AUTH, NEW_SPEECH


def test_read_only_by_default_no_admin_routes(client):
    assert client.post("/admin/speeches", json={"speeches": [NEW_SPEECH]}).status_code == 404
    assert client.post("/admin/reload").status_code == 404
    assert client.delete("/admin/speeches/x").status_code in (404, 405)
    assert not any(path.startswith("/admin") for path in client.get("/openapi.json").json()["paths"])


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
    if target.kind == "embedded":  # only the index directory was written to: its live version and nothing stray
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
