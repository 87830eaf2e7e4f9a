"""The HTTP service and the command line: ranked, cited passages for a query.

`search/` turns a question into a page of results; `app.py` wires the HTTP
app from `routes/` (the endpoints), `models.py` (their JSON) and `runtime.py`
(the loaded store, reloads, limits); `cli.py` is the `hansard-search` command;
`mcp.py` serves the same reads to AI assistants (MCP: at /mcp, and over stdio
by `hansard-search mcp`).
"""
