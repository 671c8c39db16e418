"""atheris driver: ``python fuzz/run.py TARGET [libFuzzer options] [CORPUS_DIR...]``.

Coverage comes from atheris' instrumentation of the Python code (fastdicom's
Python layer and the pure-Python core twin, whose branches mirror the
compiled core's: the differential targets run both on every input) and, when
the core is built with clang and ``-fsanitize=fuzzer-no-link``, from the
compiled core itself; AddressSanitizer and UBSan watch the compiled core when
it is built with ``FASTDICOM_SANITIZE=1``.  See fuzz/README.md for the commands.
"""

import os
import sys

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

with atheris.instrument_imports(include=["fastdicom"]):
    import fastdicom._pycore  # noqa: F401
    import fastdicom._pytagwalk  # noqa: F401
    import fastdicom.dataset  # noqa: F401
    import fastdicom.decoder  # noqa: F401
    import fastdicom.dimse  # noqa: F401
    import fastdicom.pdu  # noqa: F401
    import fastdicom.show  # noqa: F401
    import fastdicom.summary  # noqa: F401
    import targets

if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
    sys.exit(f"usage: run.py {{{','.join(targets.TARGETS)}}} [libFuzzer options] [CORPUS...]")
name = sys.argv.pop(1)
if name == "pipeline":
    with atheris.instrument_imports(include=["fastdicom"]):
        import fastdicom.analysis  # noqa: F401
        import fastdicom.cli  # noqa: F401
        import fastdicom.commands  # noqa: F401
        import fastdicom.export  # noqa: F401
        import fastdicom.report  # noqa: F401
target = targets.TARGETS[name]

import fastdicom.core  # noqa: E402

print(f"fuzz target {name}; core {fastdicom.core.IMPLEMENTATION}; fastdicom from "
      f"{os.path.dirname(fastdicom.core.__file__)}", file=sys.stderr)

atheris.Setup(sys.argv, target)
atheris.Fuzz()
