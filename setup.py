"""Build the Cython core, the export writer, the read-ahead reader and the JSON writer.  A compiler failure fails the build: there is no silent
pure-Python fallback (set FASTDICOM_PURE_PYTHON=1 at run time to choose the twin)."""
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("FASTDICOM_DEBUG") == "1"
sanitize = os.environ.get("FASTDICOM_SANITIZE") == "1"

cflags = ["-O0", "-g"] if debug else ["-O3"]
ldflags = []
if sanitize:
    cflags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g"]
    ldflags += ["-fsanitize=address,undefined"]

directives = {
    "language_level": "3",
    "boundscheck": debug,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": debug,
    "embedsignature": True,
}
if debug:
    directives["linetrace"] = True

exts = [
    Extension(
        f"fastdicom.{name}",
        [f"src/fastdicom/{name}.pyx"],
        extra_compile_args=cflags + ["-Wno-unused-function"],
        extra_link_args=ldflags + extra,
    )
    # the core (sans-IO byte work), the export sink's native writer threads,
    # the capture reader's read-ahead thread and the summary's JSON writer
    for name, extra in (("_core", []), ("_filewriter", ["-pthread"]), ("_filereader", ["-pthread"]),
                        ("_jsontext", []))
]

setup(ext_modules=cythonize(exts, compiler_directives=directives, annotate=debug))
