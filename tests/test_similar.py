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


# ---------------------------------------------------------------- fused "find similar" (vectors and "more like this")

OTHER_SEED = "uk.org.publicwhip/westminhall/2009-10-27a.2.1"  # a later speech of the same Biofuels debate


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
@pytest.mark.parametrize("group_by", ["speech", "passage"])
def test_similar_never_returns_the_seeds_in_any_mode(client, mode, group_by):
    body = similar(client, speech_id=SEED, mode=mode, group_by=group_by, k=30)
    assert body["mode"] == mode and len(body["results"]) == 30
    assert SEED not in {r["speech_id"] for r in body["results"]}
    if group_by == "speech":
        assert len({r["speech_id"] for r in body["results"]}) == 30
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_the_modes_rank_differently_and_hybrid_draws_on_both(client):
    ranked = {mode: [r["speech_id"] for r in similar(client, speech_id=SEED, mode=mode, k=10)["results"]]
              for mode in ("hybrid", "dense", "keyword")}
    assert ranked["dense"] != ranked["keyword"]
    assert ranked["hybrid"] != ranked["dense"] and ranked["hybrid"] != ranked["keyword"]
    assert set(ranked["hybrid"]) & (set(ranked["dense"]) | set(ranked["keyword"]))


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_similar_fills_the_page_under_a_selective_filter_in_every_mode(client, mode):
    body = similar(client, speech_id=SEED, mode=mode, section="wms", k=10)
    assert len(body["results"]) == 10 and {r["section"] for r in body["results"]} == {"wms"}
    body = similar(client, speech_id=SEED, mode=mode, speaker="Ian Lucas", k=10)
    assert body["total"] >= 2 and len(body["results"]) == body["total"]  # every speech of his: fewer than the page
    assert {r["speaker"]["name"] for r in body["results"]} == {"Ian Lucas"}


def test_a_speech_result_shows_its_passage_nearest_the_seed(client):
    body = similar(client, speech_id=SEED, mode="dense", k=5)
    for result in body["results"]:
        speech = client.get(f"/speeches/{result['speech_id']}").json()["passages"]
        assert result["id"] in {p["id"] for p in speech}


def test_more_like_these_takes_several_seeds(client):
    one = similar(client, speech_id=SEED, k=20)
    both = similar(client, speech_id=[SEED, OTHER_SEED], k=20)
    assert both["seed"]["speech_id"] == [SEED, OTHER_SEED]
    returned = {r["speech_id"] for r in both["results"]}
    assert SEED not in returned and OTHER_SEED not in returned and len(returned) == 20
    assert [r["speech_id"] for r in both["results"]] != [r["speech_id"] for r in one["results"]]
    assert OTHER_SEED in {r["speech_id"] for r in one["results"]}  # like the seed: left out only when it is a seed


def test_more_like_these_bounds_and_checks_its_seeds(client):
    response = client.get("/similar", params={"speech_id": [SEED] * 11})
    assert response.status_code == 422 and "at most 10" in response.json()["message"]
    response = client.get("/similar", params={"speech_id": [SEED, "no/such"]})
    assert response.status_code == 404 and "no/such" in response.json()["message"]
    response = client.get("/similar", params={"speech_id": SEED, "mode": "rrf"})
    assert response.status_code == 422
    response = client.get("/similar", params={"speech_id": [SEED, "x" * 501]})
    assert response.status_code == 422 and "at most 500 characters" in response.json()["message"]


def test_similar_by_passage_reads_its_neighbours_too(client):
    body = similar(client, passage_id=f"{SEED}#2", k=10)
    assert body["results"] and SEED not in {r["speech_id"] for r in body["results"]}
    alone = similar(client, passage_id=f"{SEED}#2", mode="keyword", k=10)
    assert alone["results"][0]["debate"] == "Biofuels"
