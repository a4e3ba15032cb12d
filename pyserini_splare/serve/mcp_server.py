"""MCP tools on the official SDK (``mcp`` 2.x ``MCPServer``), thin over the same :class:`Service` as REST.

Tool names follow Pyserini's MCP server where they overlap (``search``, ``get_document``,
``list_indexes``, ``get_qrels``, ``fuse_search_results``, ``eval_hits``); ``explain`` is ours. Served
over stdio (``--mcp-stdio``) or streamable HTTP at ``/mcp/`` of the REST server.
"""

from __future__ import annotations

from typing import Any

from .service import RequestError, Service


def build_mcp(service: Service):
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    mcp = MCPServer("pyserini_splare", instructions="Search learned sparse (SPLARE, SPLADE), BM25 and fused indexes. "
                    "Call list_indexes first; search returns docid, score, rank and the document text.")

    async def guarded(coro):
        try:
            return await coro
        except RequestError as e:
            raise ToolError(e.message) from None

    @mcp.tool()
    async def search(query: str, index: str, hits: int = 10) -> list[dict[str, Any]]:
        """Search an index or pipeline (see list_indexes) with a text query; returns the top `hits` candidates
        as {docid, score, rank, doc}, the same as GET /v1/{index}/search."""
        ans = await guarded(service.search(index, text=query, hits=hits))
        return ans["candidates"]

    @mcp.tool()
    async def get_document(docid: str, index: str) -> dict[str, Any]:
        """The text of document `docid` from the corpus `index` records."""
        return {"docid": docid, "index": index, "doc": await guarded(service.read_document(index, docid))}

    @mcp.tool()
    def list_indexes() -> list[dict[str, Any]]:
        """The indexes (backend, query encoder, feature space, document count) and pipelines served."""
        return service.describe()

    @mcp.tool()
    async def explain(query: str, index: str, hits: int = 10) -> list[dict[str, Any]]:
        """Search, and for each hit the terms (or SAE latents, with labels when known) it matched on, with
        each one's contribution to the score."""
        ans = await guarded(service.search(index, text=query, hits=hits, explain=True, with_docs=False))
        return [{"docid": c["docid"], "score": c["score"], "rank": c["rank"], "explain": c["explain"]}
                for c in ans["candidates"]]

    @mcp.tool()
    async def fuse_search_results(runs: list[dict[str, float]], method: str = "rrf", k: int = 10,
                                  rrf_k: float = 60) -> list[dict[str, Any]]:
        """Fuse two or more result lists given as {docid: score} with the fusion stage (ranx): rrf (constant
        rrf_k), isr, combsum, combmnz, ... Returns the top k as {docid, score}."""
        settings = {"rrf_k": rrf_k} if method == "rrf" else {}
        fused = await guarded(service.fuse(runs, method, k=k, depth=None, **settings))
        return [{"docid": d, "score": s} for d, s in fused]

    @mcp.tool()
    async def get_qrels(qrels: str, query_id: str) -> dict[str, int]:
        """Relevance judgments {docid: grade} of one query of a registered qrels set (e.g. cacm)."""
        import asyncio

        from . import core

        try:
            judged = await asyncio.to_thread(core.get_qrels, qrels, service.config.data_dir)
        except Exception as e:  # UsageError: an unknown name or a missing file
            raise ToolError(str(e)) from None
        return dict(judged.get(query_id, {}))

    @mcp.tool()
    async def eval_hits(qrels: str, query_id: str, hits: dict[str, float], metric: str = "nDCG@10") -> float:
        """Evaluate one query's hits {docid: score} against a registered qrels set with ir_measures
        (metric such as nDCG@10, AP, P@30, R@1000)."""
        return float(await guarded(service.evaluate_query(qrels, query_id, hits, metric)))

    return mcp
