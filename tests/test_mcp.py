"""The MCP server, driven by the MCP SDK's own client: over streamable HTTP at /mcp (each store), and over stdio."""

import json
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlsplit

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from fixtures import ADMIN_AUTH, ADMIN_TOKEN, cli_env, command, uvicorn_app
from service.app import create_app
from service.mcp import passage_uri, speech_uri

HS2_QUERY = "Chinese surveillance cameras bought for HS2"
HS2_CITATION = "HL Deb vol 823 cc554-7GC"
WH_SPEECH = "uk.org.publicwhip/westminhall/2009-10-27a.1.2"  # Anne Main, Biofuels, 27 October 2009
TOOLS = {"search", "find_similar", "get_speech", "get_passage"}


@pytest.fixture(scope="module")
def service(store, encoder):
    """The app (each store) under uvicorn, with the admin endpoints on: its base URL."""
    with uvicorn_app(create_app(store.settings(admin_token=ADMIN_TOKEN), encoder=encoder)) as url:
        yield url


def with_client(server, work):
    """Run `work(client)` in a connected SDK client (a URL: streamable HTTP; StdioServerParameters: a subprocess)."""

    async def main():
        async with Client(server) as client:
            return await work(client)

    return anyio.run(main)


def call(url: str, tool: str, arguments: dict):
    return with_client(url, lambda client: client.call_tool(tool, arguments))


def error_text(result) -> str:
    assert result.is_error, result
    text = " ".join(block.text for block in result.content)
    assert "Traceback" not in text and 'File "' not in text
    return text


def test_lists_the_read_only_tools_each_described(service):
    tools = with_client(service + "/mcp", lambda client: client.list_tools()).tools
    assert {tool.name for tool in tools} == TOOLS
    for tool in tools:
        assert len(tool.description) > 80, tool.name  # written for a model choosing among them
        assert tool.annotations.read_only_hint is True and tool.annotations.destructive_hint is False
    search = next(tool for tool in tools if tool.name == "search")
    properties = search.input_schema["properties"]
    assert search.input_schema["required"] == ["q"]
    assert properties["q"]["maxLength"] == 1000 and properties["k"]["maximum"] == 100
    assert {"speaker", "party", "house", "section", "date_from", "date_to", "debate", "mode", "offset"} <= set(properties)
    assert "citation" in search.description


def test_search_ranks_the_contribution_page_first_with_its_citation(service):
    result = call(service + "/mcp", "search", {"q": HS2_QUERY})
    assert not result.is_error
    body = result.structured_content
    top = body["results"][0]
    assert top["citation"] == HS2_CITATION and top["reference"] == "823 cc554-7GC"
    assert top["speech_id"].startswith("contribution/") and "HS2" in top["text"]
    assert "url" in top  # the link to the record, where the source gave one (this page's did not)
    assert HS2_CITATION in result.content[0].text  # the text a model without structured output reads
    # The same ranking, citations and links as the HTTP API's /search.
    api = httpx.get(service + "/search", params={"q": HS2_QUERY, "highlight": "false"}).json()
    assert body["total"] == api["total"]
    assert [(r["id"], r["citation"], r["url"]) for r in body["results"]] == \
        [(r["id"], r["citation"], r["url"]) for r in api["results"]]


def test_search_takes_the_filters_and_paging_of_search(service):
    lords = call(service + "/mcp", "search", {"q": "procurement", "house": "lords", "k": 5}).structured_content
    assert lords["filters"]["house"] == "lords" and lords["results"]
    assert {r["house"] for r in lords["results"]} == {"lords"}
    first = call(service + "/mcp", "search", {"q": "lone parents employment", "k": 10}).structured_content["results"]
    second = call(service + "/mcp", "search", {"q": "lone parents employment", "k": 5, "offset": 5}).structured_content["results"]
    assert [r["id"] for r in second] == [r["id"] for r in first[5:]]
    counted = call(service + "/mcp", "search", {"q": "biofuels", "facets": ["house"]}).structured_content
    assert {row["value"] for row in counted["facets"]["house"]} <= {"commons", "lords"} and counted["facets_over"]


