"""The README's and docs/getting-started.md's commands, run verbatim as a new user would.

Each document's ```bash blocks are run in order, as one ``bash -e -o pipefail`` script, from an empty
temporary folder that sits beside a ``shared`` folder (a link to the real ../shared), so that the
documented ``export PYSERINI_SPLARE_DATA=../shared/data`` is relative exactly as the docs show it (a
relative data folder once made the README's ``ln -s`` a dangling link). Nothing the commands need
(``indexes/``, ``runs/``, ...) exists beforehand. Blocks that install packages or run this test suite
are not run here (CI runs them itself); the README's set-up must stay those two commands.

What is checked: every command exits 0; no traceback; the JVM stays quiet (no Java warnings, no
Anserini INFO lines) without ``--verbose``; and the README's CACM numbers are the ones eval prints
(Anserini's published regression: AP 0.3123, P@30 0.1942).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.jvm]  # every command of the docs, in child processes

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
GETTING_STARTED = REPO / "docs" / "getting-started.md"

_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
# Installing and running the test suite are what CI itself does; running them from a test is circular.
_NOT_RUN = re.compile(r"\bpip install\b|\bpytest\b|-m venv\b")


def bash_blocks(doc: Path) -> list[str]:
    return _BLOCK.findall(doc.read_text(encoding="utf-8"))


def _commands(block: str) -> list[str]:
    """Non-comment lines, with backslash continuations joined."""
    text = re.sub(r"\\\n\s*", " ", block)
    return [ln for ln in (x.strip() for x in text.splitlines()) if ln and not ln.startswith("#")]


def test_readme_setup_is_two_commands():
    setup = [b for b in bash_blocks(README) if "pip install" in b]
    assert len(setup) == 1, "the README has one set-up block"
    cmds = _commands(setup[0])
    assert len(cmds) == 2, cmds
    assert "python -m pyserini_splare.demo" in cmds[0] and cmds[1].startswith("python -m pytest")


def _run_doc(doc: Path, tmp_path: Path, shared: Path) -> subprocess.CompletedProcess:
    blocks = [b for b in bash_blocks(doc) if not _NOT_RUN.search(b)]
    assert blocks, f"{doc.name} has runnable bash blocks"
    root = tmp_path / "root"
    work = root / "work"
    work.mkdir(parents=True)
    (root / "shared").symlink_to(shared)
    script = work / "doc.sh"
    script.write_text("set -e -o pipefail\n" + "\n".join(blocks))
    env = {k: v for k, v in os.environ.items() if k not in ("PYSERINI_SPLARE_DATA", "PYSERINI_SPLARE_VERBOSE")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["bash", str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=1200)


def _assert_clean(p: subprocess.CompletedProcess) -> None:
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    noisy = [ln for ln in p.stderr.splitlines() if re.search(r"^WARNING: | INFO  \[|^SLF4J|MMapDirectory", ln)]
    assert not noisy, "the JVM logs without --verbose:\n" + "\n".join(noisy[:10])


def test_readme_first_run_verbatim(tmp_path, shared_data):
    p = _run_doc(README, tmp_path, shared_data.parent)
    _assert_clean(p)
    claimed = re.search(r"# AP ([\d.]+), P@30 ([\d.]+)", README.read_text(encoding="utf-8"))
    assert claimed, "the README states the CACM numbers"
    assert f"AP\tall\t{claimed.group(1)}" in p.stdout, p.stdout
    assert f"P@30\tall\t{claimed.group(2)}" in p.stdout, p.stdout
    # Published by Anserini's CACM regression (BM25, default analyzer): not a number recorded here.
    assert (claimed.group(1), claimed.group(2)) == ("0.3123", "0.1942")


def test_getting_started_verbatim(tmp_path, shared_data, splade_tiny_path):
    p = _run_doc(GETTING_STARTED, tmp_path, shared_data.parent)
    _assert_clean(p)
    assert "cacm" in p.stdout  # --list-topics ran with the relative data folder
    scores = dict(re.findall(r"^(nDCG@\d+)\tall\t([\d.]+)$", p.stdout, re.M))
    assert set(scores) == {"nDCG@10", "nDCG@20"}, p.stdout
    # The demo's 8 English topics have relevant English documents SPLADE-tiny can find: a score of 0
    # would mean the pipeline's stages do not fit together (e.g. query and document term spaces).
    assert all(float(v) > 0.1 for v in scores.values()), scores
