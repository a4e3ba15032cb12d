"""Encode peak memory (issue 13, item 12): SPLADE-tiny at batch 32 x 512 tokens stays below 1 GB RSS.

The vocabulary logits of a batch (32 x 512 tokens x 30,522 terms = 2 GB in float32) are never
materialised: pooling applies the MLM head to a chunk of tokens at a time (encode/modules/pooling.py).
The encode CLI runs in a child process whose own peak resident set (``VmHWM``, read by the child when it
exits) is the measure. A third of the documents are longer than 512 tokens, so the first batches are full
32 x 512 ones (CACM's longest batches are no larger); the rest vary in length, as a corpus does. The vectors are checked against SPLADE's
formula computed here with the whole batch's logits at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

LIMIT_MB = 1024
WORDS = ("retrieval sparse lexical expansion query document index latent concept vocabulary model "
         "computer program language algorithm matrix compiler storage system network").split()

pytestmark = pytest.mark.slow  # encodes a corpus of full 32 x 512 batches in a child

CHILD = """
import runpy, sys
sys.argv = ["pyserini_splare.encode"] + sys.argv[1:]
try:
    runpy.run_module("pyserini_splare.encode", run_name="__main__")
finally:
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
    sys.stderr.write(f"\\nVMHWM_KB {hwm}\\n")
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is read from /proc (Linux)")
def test_splade_tiny_batch_32x512_peaks_below_1gb(tmp_path, splade_tiny_path):
    rng = np.random.default_rng(0)
    # 32 documents beyond 512 tokens (full batches), then 64 of varied lengths: batches of changing shapes are
    # what fragments the heap and made the resident set creep up over a corpus.
    sizes = [700] * 32 + [int(n) for n in rng.integers(20, 600, size=64)]
    docs = [{"id": f"d{i}", "text": " ".join(rng.choice(WORDS, size=n))} for i, n in enumerate(sizes)]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    out = tmp_path / "vectors"
    proc = subprocess.run([sys.executable, "-c", CHILD, "--corpus", str(corpus), "--encoder",
                           f"splade:{splade_tiny_path}", "--output", str(out), "--batch-size", "32",
                           "--max-length", "512"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_mb = int(proc.stderr.rsplit("VMHWM_KB", 1)[1].split()[0]) / 1024
    assert peak_mb < LIMIT_MB, f"encode peaked at {peak_mb:.0f} MB"

    # The vectors are SPLADE's, computed with the batch's full (tokens x vocabulary) logits.
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from pyserini_splare.vectors import iter_vectors, read_meta

    tok = AutoTokenizer.from_pretrained(splade_tiny_path)
    mlm = AutoModelForMaskedLM.from_pretrained(splade_tiny_path).eval()
    meta = read_meta(out)
    got = dict(iter_vectors(out))
    some = docs[:4]
    enc = tok([d["text"] for d in some], truncation=True, max_length=512, padding=True, return_tensors="pt")
    assert enc["input_ids"].shape[1] == 512  # full-length batches
    with torch.no_grad():
        logits = mlm(**enc).logits
    w = torch.log1p(torch.relu(logits)) * enc["attention_mask"].unsqueeze(-1)
    ref = w.max(dim=1).values.numpy()
    for d, row in zip(some, ref):
        want = {meta.space.term(int(j)): round(float(row[j]) * meta.quant_scale)
                for j in np.nonzero(row)[0] if round(float(row[j]) * meta.quant_scale) > 0}
        have = got[d["id"]]
        # equal integer weights, up to one unit where a float rounding lands on the other side of .5
        assert max(abs(have.get(t, 0) - want.get(t, 0)) for t in set(have) | set(want)) <= 1
        assert sum(have.get(t, 0) != want.get(t, 0) for t in set(have) | set(want)) <= 2
