"""Everything an encode can check before it downloads a corpus or loads a model.

A bad model path used to surface only after a multi-GB corpus download or minutes of model loading.
:func:`preflight` refuses first, in one line each, an encoder spec that names nothing loadable (locally or on
a hub that answers), an unreadable or unknown ``--corpus`` (nothing is downloaded) and an unwritable output;
the reproduction runner runs the same checks (:func:`check_encoder`, :func:`check_model_source`).
"""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import UsageError

# Seconds to wait for the hub's answer about a model id that is not cached (a slow answer is still
# far cheaper than discovering the problem after a corpus download).
HUB_TIMEOUT = 10.0
# A Hugging Face model folder holds one of these (sharded checkpoints: the index file).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
# Kinds whose loader accepts only a local folder (no hub download): their checkpoint format is ours.
_LOCAL_ONLY = {"splare": "a SPLARE checkpoint is a local folder with splare_config.json (docs/splare-checkpoint.md)",
               "onnx": "an ONNX encoder is a local folder written by python -m pyserini_splare.export"}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or transformers' older ``TRANSFORMERS_OFFLINE``) as set now."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE"))


def _looks_local(path: str) -> bool:
    # A hub id is "name" or "namespace/name"; anything else (./x, /x, ~/x, a/b/c) can only be a path.
    return path.startswith(("/", ".", "~")) or path.count("/") > 1


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--")) / "snapshots"
    return folder.is_dir() and any(folder.iterdir())


