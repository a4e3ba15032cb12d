"""2CR runner: the wsdm26 matrix renders runnable commands, the report parses back, grading, errors."""

from __future__ import annotations

import importlib
import importlib.util
import json
import shlex
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from pyserini_splare.repro import (FAIL, NOT_RUN, OK, OKISH, Result, grade, load_matrix, plan,
                                   run_conditions, save_results)
from pyserini_splare.repro.__main__ import main

REPRO = Path(__file__).resolve().parents[1] / "pyserini_splare" / "repro"

# The seed paper's numbers (Tables 2-8) and the official BM25 baseline, written out independently of the YAML.
PAPER = {
    "bm25-translated": 0.349, "milco": 0.395, "plaid-x": 0.396, "qwen3-embed-8b": 0.423, "baseline-fusion": 0.468,
    "qwen3-reranker-4b-on-baseline-fusion": 0.487, "splare-7b": 0.498, "splare-7b-topk": 0.471,
    "splade-8b": 0.512, "splade-8b-topk": 0.464, "run2": 0.517, "run5": 0.559,
    **{f"run1-rerank-d{d}": v for d, v in zip((10, 20, 50, 100, 200, 500, 1000),
                                              (.505, .512, .545, .545, .546, .534, .536))},
    **{f"run2-rerank-d{d}": v for d, v in zip((10, 20, 50, 100, 200, 500, 1000),
                                              (.522, .527, .546, .548, .546, .541, .540))},
}


def test_wsdm26_matrix_has_every_condition_of_the_paper():
    m = load_matrix("wsdm26")
    assert {c.name: c.scores["nDCG@20"] for c in m.conditions} == PAPER
    assert (m.topics, m.qrels, m.metrics) == ("neuclir", "neuclir", ["nDCG@20"])
    assert m.get("run1").name == "splare-7b" and m.get("run3").name == "run1-rerank-d100"
    assert m.get("run4").name == "run2-rerank-d100"
    assert set(m.get("run5").requires) == {"run2", "run2-rerank-d100"}
    # dependencies come first in the execution order
    order = [c.name for c in m.order([m.get("run5")])]
    assert order.index("splare-7b") < order.index("run2") < order.index("run2-rerank-d100") < order.index("run5")


def _dry_run_commands(capsys, *argv) -> tuple[list[str], list[str]]:
    assert main(["wsdm26", "--dry-run", *argv]) == 0
    out = capsys.readouterr().out
    headers = [line[2:].split(":")[0] for line in out.splitlines() if line.startswith("# ") and ":" in line
               and not line.startswith("# external")]
    commands = [line.split("    # skipped if")[0] for line in out.splitlines() if line.strip() and not line.startswith("#")]
    return headers, commands


def test_dry_run_prints_a_parseable_command_for_every_condition(capsys):
    headers, commands = _dry_run_commands(capsys, "--threads", "7", "--batch-size", "5", "--device", "cuda:3",
                                          "--set", "splare_model=/models/splare")
    m = load_matrix("wsdm26")
    assert sorted(headers) == sorted(c.name for c in m.conditions)
    parsers = {}
    for cmd in commands:
        argv = shlex.split(cmd)
        assert argv[:2] == ["python", "-m"], cmd
        module = argv[2]
        assert module.startswith("pyserini_splare."), cmd
        assert importlib.util.find_spec(module) is not None, f"{module} does not exist: {cmd}"
        if module not in parsers:
            cli = importlib.import_module(module + ".__main__")
            parsers[module] = cli.build_parser
            with pytest.raises(SystemExit) as e:  # --help works
                cli.build_parser().parse_args(["--help"])
            assert e.value.code == 0
        # every flag and value of the rendered command is accepted by the module's own parser
        parsers[module]().parse_args(argv[3:])
        assert "{" not in cmd and "}" not in cmd, f"unrendered template in {cmd}"
    capsys.readouterr()
    text = "\n".join(commands)
    assert "--threads 7" in text and "--batch-size 5" in text and "--device cuda:3" in text
    assert "splare:/models/splare" in text
    assert "--rrf.k 10" in text and "--rrf.k 50" in text and "--depth 100 --max-length 2048" in text


