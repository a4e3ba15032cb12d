"""A matrix step may build the model a later step loads (the local matrix's tiny models and ONNX export).

The preflight (``repro/preflight.py``) checks every ``--encoder`` before the first step starts; a model that
an earlier step about to run ``creates`` is not there yet and must not be refused, while a missing model that
no step makes still is. The runner makes the parent folder of each ``creates`` path (the stage CLIs refuse a
missing parent). Steps here are plain Python one-liners standing in for the stage CLIs.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare.repro.preflight import check_steps
from pyserini_splare.repro.runner import run_conditions
from pyserini_splare.repro.schema import load_matrix
from pyserini_splare.repro.templating import plan


def _matrix(tmp_path, build: bool):
    build_step = (f"""      - command: python -c "import os, sys; os.mkdir(sys.argv[1])" {{work}}/models/m
        creates: "{{work}}/models/m"
""" if build else "")
    (tmp_path / "m.yaml").write_text(f"""
name: t
topics: unused
qrels: unused
metrics: [AP]
defaults: {{work: {tmp_path / 'work'}}}
conditions:
  - name: c
    output: "{{work}}/run.txt"
    steps:
{build_step}      - python -m pyserini_splare.search --index x --topics t --encoder splade:{{work}}/models/m --output {{work}}/run.txt
""")
    m = load_matrix(str(tmp_path / "m.yaml"))
    return m, plan(m, {"work": str(tmp_path / "work")})


def test_preflight_leaves_a_model_an_earlier_step_creates(tmp_path):
    m, plans = _matrix(tmp_path, build=True)
    check_steps(m, plans, m.conditions)  # no error: step 1 makes the model


def test_preflight_still_refuses_a_model_nothing_creates(tmp_path):
    m, plans = _matrix(tmp_path, build=False)
    with pytest.raises(UsageError, match="condition c, step 1"):
        check_steps(m, plans, m.conditions)


def test_runner_makes_the_parent_of_created_paths(tmp_path):
    m, plans = _matrix(tmp_path, build=True)
    ran = []

    def runner(argv, check):
        ran.append(argv)
        if "-c" in argv:  # the build step: os.mkdir fails unless {work}/models exists
            return subprocess.run([sys.executable, *argv[1:]], check=check)
        raise subprocess.CalledProcessError(1, argv)  # the search step: not run here

    run_conditions(m, plans, m.conditions, runner=runner)
    assert (tmp_path / "work" / "models" / "m").is_dir() and len(ran) == 2