def check_hub_model(what: str, repo_id: str) -> None:
    """A Hugging Face id that loading would download: it must be in the local cache, or on a hub that
    answers now. UsageError naming ``what`` otherwise (no such repository, offline, unreachable)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise UsageError(f"{what}: {repo_id!r} is neither a local folder nor a Hugging Face model id") from None
    if _in_hub_cache(repo_id):
        return
    where = f"{what}: {repo_id} is not a local folder, not in the Hugging Face cache"
    if hub_offline():
        raise UsageError(f"{where}, and HF_HUB_OFFLINE is set (give a local folder, or download it first)")
    try:
        HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None).model_info(repo_id, timeout=HUB_TIMEOUT)
    except GatedRepoError:
        return  # it exists; access is the loader's business (a token), not a typo
    except RepositoryNotFoundError:
        raise UsageError(f"{where}, and the Hugging Face hub has no model {repo_id} (a typo in the path?)") from None
    except Exception as e:  # noqa: BLE001 -- any failure to get an answer means the model cannot be fetched
        from ..corpus import network_reason

        raise UsageError(f"{where}, and the hub cannot be reached ({network_reason(e)}); give a local folder, "
                         "or connect and rerun") from None


def check_model_source(what: str, path: str) -> None:
    """A model named by a local folder (it must exist and be a folder) or a Hugging Face id (see
    :func:`check_hub_model`); the folder's contents are the caller's to check."""
    local = Path(path).expanduser()
    if local.exists():
        if not local.is_dir():
            raise UsageError(f"{what}: {path} is a file, not a model folder")
        return
    if _looks_local(path):
        raise UsageError(f"{what}: model folder {path} does not exist")
    check_hub_model(what, path)


def _check_hf_folder(what: str, d: Path) -> None:
    """A Hugging Face model folder: ``config.json`` and a weights file."""
    if not (d / "config.json").is_file():
        raise UsageError(f"{what}: {d} is not a Hugging Face model folder (no config.json)")
    if not any((d / f).is_file() for f in WEIGHT_FILES):
        raise UsageError(f"{what}: {d} holds no weights ({', '.join(WEIGHT_FILES)})")


def _check_referenced(what: str, path: str | None, base: Path, hf_folder: bool = False) -> None:
    """A model part a checkpoint config names: relative paths are looked up inside the checkpoint first."""
    if not path:
        return
    from .modules.trunk import resolve_path

    resolved = resolve_path(path, str(base))
    check_model_source(what, resolved)
    if hf_folder and Path(resolved).expanduser().is_dir():
        _check_hf_folder(what, Path(resolved).expanduser())


def _check_splare(spec: str, d: Path) -> None:
    from .splare import HF_SCHEME, SplareConfig

    cfg = SplareConfig.read(str(d))  # one line for a missing, malformed or unknown-key config
    _check_referenced(f"{spec}: backbone", cfg.backbone, d, hf_folder=True)
    if cfg.sae.path.startswith(HF_SCHEME):
        parts = cfg.sae.path[len(HF_SCHEME):].strip("/").split("/")
        if len(parts) < 2:
            raise UsageError(f"{spec}: SAE path {cfg.sae.path!r}: expected hf://OWNER/REPO[/SUBFOLDER]")
        check_hub_model(f"{spec}: SAE", "/".join(parts[:2]))
    else:
        from .modules.trunk import resolve_path

        if not os.path.exists(resolve_path(cfg.sae.path, str(d))):
            raise UsageError(f"{spec}: SAE {cfg.sae.path} does not exist (relative paths are inside {d})")
    _check_referenced(f"{spec}: LoRA adapter", cfg.lora, d)


def _check_splade_llm(spec: str, d: Path) -> None:
    from .splade_llm import CONFIG_FILE, SpladeLLMConfig

    if not (d / CONFIG_FILE).is_file():
        _check_hf_folder(spec, d)  # a plain causal LM folder
        return
    cfg = SpladeLLMConfig.read(str(d))
    _check_referenced(f"{spec}: backbone", cfg.backbone, d, hf_folder=True)
    _check_referenced(f"{spec}: LoRA adapter", cfg.lora, d)


def _check_milco(spec: str, d: Path, trust_remote_code: bool) -> None:
    if not (d / "config.json").is_file():
        raise UsageError(f"{spec}: {d} is not a MILCO checkpoint (no config.json)")
    if not trust_remote_code and not any((d / f).is_file() for f in ("model.safetensors",
                                                                     "model.safetensors.index.json")):
        raise UsageError(f"{spec}: {d} holds no model.safetensors")


def check_encoder(spec: str, *, trust_remote_code: bool = False) -> None:
    """The encoder ``spec`` names something loadable: its kind is known, and its folder exists with
    the kind's files (and those its config points to), or its hub id is cached or on the hub."""
    from .specs import resolve_spec

    kind, path = resolve_spec(spec)  # unknown kind, empty path, missing path-like folder
    d = Path(path).expanduser()
    label = f"encoder {kind}"
    if not d.is_dir():
        if kind in _LOCAL_ONLY:
            raise UsageError(f"{label}: {path} is not a folder; {_LOCAL_ONLY[kind]}")
        if kind == "milco" and not trust_remote_code:
            raise UsageError(f"{label}: {path} is not a local folder; a hub MILCO checkpoint runs its own code: "
                             "pass --trust-remote-code")
        check_model_source(label, path)
        return
    if kind == "splare":
        _check_splare(label, d)
    elif kind == "splade-llm":
        _check_splade_llm(label, d)
    elif kind == "milco":
        _check_milco(label, d, trust_remote_code)
    elif kind == "onnx":  # its loader checks the graphs themselves (cheap: no model weights are read twice)
        if not (d / "onnx_encoder.json").is_file():
            raise UsageError(f"{label}: {d} holds no onnx_encoder.json (write one with python -m pyserini_splare.export)")
    else:  # splade, bge-m3, opensearch, qwen3-embed: a Hugging Face model folder
        _check_hf_folder(label, d)


def check_corpus(spec: str) -> None:
    """``--corpus`` names a readable file or folder of a known format, or a known ir_datasets id with
    documents; nothing is read or downloaded."""
    from ..corpus import open_corpus

    docs = open_corpus(spec)  # paths are checked at the call; an ir_datasets id is looked up
    close = getattr(docs, "close", None)
    if close is not None:
        close()


def preflight(args) -> None:
    """Every check :mod:`pyserini_splare.encode`'s arguments allow before any download or model load."""
    from .._outputs import check_output_dir

    check_output_dir(args.output, overwrite=args.overwrite)
    if args.prune_from:
        return
    check_encoder(args.encoder, trust_remote_code=args.trust_remote_code)
    check_corpus(args.corpus)
