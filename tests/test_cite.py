"""Finding passages by their citation (/cite, `hansard-search cite`), and the links and OSCOLA citations results carry."""

import json

import pytest

CONTRIBUTION = "Procurement Bill [HL]"
WMS_6 = "uk.org.publicwhip/wms/2009-10-26c.6WS.2"  # the 2009 written statement printed from column 6WS


@pytest.mark.parametrize("ref", ["823 cc554-7GC", "HL Deb vol 823 cc554-7GC", "vol 823, cols 554\u201357GC",
                                 "HL Deb 5 July 2023, vol 823, cols 554\u201357GC", "823 c555GC"])
def test_cite_finds_the_grand_committee_contribution(client, ref):
    response = client.get("/cite", params={"ref": ref})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ref"] == ref and body["parsed"]["volume"] == 823 and body["parsed"]["suffix"] == "GC"
    assert body["total"] == len(body["results"]) == 1 and body["ambiguous"] is False
    first = body["results"][0]
    assert first["major_heading"] == CONTRIBUTION and first["reference"] == "823 cc554-7GC"
    assert first["oscola"] == "HL Deb, vol 823, cols 554\u201357GC"
    assert first["links"] == {"theyworkforyou": None, "printed": None}  # not a ParlParse gid; no printed page given


@pytest.mark.parametrize("ref", ["HL Deb 2022-23, cols 554\u201357GC", "(2022-23) cols 554-57GC", "session 2022-23, c555GC"])
def test_cite_finds_the_contribution_by_its_columns_and_session(client, ref):
    body = client.get("/cite", params={"ref": ref}).json()
    assert body["parsed"]["session"] == "2022-23" and body["parsed"]["volume"] is None
    assert [r["major_heading"] for r in body["results"]] == [CONTRIBUTION]
    other = client.get("/cite", params={"ref": ref.replace("2022-23", "2008-09")}).json()
    assert other["results"] == []  # the session keeps to itself: the page is of 2022-23


def test_cite_finds_a_written_statement_by_its_oscola_citation(client):
    body = client.get("/cite", params={"ref": "HC Deb 26 October 2009, col 6WS"}).json()
    ids = [r["speech_id"] for r in body["results"]]
    assert ids and ids[0] == WMS_6  # the statement starting at column 6 before any that run on into it
    assert all(r["date"] == "2009-10-26" and r["column"]["suffix"] == "WS" and r["house"] == "commons" for r in body["results"])
    first = body["results"][0]
    assert first["oscola"].startswith("HC Deb 26 October 2009, col") and "6" in first["oscola"]
    assert first["links"]["theyworkforyou"] == "https://www.theyworkforyou.com/wms/?id=2009-10-26c.6WS.2"
    assert first["links"]["printed"].startswith("http://www.publications.parliament.uk/")


def test_cite_keeps_to_the_series_day_and_house(client):
    for ref in ["HC Deb 27 October 2009, col 6WS", "HC Deb 26 October 2009, col 6WH", "HL Deb 26 October 2009, col 6WS",
                "824 cc554-7GC", "HL Deb vol 823 cc554-7"]:
        body = client.get("/cite", params={"ref": ref}).json()
        assert body["results"] == [] or all(r["speech_id"] != WMS_6 and r["major_heading"] != CONTRIBUTION
                                            for r in body["results"]), ref


def test_cite_without_a_date_lists_every_sitting_as_ambiguous(client):
    # Column 1WH of Westminster Hall and column 1WS of the statements are each printed on one day here;
    # a citation naming neither day nor volume lists what it finds, and says when they are of several sittings.
    body = client.get("/cite", params={"ref": "c1WS"}).json()
    dates = {r["date"] for r in body["results"]}
    assert body["total"] == len(body["results"]) >= 1
    assert body["ambiguous"] is (len(dates) > 1)


@pytest.mark.parametrize("ref", ["the cat sat on the mat", "HC Deb 26 October 2009", "c5; DROP TABLE passages", "x" * 201])
def test_a_nonsense_citation_is_a_422_saying_what_was_expected(client, ref):
    response = client.get("/cite", params={"ref": ref})
    assert response.status_code == 422
    assert "ref" in response.json()["message"]


def test_search_results_carry_links_and_oscola(client):
    body = client.get("/search", params={"q": "written statement", "section": "wms", "k": 3}).json()
    assert body["results"]
    for r in body["results"]:
        gid = r["speech_id"].rsplit("/", 1)[1]
        assert r["links"]["theyworkforyou"] == f"https://www.theyworkforyou.com/wms/?id={gid}"
        assert r["oscola"].startswith("HC Deb ") and "WS" in r["oscola"]


def test_cite_on_the_command_line(store, cache_dir):
    from fixtures import hansard_search

    run = hansard_search("cite", "823 cc554-7GC", *store.cli_args, "--json", cache_dir=cache_dir)
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    assert [r["major_heading"] for r in body["results"]] == [CONTRIBUTION]
    text = hansard_search("cite", "HC Deb 26 October 2009, col 6WS", *store.cli_args, cache_dir=cache_dir)
    assert text.returncode == 0, text.stderr
    assert "HC Deb 26 October 2009, col" in text.stdout
    bad = hansard_search("cite", "the cat sat on the mat", *store.cli_args, cache_dir=cache_dir)
    assert bad.returncode == 2 and "expected a Hansard citation" in bad.stderr