def test_find_similar_by_speech_passage_and_text(service):
    url = service + "/mcp"
    by_speech = call(url, "find_similar", {"speech_id": WH_SPEECH, "k": 5}).structured_content
    assert len(by_speech["results"]) == 5
    assert WH_SPEECH not in {r["speech_id"] for r in by_speech["results"]}  # never the seed's own speech
    assert all(r["citation"] for r in by_speech["results"])
    by_passage = call(url, "find_similar", {"passage_id": f"{WH_SPEECH}#1", "k": 3, "group_by": "passage"}).structured_content
    assert by_passage["seed"]["passage_id"] == f"{WH_SPEECH}#1" and len(by_passage["results"]) == 3
    text = "CCTV made by Chinese companies on a railway project"
    by_meaning = call(url, "find_similar", {"text": text, "mode": "dense"}).structured_content
    assert by_meaning["mode"] == "dense" and by_meaning["results"][0]["citation"] == HS2_CITATION
    by_words = call(url, "find_similar", {"text": text, "mode": "keyword"}).structured_content
    assert by_words["results"] and all("railway" in (r["debate"] + r["text"]).lower() or "chinese" in r["text"].lower()
                                       for r in by_words["results"][:3])


def test_get_speech_and_get_passage(service):
    url = service + "/mcp"
    speech = call(url, "get_speech", {"speech_id": WH_SPEECH}).structured_content
    assert speech["id"] == WH_SPEECH and speech["speaker"]["name"] == "Anne Main"
    assert speech["debate"] == "Biofuels" and speech["reference"] == "cc1-2WH" and speech["citation"]
    assert [p["position"] for p in speech["passages"]] == list(range(len(speech["passages"])))
    passage = call(url, "get_passage", {"passage_id": f"{WH_SPEECH}#1"}).structured_content
    assert passage["id"] == f"{WH_SPEECH}#1" and passage["position"] == 1 and passage["speech_id"] == WH_SPEECH
    assert passage["text"] == speech["passages"][1]["text"]


def test_passage_and_speech_resources_by_url_encoded_id(service):
    async def work(client):
        templates = (await client.list_resource_templates()).resource_templates
        passage = await client.read_resource(passage_uri(f"{WH_SPEECH}#1"))
        speech = await client.read_resource(speech_uri(WH_SPEECH))
        return templates, passage, speech

    templates, passage, speech = with_client(service + "/mcp", work)
    assert {t.uri_template for t in templates} == {"hansard://passage/{id}", "hansard://speech/{id}"}
    assert passage_uri(f"{WH_SPEECH}#1") == "hansard://passage/" + quote(f"{WH_SPEECH}#1", safe="")
    body = json.loads(passage.contents[0].text)
    assert body["id"] == f"{WH_SPEECH}#1" and body["speaker"]["name"] == "Anne Main"
    assert passage.contents[0].mime_type == "application/json"
    whole = json.loads(speech.contents[0].text)
    assert whole["id"] == WH_SPEECH and whole["passages"][1]["text"] == body["text"]


def test_unknown_resource_is_an_error_naming_the_id(service):
    async def work(client):
        with pytest.raises(Exception) as raised:
            await client.read_resource(passage_uri("no/such#0"))
        return str(raised.value)

    assert "no/such#0" in with_client(service + "/mcp", work)


@pytest.mark.parametrize("tool, arguments, says", [
    ("search", {"q": HS2_QUERY, "k": 1000}, "k: Input should be less than or equal to 100"),
    ("search", {"q": ""}, "q: String should have at least 1 character"),
    ("search", {"q": "   "}, "q: must contain some words"),
    ("search", {}, "q: Field required"),
    ("search", {"q": "x" * 1001}, "q: String should have at most 1000 characters"),
    ("search", {"q": "rail", "offset": 10_001}, "offset: Input should be less than or equal to 10000"),
    ("search", {"q": "rail", "mode": "psychic"}, "mode: Input should be 'hybrid', 'dense', 'keyword' or 'rrf'"),
    ("search", {"q": "rail", "speaker": "x" * 201}, "speaker: String should have at most 200 characters"),
    ("search", {"q": "rail", "section": "nonsense"}, "section: no passage in this index has section 'nonsense'"),
    ("search", {"q": "rail", "date_from": "2009-11-01", "date_to": "2009-10-01"}, "date_from: date_from 2009-11-01 is after"),
    ("find_similar", {}, "passage_id: give exactly one of passage_id, speech_id or text"),
    ("find_similar", {"speech_id": WH_SPEECH, "text": "rail"}, "passage_id: give exactly one of passage_id, speech_id or text (got speech_id, text)"),
    ("find_similar", {"text": "  "}, "text: must contain some words"),
    ("find_similar", {"passage_id": "no/such#0"}, "no passage with id 'no/such#0'"),
    ("get_speech", {"speech_id": "uk.org.publicwhip/debate/1900-01-01a.1.1"}, "no speech with id"),
    ("get_passage", {"passage_id": "no/such#0"}, "no passage with id 'no/such#0'"),
])
def test_bad_arguments_are_tool_errors_with_a_message(service, tool, arguments, says):
    assert error_text(call(service + "/mcp", tool, arguments)).startswith(says)  # as /search says it (422)


