"""Re-exports of :mod:`pyserini_splare.formats.index_meta` (the index metadata's owner), kept while
importers move (search/group.py, train/mining.py, scripts/bench_search.py, tests/test_distributed_group.py)."""

from ..formats.index_meta import INDEX_FORMAT, INDEX_META_FILE, read_index_meta, write_index_meta

__all__ = ["INDEX_FORMAT", "INDEX_META_FILE", "read_index_meta", "write_index_meta"]
