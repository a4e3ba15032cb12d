"""pyserini_splare: learned sparse retrieval (SPLARE, SPLADE, MILCO) for multilingual search, in
Pyserini's conventions. Importing the package is cheap: no torch, no JVM, no network."""

__version__ = "0.1.0"
