"""An offline, end-to-end demo on a small multilingual collection written for this project (docs/demo.md).

Modules: :mod:`.data` (the collection), :mod:`.splare_demo` (SPLARE-demo), :mod:`.pipeline` (``run_demo``),
:mod:`.report` (the printed table); ``__main__`` parses the command line.
"""
