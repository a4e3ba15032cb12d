"""On-disk formats: every file this toolkit writes or reads between stages has its owner here.

Layer 1 of the package (imports only the package-root plumbing ``_errors``, ``_outputs`` and ``_console``,
numpy and orjson; inside functions, the engine library that reads an index file: seismic, pyvsag); one
module per format or job, listed with the files they own in docs/architecture.md. Each index folder's
files belong here too, not to the stage that writes them, since the search stage reads them and must not
import the index stage.
"""
