"""An offline, end-to-end demo on a small multilingual collection written for this project (docs/demo.md).

``python -m pyserini_splare.demo`` indexes the 69 news items of ``demo/data/corpus.jsonl``, searches them with
BM25, SPLADE-tiny (real weights) and SPLARE-demo (a *locally built stand-in* for SPLARE: SPLADE-tiny's trunk and
a TopK SAE trained here, in the package's SPLARE model class, not SPLARE-7B), fuses runs with RRF and evaluates
them, every stage through the package's own CLIs. docs/demo.md explains the collection, the models and the scores.

Modules: :mod:`.data` (the collection), :mod:`.splare_demo` (SPLARE-demo), :mod:`.pipeline` (``run_demo``),
:mod:`.report` (the printed table); ``__main__`` parses the command line.
"""