def test_no_write_tool_even_with_the_admin_token(service):
    # The admin API is on (the token is set) ...
    assert any(path.startswith("/admin") for path in httpx.get(service + "/openapi.json").json()["paths"])

    async def main():
        transport = streamable_http_client(service + "/mcp", http_client=httpx2.AsyncClient(headers=ADMIN_AUTH))
        async with Client(transport) as client:
            return await client.list_tools()

    # ... and the MCP endpoint, given the token too, still offers only the reads.
    assert {tool.name for tool in anyio.run(main).tools} == TOOLS


def test_the_endpoint_keeps_the_services_limits_and_refuses_other_hosts(service):
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    # Another Host (DNS rebinding: a page on evil.example resolving to this machine) is refused.
    refused = httpx.post(service + "/mcp", json=message, headers={**headers, "Host": "evil.example"})
    assert refused.status_code == 421
    # The body limit of every request (HANSARD_MAX_BODY_MB, 8 MB) applies here too, from the length, unread.
    host, port = urlsplit(service).hostname, urlsplit(service).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Accept: application/json, text/event-stream\r\nContent-Length: 9437184\r\n\r\n{\"jsonrpc\"")
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413 "), head[:200]


def test_searches_wait_for_the_services_search_slots(store, encoder):
    """A search over MCP takes one of the same slots as /search: with none free, a busy tool error, not a queue."""
    app = create_app(store.settings(max_concurrent_searches=1, queue_timeout=0.2), encoder=encoder)
    with uvicorn_app(app) as url:
        with app.state.service.heavy_slot():  # the one slot, held as a running /search holds it
            busy = call(url + "/mcp", "search", {"q": HS2_QUERY})
            assert httpx.get(url + "/search", params={"q": HS2_QUERY}).status_code == 503
        free = call(url + "/mcp", "search", {"q": HS2_QUERY})
    assert error_text(busy).startswith("busy: 1 searches already running")
    assert free.structured_content["results"][0]["citation"] == HS2_CITATION


def test_stdio_server_from_the_command_line(store, cache_dir):
    """`hansard-search mcp --index DIR` (or --database-url), as a desktop assistant starts it, through the SDK's stdio client."""
    program, *args = command("mcp", *store.cli_args)
    server = StdioServerParameters(command=program, args=args, env=cli_env(cache_dir))

    async def work(client):
        tools = await client.list_tools()
        return tools, await client.call_tool("search", {"q": HS2_QUERY, "k": 3})

    tools, result = with_client(server, work)
    assert {tool.name for tool in tools.tools} == TOOLS
    assert not result.is_error
    assert result.structured_content["results"][0]["citation"] == HS2_CITATION


def test_stdio_stdout_carries_only_protocol_messages(small_index, cache_dir):
    """Every line on stdout is a JSON-RPC message, from the first (the model's loading prints nothing there)."""
    process = subprocess.Popen(command("mcp", "--index", small_index), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=cli_env(cache_dir))
    reader = ThreadPoolExecutor(1)

    def exchange(*messages) -> dict:
        for message in messages:
            process.stdin.write(json.dumps(message).encode() + b"\n")
        process.stdin.flush()
        return json.loads(reader.submit(process.stdout.readline).result(timeout=120))

    try:
        hello = exchange({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}})
        assert hello["id"] == 1 and hello["result"]["serverInfo"]["name"] == "hansard-search"
        listed = exchange({"jsonrpc": "2.0", "method": "notifications/initialized"},
                          {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        assert listed["id"] == 2 and {tool["name"] for tool in listed["result"]["tools"]} == TOOLS
    finally:
        process.stdin.close()
        process.wait(timeout=30)
        reader.shutdown()
    assert process.stdout.read() == b""
    process.stdout.close()
    process.stderr.close()


def test_stdio_server_on_a_missing_index_fails_on_stderr_alone(tmp_path, cache_dir):
    done = subprocess.run(command("mcp", "--index", tmp_path / "nothing-here"), capture_output=True, text=True,
                          env=cli_env(cache_dir), stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "error:" in done.stderr and "nothing-here" in done.stderr
