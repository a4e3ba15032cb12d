"""Serve: indexes and pipelines behind Pyserini's REST v1 API, an MCP server and a web page.

``python -m pyserini_splare.serve --index NAME=DIR [--config serve.yaml]`` (see ``--help`` and
docs/serve.md). Every call into the other stages goes through :mod:`.core`.
"""
