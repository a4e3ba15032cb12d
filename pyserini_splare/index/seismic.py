"""Seismic approximate index of a vectors directory (``pyseismic-lsr``; Bruch et al., SIGIR 2024, CIKM 2024).

Seismic gets the vectors' integer impacts as float32 (exact up to 2^24), so its scores are the integer dot
products Lucene and exact compute. ``SeismicIndex`` holds at most 65,535 components, so ``SeismicIndexLV`` is
used for larger feature spaces (SPLARE's 131,072 latents; recorded as ``variant``). See docs/backends.md.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .._errors import UsageError
from .._outputs import atomic_dir
from ..backends import get_backend
from ..formats.index_meta import write_index_meta
from ..formats.seismic_index import INDEX_FILE, INDEX_PREFIX, seismic_classes
from ..formats.vectors_reader import open_collection

# The build options' defaults and limits are declared in pyserini_splare.backends.SeismicBuild (with
# why they are what they are); DEFAULT_BUILD is that declaration's view, without the input option.
DEFAULT_BUILD = {k: v for k, v in get_backend("seismic").defaults("build").items() if k != "quant_scale"}

# "auto" n_postings: keep about this share of all postings, and never cut lists below this length.
AUTO_POSTINGS_FRACTION = 0.1
AUTO_MIN_POSTINGS = 100


def auto_n_postings(postings: int, distinct_terms: int) -> int:
    """Seismic's n_postings for a collection: 10 % of the mean posting-list length, at least 100.

    An absolute default cannot fit every size; why 10 %, the floor, and why it is not the default:
    docs/backends.md, "Seismic" (``n_postings``).
    """
    mean_len = postings / max(1, distinct_terms)
    return max(AUTO_MIN_POSTINGS, int(round(AUTO_POSTINGS_FRACTION * mean_len)))


def _build_and_save(n_features: int, src: str, prefix: str, threads: int, cfg: dict) -> tuple[int, int]:
    """Build and save (in a child process, see :func:`_in_fresh_process`): (documents, dimensions).
    The index class is looked up here: Seismic's pyo3 classes do not pickle."""
    _, Index, _ = seismic_classes(n_features)
    idx = Index.build(src, load_content=False, num_threads=threads, **cfg)
    idx.save(prefix)
    return int(idx.len), int(idx.dim)


_CHILD = ("import json, sys\n"
          "from pyserini_splare.index.seismic import _build_and_save\n"
          "out = _build_and_save(*json.loads(sys.argv[1]))\n"
          "open(sys.argv[2], 'w').write(json.dumps(out))\n")


def _in_fresh_process(args: list, workdir: Path) -> tuple[int, int]:
    """``_build_and_save(*args)`` in a fresh Python interpreter, waited for in 0.2 s steps.

    Why a child: the Rust build holds the GIL, so Ctrl-C would wait for its end; here the parent handles the
    signal and kills the child. Why not a fork: a process that has searched a Seismic index holds rayon's
    thread pool, which a forked child waits on forever; and multiprocessing's spawn re-runs the caller's
    ``__main__``. The child's stdout (Seismic's progress lines) goes to stderr.
    """
    import subprocess

    import pyserini_splare

    result, log = workdir / "_build.json", workdir / "_build.log"
    root = str(Path(pyserini_splare.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(args), str(result)], env=env,
                                stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        try:
            while proc.poll() is None:
                time.sleep(0.2)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    text = log.read_text(encoding="utf-8", errors="replace")
    log.unlink()
    if proc.returncode != 0 or not result.is_file():
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        raise UsageError(f"Seismic build failed: {(lines[-1] if lines else f'exit status {proc.returncode}')[:300]}")
    if text.strip():
        print(text.rstrip(), file=sys.stderr)  # Seismic's own progress lines
    out = json.loads(result.read_text())
    result.unlink()
    return int(out[0]), int(out[1])


def build_seismic_index(inputs, index: str, *, threads: int = 1, overwrite: bool = False, **options) -> dict:
    """Build a Seismic index from one or more vectors directories (shards of one collection) or a
    JsonVectorCollection folder without ``meta.json`` (option ``quant_scale`` quantizes its float weights);
    ``options``: the seismic backend's build options (:class:`pyserini_splare.backends.SeismicBuild`)."""
    cfg = get_backend("seismic").check_build_options(options)
    quant_scale = cfg.pop("quant_scale")
    coll = open_collection(inputs, kind="sparse", quant_scale=quant_scale)
    space = coll.space
    variant, _, _ = seismic_classes(space.size)
    import seismic

    sdtype = seismic.get_seismic_string()  # fixed-width numpy unicode, e.g. "U100"
    max_len = int(np.dtype(sdtype).itemsize // 4)
    t0 = time.time()
    # Validate every vector first (ids, terms in the space, integer impacts within MAX_IMPACT, no id
    # twice across shards) so that Seismic's reader, which panics on bad input, only sees clean files.
    n_docs, n_post, n_terms = coll.validate(max_id_length=max_len, desc="seismic: validating vectors")
    if n_docs == 0:
        raise UsageError(f"{coll}: no documents")
    if cfg["n_postings"] == "auto":
        cfg["n_postings"] = auto_n_postings(n_post, n_terms)
    t_read = time.time() - t0
    parts = coll.parts
    with atomic_dir(index, overwrite=overwrite) as tmp:
        # SeismicIndex.build reads our part files' {"id","contents","vector"} lines natively (much
        # faster than SeismicDataset.add_document from Python, which costs O(#features) per call);
        # it takes one file, so several parts (or a foreign folder, normalized) go into a temporary one.
        if len(parts) == 1 and not coll.foreign:
            src = parts[0]
        else:
            src = tmp / "_input.jsonl"
            coll.write_single_jsonl(src)
        n_built, dim = _in_fresh_process([space.size, str(src), str(tmp / INDEX_PREFIX), threads, cfg], tmp)
        if src != parts[0]:
            src.unlink()
        if not (tmp / INDEX_FILE).is_file():
            raise UsageError(f"Seismic did not write {INDEX_FILE} (files: {sorted(os.listdir(tmp))})")
        if n_built != n_docs:
            raise UsageError(f"Seismic indexed {n_built} documents, the vectors hold {n_docs}")
        meta = write_index_meta(tmp, "seismic", vectors=coll.meta.to_json(), source=coll.source(),
                                variant=variant, index_file=INDEX_FILE, seismic_build=cfg,
                                build={"threads": threads, "seconds": round(time.time() - t0, 2),
                                       "validate_seconds": round(t_read, 2), "documents": n_docs,
                                       "postings": n_post, "distinct_terms": dim})
    return meta
