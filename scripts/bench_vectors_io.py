"""Vectors-directory I/O speed: write, validate, read, and ``encode --prune-from``, in documents/s.

Method: in-process, one thread (the writer and reader are single-threaded Python); each step is
timed by its process CPU time (``time.process_time``: documents per CPU-second = per core, what a
shared, loaded machine can still measure) and its wall time, document generation excluded; synthetic pooled
SPLARE-shaped documents (``--terms`` distinct latents of 131,072 per document, weights uniform in
(0, 5), the range of log1p(relu) values) written at the default scale 100. Steps:

* ``write``: ``VectorsWriter`` streaming ``write(docid, SparseVector)`` (quantize, format, id hash)
* ``validate``: ``open_collection(dir).validate()`` (what the Seismic/Lucene builders run: parse every
  line, check terms/weights/bound, ids across parts, terms of the space)
* ``read``: ``Collection.iter_arrays()`` (parse + validate + term -> id, what the exact
  builder and ``--prune-from`` read)
* ``prune``: ``python -m pyserini_splare.encode --prune-from DIR --topk K [--mass M]`` run in-process
  (read + prune + write), timed whole
* ``prune_cli``: the same command as a child process, timed whole (interpreter start and imports
  included: the child's CPU time from ``getrusage``), with its peak RSS (streaming: it must not grow
  with the collection)

``--root DIR`` imports ``pyserini_splare`` from another checkout (e.g. ``git archive`` of an older
commit that has ``formats/``) to measure the code before a change with the same script.

    python scripts/bench_vectors_io.py --docs 20000 --terms 400
    python scripts/bench_vectors_io.py --docs 20000 --terms 400 --root /tmp/old-checkout
    python scripts/bench_vectors_io.py --docs 50000 --terms 400 --steps prune,prune_cli
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class Clock:
    def __init__(self):
        self.cpu, self.wall = time.process_time(), time.perf_counter()

    def done(self, res: dict, step: str, n: int) -> None:
        res[f"{step}_docs_per_cpu_s"] = round(n / (time.process_time() - self.cpu))
        res[f"{step}_docs_per_wall_s"] = round(n / (time.perf_counter() - self.wall))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=20_000)
    p.add_argument("--terms", type=int, default=400)
    p.add_argument("--prune-topk", type=int, default=200)
    p.add_argument("--prune-mass", type=float, default=None, help="also mass-prune (--mass M)")
    p.add_argument("--steps", default="write,validate,read,prune")
    p.add_argument("--root", default=None, help="import pyserini_splare from this checkout instead")
    p.add_argument("--tmp", default=None, help="scratch folder (default: a temporary one)")
    args = p.parse_args()
    if args.root:
        sys.path.insert(0, str(Path(args.root).resolve()))
    os.environ.setdefault("PYSERINI_SPLARE_PROGRESS", "0")
    import numpy as np

    import pyserini_splare
    from pyserini_splare.formats.vectors_reader import open_collection
    from pyserini_splare.formats.vectors_writer import VectorsWriter
    from pyserini_splare.vectors import PrefixedSpace, SparseVector

    steps = args.steps.split(",")
    space = PrefixedSpace("L", 131_072)
    rng = np.random.default_rng(0)
    docs = [(f"doc{i:07d}", SparseVector(np.sort(rng.choice(131_072, args.terms, replace=False)),
                                         rng.uniform(0.01, 5.0, args.terms).astype(np.float32)))
            for i in range(args.docs)]
    root = Path(args.tmp or tempfile.mkdtemp(prefix="bench_vio_"))
    out = root / "vectors"
    shutil.rmtree(out, ignore_errors=True)
    res = {"docs": args.docs, "terms": args.terms, "loadavg_before": os.getloadavg()[0]}

    clock = Clock()
    with VectorsWriter(out, space=space, quant_scale=100.0) as w:
        for d, v in docs:
            w.write(d, v)
    clock.done(res, "write", args.docs)
    res["bytes_per_doc"] = round(sum(f.stat().st_size for f in out.glob("part-*")) / args.docs)
    del docs

    if "validate" in steps:
        clock = Clock()
        n = open_collection(out).validate()[0]
        assert n == args.docs
        clock.done(res, "validate", args.docs)
    if "read" in steps:
        clock = Clock()
        n = sum(1 for _ in open_collection(out).iter_arrays())
        assert n == args.docs
        clock.done(res, "read", args.docs)
    prune_args = ["--prune-from", str(out), "--topk", str(args.prune_topk)]
    if args.prune_mass is not None:
        prune_args += ["--mass", str(args.prune_mass)]
    if "prune" in steps:
        from pyserini_splare.encode.__main__ import main as encode_main

        pruned = root / "pruned"
        shutil.rmtree(pruned, ignore_errors=True)
        clock = Clock()
        assert encode_main([*prune_args, "--output", str(pruned)]) == 0
        clock.done(res, "prune", args.docs)
        res["pruned_dir"] = str(pruned)
    if "prune_cli" in steps:
        pruned = root / "pruned_cli"
        shutil.rmtree(pruned, ignore_errors=True)
        env = {**os.environ, "PYTHONPATH": str(Path(pyserini_splare.__file__).parent.parent)}
        hwm = root / "prune_cli.vmhwm"
        # The child's own peak RSS is VmHWM of its address space (ru_maxrss would count this process's
        # memory, inherited by fork before exec); it is read as the child exits.
        child = ("import runpy, sys\nsys.argv = ['encode', *sys.argv[1:]]\ntry:\n"
                 "    runpy.run_module('pyserini_splare.encode', run_name='__main__')\nfinally:\n"
                 f"    open({str(hwm)!r}, 'w').write("
                 "[x for x in open('/proc/self/status') if x.startswith('VmHWM')][0])")
        before, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run([sys.executable, "-c", child, *prune_args, "--output", str(pruned)],
                       env=env, stderr=subprocess.DEVNULL)
        after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter() - wall
        assert (pruned / "meta.json").is_file()
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        res["prune_cli_docs_per_cpu_s"] = round(args.docs / cpu)
        res["prune_cli_docs_per_wall_s"] = round(args.docs / wall)
        res["prune_cli_peak_rss_mib"] = round(int(hwm.read_text().split()[1]) / 1024)
        res["input_mib"] = round(sum(f.stat().st_size for f in out.glob("part-*")) / 2**20)
    res["loadavg_after"] = os.getloadavg()[0]
    print(json.dumps(res))
    if not args.tmp:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
