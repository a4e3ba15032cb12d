"""On-disk formats: every file this toolkit writes or reads between stages has its owner here.

Layer 1 of the package (imports only the package-root plumbing ``_errors``, ``_outputs`` and ``_console``,
numpy and orjson); one module per format or job, listed with the files they own in docs/architecture.md.
"""
