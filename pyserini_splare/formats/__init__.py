"""On-disk formats: every file this toolkit writes or reads between stages has its owner here.

Layer 1 of the package (imports only ``pyserini_splare._cli``, numpy and orjson). One module per
format or job:

* :mod:`.sparse`        -- :class:`~.sparse.SparseVector`, the one type crossing stage borders
* :mod:`.spaces`        -- feature spaces: feature ids <-> index terms
* :mod:`.quant`         -- the one quantize/dequantize pair, its statistics, the weight bound
* :mod:`.jsonl`         -- JSONL reading with ``file:line`` errors
* :mod:`.idhash`        -- the one 64-bit id hash and duplicate-id set
* :mod:`.vectors_dir`   -- the vectors directory: ``meta.json`` schema, the resumable writer
  (sparse and dense parts), the reader/validator, shard directories as one collection
* :mod:`.query_vectors` -- ``--query-vectors`` files
* :mod:`.runs`          -- TREC run files
* :mod:`.index_meta`    -- ``pyserini_splare_index.json``, the metadata every index carries
"""
