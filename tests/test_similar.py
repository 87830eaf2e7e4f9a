"""Find similar: by passage, by whole speech, by text; never the seed's own speech."""


import pytest


SEED = "uk.org.publicwhip/westminhall/2009-10-27a.1.2"  # Anne Main opening the Biofuels debate


def similar(client, **params):
    response = client.get("/similar", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_similar_speeches_come_from_the_same_debate_and_others_never_the_seed(client):
    body = similar(client, speech_id=SEED, k=60)
    speeches = [r["speech_id"] for r in body["results"]]
    assert SEED not in speeches
    assert len(speeches) == len(set(speeches)) == 60  # one result per speech by default
    debates = [r["debate"] for r in body["results"]]
    assert debates[0] == "Biofuels" and debates.count("Biofuels") >= 5
    assert any(d != "Biofuels" for d in debates)
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_a_speech_is_represented_as_a_whole_not_by_its_first_paragraph(client):
    whole = [r["speech_id"] for r in similar(client, speech_id=SEED, k=10)["results"]]
    first = [r["speech_id"] for r in similar(client, passage_id=f"{SEED}#0", k=10)["results"]]
    assert whole != first  # the opening courtesy ("a delight to serve...") is not what the speech is about


def test_similar_by_passage_leaves_out_the_seed_speech(client):
    body = similar(client, passage_id=f"{SEED}#2", k=10, group_by="passage")
    assert all(r["speech_id"] != SEED for r in body["results"])
    assert len(body["results"]) == 10


def test_similar_by_text_with_filters(client):
    body = similar(client, text="surveillance cameras made by Chinese companies", k=5, house="lords")
    assert body["results"] and all(r["house"] == "lords" for r in body["results"])
    assert body["results"][0]["reference"] == "823 cc554-7GC"


def test_similar_filters_fill_the_page(client):
    body = similar(client, speech_id=SEED, speaker="Ian Lucas", group_by="passage", k=10)
    assert len(body["results"]) == 10 and {r["speaker"]["name"] for r in body["results"]} == {"Ian Lucas"}


@pytest.mark.parametrize(
    "params, status, message",
    [({}, 422, "exactly one"), ({"speech_id": SEED, "text": "x"}, 422, "exactly one"),
     ({"speech_id": "no/such"}, 404, "no/such"), ({"passage_id": "no/such#0"}, 404, "no/such#0"),
     ({"text": "x", "group_by": "debate"}, 422, "group_by")],
)
def test_similar_bad_requests(client, params, status, message):
    response = client.get("/similar", params=params)
    assert response.status_code == status
    assert message in response.json()["message"]


def test_similar_on_the_command_line(store, cache_dir):
    import json

    from fixtures import hansard_search

    run = hansard_search("similar", "--speech-id", SEED, *store.cli_args, "-k", "5", "--json", cache_dir=cache_dir)
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    assert body["seed"]["speech_id"] == SEED and len(body["results"]) == 5
    assert SEED not in [r["speech_id"] for r in body["results"]]
    both = hansard_search("similar", "--speech-id", SEED, "--text", "x", *store.cli_args, cache_dir=cache_dir)
    assert both.returncode == 2


@pytest.mark.parametrize("path, params", [("/search", {"q": "biofuels"}), ("/similar", {"speech_id": SEED})])
def test_results_download_as_csv_and_jsonl(client, path, params):
    import csv
    import io
    import json

    as_json = client.get(path, params={**params, "k": 7}).json()["results"]
    response = client.get(path, params={**params, "k": 7, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == [r["id"] for r in as_json]
    assert rows[0]["citation"] == as_json[0]["citation"] and rows[0]["speaker"] == as_json[0]["speaker"]["name"]
    assert list(rows[0])[:9] == ["date", "speaker", "party", "house", "debate", "reference", "citation", "url", "text"]
    lines = client.get(path, params={**params, "k": 7, "format": "jsonl"}).text.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [r["id"] for r in as_json]
    assert client.get(path, params={**params, "format": "xml"}).status_code == 422
