"""On-disk formats: every file this toolkit writes or reads between stages has its owner here.

Layer 1 of the package (imports only the package-root plumbing ``_errors``, ``_outputs`` and
``_console``, numpy and orjson). One module per format or job:

* :mod:`.sparse`          -- :class:`~.sparse.SparseVector`, the one type crossing stage borders
* :mod:`.spaces`          -- feature spaces: feature ids <-> index terms
* :mod:`.quant`           -- the one quantize/dequantize pair, its statistics, the weight bound
* :mod:`.jsonl`           -- JSONL reading with ``file:line`` errors
* :mod:`.jsonvector`      -- the JsonVectorCollection record: validation, a file of records, fast formatting
* :mod:`.idhash`          -- the one 64-bit id hash and duplicate-id set
* :mod:`.vectors_meta`    -- the vectors directory's layout and ``meta.json`` schema (``VectorsMeta``)
* :mod:`.vectors_writer`  -- its one writer (``VectorsWriter``: sparse and dense, resumable parts)
* :mod:`.vectors_reader`  -- its one reader (``open_collection``: shard directories as one collection)
* :mod:`.vectors_foreign` -- JsonVectorCollection folders another tool wrote (no ``meta.json``)
* :mod:`.query_vectors`   -- ``--query-vectors`` files
* :mod:`.runs`            -- TREC run files
* :mod:`.index_meta`      -- ``pyserini_splare_index.json``, the metadata every index carries
* :mod:`.calibration`     -- ``pyserini_splare_calibration.json``: an approximate index's recorded calibrations
* :mod:`.docids`          -- an index's docid table (``docids.npy``; faiss's ``docids.txt``)
* :mod:`.licence`         -- the licence a checkpoint states, and the notice a non-commercial one gets
"""