class _ReportParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows: dict[tuple[str, str], dict[str, str]] = {}
        self.images = 0
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "condition" in (a.get("class") or "").split():
            self._row = self.rows.setdefault((a["data-condition"], a["data-metric"]), {})
        elif tag == "td" and self._row is not None:
            classes = (a.get("class") or "").split()
            self._cell = next((c for c in ("expected", "measured", "grade") if c in classes), None)
        elif tag == "img" and (a.get("src") or "").startswith("data:image/png;base64,"):
            self.images += 1

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None
        if tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._row is not None and self._cell and data.strip():
            self._row[self._cell] = self._row.get(self._cell, "") + data.strip()


def test_generate_report_parses_back_to_conditions_and_expected_scores(tmp_path):
    m = load_matrix("wsdm26")
    # two measured conditions, as a finished run would leave them in repro-results.json
    save_results(tmp_path, m, {"run5": Result("run5", OK, {"nDCG@20": 0.5592}),
                               "run1-rerank-d100": Result("run1-rerank-d100", OKISH, {"nDCG@20": 0.541})})
    out = tmp_path / "report.html"
    assert main(["wsdm26", "--generate-report", str(out), "--work-dir", str(tmp_path)]) == 0
    p = _ReportParser()
    p.feed(out.read_text(encoding="utf-8"))
    assert {name: float(r["expected"]) for (name, metric), r in p.rows.items()} == PAPER
    assert all(metric == "nDCG@20" for _, metric in p.rows)
    assert p.rows[("run5", "nDCG@20")]["measured"] == "0.5592" and p.rows[("run5", "nDCG@20")]["grade"] == "OK"
    assert p.rows[("run1-rerank-d100", "nDCG@20")]["grade"] == "OKish"  # |0.541 - 0.545| = 0.004
    assert p.rows[("splare-7b", "nDCG@20")]["grade"] == "not run"
    assert p.images == 2  # reranking-depth curves + expected vs measured


