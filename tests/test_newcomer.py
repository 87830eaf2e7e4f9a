"""What a newcomer meets first: the README's commands, the CLI's help, the first index, eval's figures.

Each test here stands for a defect found by following the README on a fresh
machine: the no-../shared quick start (download, index, serve) against the
fake TheyWorkForYou of tests/test_download.py, the README's showcase query,
help text without type noise, a first index without warnings that mean
nothing to a user, and eval saying so when the index lacks the judged answers.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import subprocess

import httpx
import pytest

from fixtures import (KNOWN_SPEECH, ROOT, WMS_SECOND, cli_env, command, fake_theyworkforyou, first_speeches,
                      hansard_search, serving)

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _sh_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


# --- the quick start without ../shared/data -------------------------------------------------------


def _no_shared_quick_start() -> list[list[str]]:
    """The README's quick start for a machine without ../shared/data: its download, index and serve commands."""
    block = next(b for b in _sh_blocks(README) if "hansard-search download" in b and "../shared" not in b)
    steps = [shlex.split(step) for step in re.split(r"\s*&&\s*", " ".join(block.replace("\\\n", " ").split()))]
    return [step for step in steps if step[0].endswith("hansard-search")]


def _option(step: list[str], name: str) -> str:
    return step[step.index(name) + 1]


def test_the_readme_leads_with_the_quick_start_and_a_table_of_contents():
    first_screen = README.split("\n## ")[0] + README.split("\n## ")[1]
    blocks = _sh_blocks(README)
    assert "../shared/data" in blocks[0] and "hansard-search index" in blocks[0]  # the repository's own quick start
    assert ".ci/postgres run .venv/bin/python -m pytest -q" in blocks[1]  # the test command CI runs
    assert "hansard-search download" in blocks[2] and "../shared" not in blocks[2]  # a fresh clone's
    assert "download.pytorch.org/whl/cpu" in README and "torch==2.13.0" in README
    assert "Contents" in README
    for page in ("docs/api.md", "docs/production.md", "docs/postgresql.md", "docs/ranking.md", "docs/model.md",
                 "docs/mcp.md", "docs/feeds.md", "docs/accessibility.md"):
        assert f"]({page}" in README, page
    assert len(first_screen.splitlines()) < 80


def test_the_readmes_links_to_docs_pages_and_anchors_resolve():
    pages = {"README.md": README, **{f"docs/{p.name}": p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md")}}

    def anchors(text: str) -> set[str]:
        return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.*)$", text, re.M)}

    others = {"docs/mcp.md", "docs/feeds.md", "docs/accessibility.md"}  # written alongside, by others
    for name, text in pages.items():
        base = (ROOT / name).parent
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = (base / path).resolve() if path else (ROOT / name)
            rel = str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)
            if rel in others and not resolved.exists():
                continue
            assert resolved.exists(), f"{name}: link to {target}"
            if anchor and resolved.suffix == ".md":
                assert anchor in anchors(resolved.read_text(encoding="utf-8")), f"{name}: anchor {target}"


def test_download_index_and_serve_as_the_readme_says_on_a_machine_without_shared_data(tmp_path, cache_dir):
    download, index, serve = _no_shared_quick_start()
    assert download[1:3] == ["download", "--house"] and index[1] == "index" and serve[1] == "serve"
    dest = tmp_path / _option(download, "--dest")
    index_dir = tmp_path / _option(index, "--index")
    assert _option(download, "--dest") in index, "index what was downloaded"
    with fake_theyworkforyou() as site:
        args = download[1:]
        # The fake site holds the shared data's days (October 2009), not the README's recent week.
        args[args.index("--from") + 1], args[args.index("--to") + 1] = "2009-10-26", "2009-10-27"
        args[args.index("--dest") + 1] = str(dest)
        fetched = hansard_search(*args, "--base-url", site.base_url, "--delay", "0", cache_dir=cache_dir, timeout=300)
    assert fetched.returncode == 0, fetched.stderr
    assert sorted(p.name for p in dest.rglob("*.xml")) == ["ministerial2009-10-26c.xml", "ministerial2009-10-27a.xml"]
    index_args = [str(dest) if a == _option(download, "--dest") else a for a in index[1:]]
    index_args[index_args.index("--index") + 1] = str(index_dir)
    built = hansard_search(*index_args, "--quiet", cache_dir=cache_dir, timeout=600)
    assert built.returncode == 0, built.stderr
    with serving(index_dir, cache_dir, tmp_path / "serve.log") as (host, port):
        answer = httpx.get(f"http://{host}:{port}/search", params={"q": "help for lone parents to find work", "k": 3})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert results and results[0]["section"] == "wms" and "lone parent" in results[0]["text"].lower()


# --- the README's showcase query -------------------------------------------------------------------


def _showcase_query() -> str:
    match = re.search(r"hansard-search search '([^']+)' --index index", README)
    assert match, "the README shows an inline-filter query with hansard-search search '...'"
    return match.group(1)


