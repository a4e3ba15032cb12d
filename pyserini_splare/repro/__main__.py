"""python -m pyserini_splare.repro: run and grade a reproduction matrix (2CR), write its HTML report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._argtypes import ArgumentParser, positive_int
from .._errors import UsageError, cli_main, run

EPILOG = """\
matrices (YAML in pyserini_splare/repro/, or a path to your own):
  wsdm26   every condition of NAVER's WSDM Cup 2026 system (SPLARE-7B ... RUN5), nDCG@20 on the dev set;
           needs GPUs and the NeuCLIR1 corpus: see docs/wsdm26-reproduction.md
  local    what runs on a laptop or in CI: BM25 and SPLADE-tiny on CACM, and their RRF fusion

grades: OK |measured - expected| <= 0.0005, OKish <= 0.005 (per matrix: `tolerance`), FAIL beyond, "not run".
Steps whose `creates` path exists and conditions whose run file exists are skipped (--force reruns them).
Measured scores are kept in WORK_DIR/repro-results.json, which --generate-report reads back.

examples:
  python -m pyserini_splare.repro wsdm26 --list-conditions
  python -m pyserini_splare.repro wsdm26 --dry-run --threads 32 --device cuda:0
  python -m pyserini_splare.repro wsdm26 --condition run1 --set splare_model=models/splare-7b
  python -m pyserini_splare.repro wsdm26 --condition plaid-x --set plaidx_run=runs/plaid-x.dev.txt
  python -m pyserini_splare.repro wsdm26 --generate-report wsdm26.html        # expected + whatever was measured
  python -m pyserini_splare.repro local --all --threads 2 --generate-report local.html
"""


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m pyserini_splare.repro",
        description="Two-click reproductions: run the conditions of a reproduction matrix (encode -> index -> "
                    "search -> fusion -> rerank -> eval), grade them against the expected scores, and render an "
                    "HTML report with the commands and plots.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("matrix", help="matrix name (wsdm26, local) or a YAML file")
    what = p.add_argument_group("what to do (one or more)")
    what.add_argument("--list-conditions", action="store_true", help="list conditions, expected scores, dependencies")
    what.add_argument("--condition", action="append", default=[], metavar="NAME",
                      help="run this condition (and what it requires); repeatable; aliases such as run1 work")
    what.add_argument("--all", action="store_true", help="run every condition")
    what.add_argument("--dry-run", action="store_true",
                      help="print the rendered commands of the selected conditions (all if none selected), run nothing")
    what.add_argument("--generate-report", metavar="HTML", help="write the HTML report (after running, if asked to)")
    what.add_argument("--plan", action="store_true",
                      help="print GPU-hours, wall time on --gpus GPUs, disk and RAM of every step, run nothing "
                           "(repro/costs.py; docs/distributed.md)")
    what.add_argument("--gpus", type=int, default=8, help="--plan: GPUs to spread the work over (default 8)")
    what.add_argument("--gpu", default="h100", help="--plan: GPU type (h100, h200, a100, l40s, b200; default h100)")
    tmpl = p.add_argument_group("template variables")
    tmpl.add_argument("--threads", type=positive_int, default=None, help="{threads}: index/search threads (matrix default)")
    tmpl.add_argument("--batch-size", type=positive_int, default=None, help="{batch_size}: encoder/reranker batch (matrix default)")
    tmpl.add_argument("--device", default=None, help="{device}: torch device, e.g. cuda:0 or cpu (matrix default)")
    tmpl.add_argument("--work-dir", default=None, help="{work}: where vectors, indexes and runs go (matrix default)")
    tmpl.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                      help="any other variable, e.g. --set splare_model=models/splare-7b; repeatable")
    p.add_argument("--force", action="store_true", help="rerun steps even if their outputs exist")
    return p


def _variables(args, matrix) -> dict[str, str]:
    """Template variables from the flags and --set NAME=VALUE (unknown names refused)."""
    from .templating import auto_variables

    known = set(matrix.defaults) | set(auto_variables()) | {"threads", "batch_size", "device", "work"}
    v = auto_variables()
    for flag, key in (("threads", "threads"), ("batch_size", "batch_size"), ("device", "device"), ("work_dir", "work")):
        value = getattr(args, flag)
        if value is not None:
            v[key] = str(value)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects NAME=VALUE, got {item!r}")
        if key not in known:
            raise UsageError(f"--set {key}: unknown variable (this matrix has: {', '.join(sorted(known))})")
        v[key] = value
    return v


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from .listing import conditions_text, dry_run_text, results_text
    from .runner import load_results, run_conditions, save_results
    from .schema import load_matrix
    from .templating import plan, plan_work

    try:
        matrix = load_matrix(args.matrix)
    except ValueError as e:  # a malformed YAML file is bad input here
        raise UsageError(str(e)) from None
    if not (args.list_conditions or args.condition or args.all or args.dry_run or args.generate_report or args.plan):
        raise UsageError("nothing to do: give --list-conditions, --condition NAME, --all, --dry-run or "
                         "--generate-report HTML (see --help)")
    selected = [matrix.get(n) for n in args.condition]  # unknown names -> exit 2 before anything runs
    if args.all:
        selected = list(matrix.conditions)
    variables = _variables(args, matrix)
    plans = plan(matrix, variables)
    work = Path(plan_work(matrix, variables))

    if args.list_conditions:
        print(conditions_text(matrix))
    if args.dry_run:
        print(dry_run_text(matrix, plans, selected or matrix.conditions), end="")
        return 0
    if args.plan:
        from .costs import plan_text

        print(plan_text(matrix, plans, variables, gpus=args.gpus, gpu=args.gpu))
        return 0
    rc = 0
    if selected:
        from .preflight import check_steps

        check_steps(matrix, plans, selected, force=args.force)  # models and corpora, before any step starts
        for sub in ("runs", "indexes", "vectors"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        results = run_conditions(matrix, plans, selected, force=args.force)
        save_results(work, matrix, results)
        print(results_text(matrix, results))
        if any(r.grade == "FAIL" for r in results.values()):
            rc = 1
    if args.generate_report:
        from .report import write_report

        write_report(args.generate_report, matrix, plans, load_results(work).get(matrix.name, {}))
        print(f"wrote {args.generate_report}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    run(main)
