"""The HTTP API over a real small index, through FastAPI's TestClient."""

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

HS2_QUERY = "Chinese surveillance cameras bought for HS2"
WH_SPEECH = "uk.org.publicwhip/westminhall/2009-10-27a.1.2"


def test_search_ranks_the_contribution_page_first_with_its_reference(client):
    response = client.get("/search", params={"q": HS2_QUERY})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == HS2_QUERY
    assert body["total"] == client.get("/stats").json()["passages"]
    assert len(body["results"]) == 10
    top = body["results"][0]
    assert top["speech_id"].startswith("contribution/")
    assert top["reference"] == "823 cc554-7GC"
    assert top["citation"] == "HL Deb vol 823 cc554-7GC"
    assert top["house"] == "lords" and top["section"] == "grand-committee"
    assert "HS2" in top["text"]
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_search_result_carries_every_passage_field(client):
    result = client.get("/search", params={"q": "biofuels and deforestation", "k": 1}).json()["results"][0]
    for field in ("id", "speech_id", "text", "speaker", "house", "section", "date", "time", "debate",
                  "column", "reference", "citation", "url", "score"):
        assert field in result
    assert set(result["speaker"]) == {"name", "person_id", "party"}
    assert set(result["column"]) == {"volume", "start", "end", "suffix"}
    assert result["debate"] == "Biofuels"
    assert result["speaker"]["name"] and result["speaker"]["person_id"].startswith("uk.org.publicwhip/person/")
    assert result["citation"].startswith("HC Deb 27 October 2009 c")


def test_paging_continues_the_ranking(client):
    first = client.get("/search", params={"q": "lone parents employment", "k": 10}).json()["results"]
    second = client.get("/search", params={"q": "lone parents employment", "k": 5, "offset": 5}).json()["results"]
    assert [r["id"] for r in second] == [r["id"] for r in first[5:10]]


@pytest.mark.parametrize(
    "params, parameter",
    [({}, "q"), ({"q": ""}, "q"), ({"q": "x", "k": 0}, "k"), ({"q": "x", "k": 101}, "k"),
     ({"q": "x", "k": "ten"}, "k"), ({"q": "x", "offset": -1}, "offset"), ({"q": "x" * 1001}, "q"), ({"q": "   "}, "q")],
)
def test_bad_search_parameters_are_422_naming_the_parameter(client, params, parameter):
    response = client.get("/search", params=params)
    assert response.status_code == 422
    assert response.json()["message"].startswith(f"{parameter}:")


def test_passage_by_id_with_slashes_and_hash_url_encoded(client):
    passage_id = f"{WH_SPEECH}#1"
    response = client.get("/passages/" + quote(passage_id, safe=""))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == passage_id and body["speech_id"] == WH_SPEECH and body["position"] == 1
    assert body["speaker"]["name"] == "Anne Main"


def test_unknown_passage_is_404_with_a_message(client):
    response = client.get("/passages/" + quote("no/such#0", safe=""))
    assert response.status_code == 404
    assert "no/such#0" in response.json()["message"]


def test_speech_by_id_has_all_its_passages_in_order(client):
    response = client.get("/speeches/" + quote(WH_SPEECH, safe=""))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == WH_SPEECH
    assert body["speaker"] == {"name": "Anne Main", "person_id": "uk.org.publicwhip/person/11798", "party": "Conservative"}
    assert body["date"] == "2009-10-27" and body["debate"] == "Biofuels" and body["reference"] == "cc1-2WH"
    assert [p["position"] for p in body["passages"]] == list(range(len(body["passages"])))
    assert len(body["passages"]) > 3
    assert body["passages"][0]["text"].startswith("It is a delight to serve under your chairmanship")


def test_speech_id_also_works_unencoded(client):
    assert client.get(f"/speeches/{WH_SPEECH}").json()["id"] == WH_SPEECH


def test_unknown_speech_is_404(client):
    assert client.get("/speeches/uk.org.publicwhip/debate/1900-01-01a.1.1").status_code == 404


def test_health(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["passages"] > 500


def test_stats(client, store, encoder):
    body = client.get("/stats").json()
    assert body["passages"] > 500 and 0 < body["speeches"] < body["passages"]
    assert body["model"] == {"name": "all-MiniLM-L6-v2", "version": encoder.info.version, "dimension": 384}
    assert body["index_type"] == {"embedded": "flat-ip", "postgres": "pgvector-hnsw-ip"}[store.kind]
    assert set(body["houses"]) == {"commons", "lords"}
    assert {"westminhall", "wms", "grand-committee"} <= set(body["sections"])
    assert sum(body["houses"].values()) == body["passages"]


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/passages/{passage_id}", "/speeches/{speech_id}", "/health", "/stats"} <= set(paths)


def test_app_refuses_an_index_it_cannot_open(tmp_path, encoder):
    from indexer.store import StoreError

    with pytest.raises(StoreError, match="does not exist"):
        with TestClient(create_app(Settings(index=tmp_path / "missing"), encoder=encoder)):
            pass


@pytest.mark.parametrize("endpoint, params", [
    ("/search", {"q": "rail", "section": "nonsense"}),
    ("/search", {"q": "rail section:nonsense"}),
    ("/similar", {"text": "rail", "section": "nonsense"}),
])
def test_an_unknown_section_is_refused_with_the_known_ones(client, endpoint, params):
    response = client.get(endpoint, params=params)
    assert response.status_code == 422
    message = response.json()["message"]
    assert message.startswith("section: ") and "'nonsense'" in message
    assert "westminhall" in message and "wms" in message  # what this index has


def test_an_unknown_party_is_refused_but_a_known_one_in_any_case_or_abbreviation_works(client):
    refused = client.get("/search", params={"q": "rail", "party": "Monster Raving Loony"})
    assert refused.status_code == 422 and refused.json()["message"].startswith("party: ")
    assert "Labour" in refused.json()["message"]
    for party in ("labour", "LAB", "Labour"):
        body = client.get("/search", params={"q": "rail", "party": party}).json()
        assert body["results"] and all(r["speaker"]["party"] == "Labour" for r in body["results"])


def test_house_takes_commons_or_lords_only(client):
    assert client.get("/search", params={"q": "rail", "house": "lords"}).status_code == 200
    refused = client.get("/search", params={"q": "rail", "house": "mars"})
    assert refused.status_code == 422 and refused.json()["message"].startswith("house: ")


def test_a_nul_character_in_any_input_finds_nothing_and_never_fails(client):
    # PostgreSQL's text cannot hold NUL; a lookup or filter with one must answer as SQLite does.
    assert client.get("/similar", params={"speech_id": "a\x00b"}).status_code == 404
    assert client.get("/similar", params={"passage_id": "a\x00b"}).status_code == 404
    assert client.get("/speeches/a%00b").status_code == 404
    assert client.get("/passages/a%00b").status_code == 404
    filtered = client.get("/search", params={"q": "palm oil", "speaker": "a\x00"})
    assert filtered.status_code == 200 and filtered.json()["total"] == 0
    # In the query itself a NUL separates words, as a space does.
    phrase = client.get("/search", params={"q": '"palm\x00oil"', "k": 3})
    assert phrase.status_code == 200
    assert all("palm oil" in r["text"].lower() for r in phrase.json()["results"]) and phrase.json()["results"]
    assert client.get("/search", params={"q": "palm oil -pa\x00lm"}).status_code == 200