def test_unknown_condition_is_a_one_line_error_with_suggestions(capsys):
    assert main(["wsdm26", "--condition", "run6"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: unknown condition 'run6'") and "run5" in err
    assert main(["wsdm27", "--list-conditions"]) == 2
    assert "did you mean wsdm26" in capsys.readouterr().err
    assert main(["wsdm26", "--dry-run", "--set", "nonsense=1"]) == 2
    assert main(["wsdm26"]) == 2  # nothing to do


@pytest.mark.parametrize("measured,expected_grade", [
    (0.5590, OK), (0.5595, OK), (0.5585, OK), (0.5596, OKISH), (0.5640, OKISH), (0.5539, FAIL), (0.6, FAIL)])
def test_grade_thresholds(measured, expected_grade):
    assert grade({"nDCG@20": 0.559}, {"nDCG@20": measured}, {"ok": 0.0005, "okish": 0.005}) == expected_grade


def test_grade_is_the_worst_metric_and_not_run_without_measurements():
    tol = {"ok": 0.0005, "okish": 0.005}
    assert grade({"AP": 0.3, "P@30": 0.2}, {"AP": 0.3, "P@30": 0.21}, tol) == FAIL
    assert grade({"AP": 0.3}, {}, tol) == NOT_RUN
    assert grade({"AP": 0.3, "P@30": 0.2}, {"AP": 0.3}, tol) == FAIL  # a metric missing from the output


def _toy_matrix(tmp_path: Path) -> Path:
    """A two-condition matrix whose steps copy hand-written runs (real subprocesses, no models)."""
    (tmp_path / "qrels.txt").write_text("q1 0 d1 1\nq1 0 d2 0\nq2 0 d3 1\n")
    (tmp_path / "good.txt").write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 1.0 t\nq2 Q0 d3 1 1.0 t\n")
    (tmp_path / "half.txt").write_text("q1 Q0 d2 1 2.0 t\nq1 Q0 d1 2 1.0 t\nq2 Q0 d3 1 1.0 t\n")
    copy = "python -c \"import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])\""
    matrix = {
        "name": "toy", "topics": "none", "qrels": str(tmp_path / "qrels.txt"), "metrics": ["P@1"],
        "defaults": {"work": str(tmp_path / "work"), "src": str(tmp_path / "good.txt")},
        "conditions": [
            {"name": "first", "output": "{work}/first.txt", "scores": {"P@1": 1.0},
             "steps": [{"command": f"{copy} {{src}} {{work}}/first.txt", "creates": "{work}/first.txt"}]},
            # P@1: q1 ranks d2 (grade 0) first -> 0, q2 -> 1; mean 0.5, expected 0.6 -> FAIL
            {"name": "second", "requires": ["first"], "output": "{work}/second.txt", "scores": {"P@1": 0.6},
             "steps": [f"{copy} {tmp_path / 'half.txt'} {{out[second]}}"]},
            {"name": "broken", "output": "{work}/broken.txt", "scores": {"P@1": 1.0},
             "steps": [f"{copy} {tmp_path / 'does-not-exist.txt'} {{out[broken]}}"]},
            {"name": "after-broken", "requires": ["broken"], "output": "{work}/ab.txt", "scores": {"P@1": 1.0},
             "steps": [f"{copy} {{out[broken]}} {{out[after-broken]}}"]},
        ]}
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(matrix))
    return path


def test_runner_runs_dependencies_grades_and_isolates_failures(tmp_path, capsys):
    m = load_matrix(str(_toy_matrix(tmp_path)))
    (tmp_path / "work").mkdir()
    plans = plan(m, {})
    results = run_conditions(m, plans, [m.get("second"), m.get("after-broken")])
    assert list(results) == ["first", "second", "broken", "after-broken"]
    assert results["first"].grade == OK and results["first"].measured == {"P@1": 1.0}
    assert results["second"].grade == FAIL and results["second"].measured == {"P@1": 0.5}
    assert results["broken"].grade == FAIL and "command failed" in results["broken"].note
    assert results["after-broken"].grade == NOT_RUN
    # the CLI: rc 1 when something FAILs; results are stored for the report
    assert main([str(tmp_path / "toy.yaml"), "--condition", "first", "--condition", "second"]) == 1
    stored = json.loads((tmp_path / "work" / "repro-results.json").read_text())["toy"]
    assert stored["first"]["grade"] == OK and stored["second"]["measured"] == {"P@1": 0.5}


def test_external_condition_without_its_run_file_is_not_run(tmp_path, capsys):
    assert main(["wsdm26", "--condition", "plaid-x", "--work-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "plaid-x" in out and "not run" in out


def test_evaluation_runs_in_process_and_a_bad_run_fails_the_condition(tmp_path):
    """The runner grades with eval's own function (no stdout parsing); a run eval refuses is a FAIL."""
    from pyserini_splare.eval import evaluate

    m = load_matrix(str(_toy_matrix(tmp_path)))
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "broken.txt").write_text("q1 0 d1 1\n")  # a qrels line, not a run line
    results = run_conditions(m, plan(m, {}), [m.get("first"), m.get("broken")])
    assert results["first"].measured == evaluate(str(tmp_path / "qrels.txt"), str(tmp_path / "good.txt"), ["P@1"])
    assert results["broken"].grade == FAIL and results["broken"].note.startswith("evaluation failed: ")


@pytest.mark.parametrize("change, message", [
    (lambda r: r["conditions"][0].update(scroes={"AP": 0.1}), "conditions[0]: unknown keys ['scroes']"),
    (lambda r: r["conditions"][1].update(scores={"AP": "high"}), "conditions[1].scores.AP: Input should be a valid number"),
    (lambda r: r.update(tolerance={"ok": 0.1, "okish": 0.01}), "tolerance: tolerance needs 0 <= ok <= okish"),
    (lambda r: r["conditions"][1].update(requires=["nope"]), "requires unknown condition 'nope'"),
    (lambda r: r["conditions"][0].update(steps=[{"cmd": "true"}]), "conditions[0].steps[0]: unknown keys ['cmd']"),
    (lambda r: r.pop("qrels"), "qrels: Field required"),
])
def test_malformed_matrix_is_one_line_naming_file_and_field(tmp_path, capsys, change, message):
    import copy

    import yaml

    from pyserini_splare._errors import UsageError
    from pyserini_splare.repro.__main__ import main
    from pyserini_splare.repro.schema import MATRIX_DIR

    raw = yaml.safe_load((MATRIX_DIR / "local.yaml").read_text())
    bad = copy.deepcopy(raw)
    change(bad)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(UsageError) as e:
        load_matrix(str(path))
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value) and "\n" not in str(e.value)
    assert main([str(path), "--list-conditions"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and message in err and "Traceback" not in err