def test_the_readmes_showcase_query_finds_results_on_the_quick_start_index(small_index, cache_dir):
    query = _showcase_query()
    assert re.search(r'"[^"]+"', query) and re.search(r"(^| )-\w", query) and "speaker:" in query  # it shows them off
    run = hansard_search("search", query, "--index", small_index, "--json", cache_dir=cache_dir, timeout=300)
    assert run.returncode == 0, run.stderr
    page = json.loads(run.stdout)
    assert page["results"], f"{query!r} finds nothing"
    phrase = re.search(r'"([^"]+)"', query).group(1).lower()
    excluded = re.search(r"(?:^| )-(\w+)", query).group(1).lower()
    for result in page["results"]:
        assert phrase in result["text"].lower() and excluded not in result["text"].lower()
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert query in api, "docs/api.md explains the same query"


# --- help ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--help"], ["index", "--help"], ["search", "--help"], ["download", "--help"],
                                  ["eval", "--help"], ["similar", "--help"]])
def test_help_shows_no_type_noise(args, tmp_path):
    run = subprocess.run(command(*args), capture_output=True, text=True, env=cli_env(tmp_path), timeout=60)
    assert run.returncode == 0, run.stderr
    assert "<bool>" not in run.stdout and "<list[" not in run.stdout, run.stdout
    assert not re.search(r"\{\w+\}", run.stdout), run.stdout
    if args[0] == "index":
        assert "hansard-search index [OPTIONS] SOURCES..." in run.stdout
    if args[0] == "search":
        assert "hansard-search search [OPTIONS] QUERY" in run.stdout


# --- the first index --------------------------------------------------------------------------------


def test_a_first_index_on_a_fresh_model_cache_prints_no_warnings_that_mean_nothing(tmp_path):
    source = tmp_path / "ministerial.xml"
    source.write_bytes(first_speeches(WMS_SECOND, 2).encode("latin-1"))
    env = {**cli_env(tmp_path / "cache"), "HANSARD_MODEL_CACHE": str(tmp_path / "models")}
    run = subprocess.run(command("index", source, "--index", tmp_path / "index", "--quiet"),
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    assert list((tmp_path / "models").glob("*.int8.onnx")), "the model was exported afresh"
    assert "torchvision" not in run.stderr and "pre-processing" not in run.stderr, run.stderr
    assert "WARNING" not in run.stderr.upper(), run.stderr


def test_only_those_notes_are_silenced(caplog):
    from embeddings.onnx_int8 import _without_notes

    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    with caplog.at_level(logging.WARNING), _without_notes(logger, "torchvision is not installed"):
        logger.warning("torchvision is not installed. Skipping %s", "torchvision::nms")
        logger.warning("something that matters")
    assert [r.getMessage() for r in caplog.records] == ["something that matters"]
    assert not logger.filters


# --- eval on an index without the judged answers ----------------------------------------------------


def _judgements(tmp_path, relevant: dict[str, str]):
    queries, qrels = tmp_path / "queries.jsonl", tmp_path / "qrels.tsv"
    queries.write_text("".join(json.dumps({"_id": q, "text": "written statement on the council"}) + "\n" for q in relevant))
    qrels.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{doc}\t1\n" for q, doc in relevant.items()))
    return ["--queries", queries, "--qrels", qrels]


def test_eval_says_when_the_index_holds_none_of_the_judged_answers(tmp_path, small_index, cache_dir):
    files = _judgements(tmp_path, {"a": "uk.org.publicwhip/debates/2031-01-01a.1.0", "b": "nowhere/at/all"})
    run = hansard_search("eval", "--index", small_index, *files, "--mode", "keyword", cache_dir=cache_dir, timeout=300)
    assert run.returncode == 1, run.stderr
    assert "none of the 2 queries have a judged speech in this index" in " ".join(run.stderr.split())
    assert "0.0000" in run.stdout  # the figures are still shown, with the warning beside them


def test_eval_warns_when_only_some_judged_answers_are_in_the_index(tmp_path, small_index, cache_dir):
    files = _judgements(tmp_path, {"a": KNOWN_SPEECH, "b": "nowhere/at/all"})
    run = hansard_search("eval", "--index", small_index, *files, "--mode", "keyword", "--json",
                         cache_dir=cache_dir, timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["judged_in_index"] == 1
    assert "only 1 of the 2 queries have a judged speech in this index" in " ".join(run.stderr.split())


def test_eval_is_quiet_when_every_judged_answer_is_in_the_index(tmp_path, small_index, cache_dir):
    files = _judgements(tmp_path, {"a": KNOWN_SPEECH})
    run = hansard_search("eval", "--index", small_index, *files, "--mode", "keyword", cache_dir=cache_dir, timeout=300)
    assert run.returncode == 0 and "warning" not in run.stderr, run.stderr
