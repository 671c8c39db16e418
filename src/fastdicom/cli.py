"""Command line: wires options to the decoder and its sinks.  Nothing else.

Exit codes: 0 success; 1 the capture was read but ``--fail-on`` found
problems at or above the given severity; 2 usage errors or an unreadable file
(one clear line on standard error, never a traceback).
"""

from __future__ import annotations

import os
import sys

from . import __version__
from .errors import CaptureFormatError, FastDicomError, FilterError

EPILOG_PORTS = ("DICOM is recognised on --ports (default: 104 and 11112) and, unless "
                "--no-heuristic, on any port from the traffic itself.")


def _common(p, filters=True):
    p.add_argument("captures", nargs="+", metavar="CAPTURE",
                   help="pcap or pcapng file, gzip-compressed or not; '-' reads standard input")
    p.add_argument("--ports", default="104, 11112", metavar="SPEC",
                   help="TCP ports that carry DICOM: commas, spaces and ranges, e.g. "
                        "\"104, 11112 2761-2762\" (default: \"104, 11112\")")
    p.add_argument("--no-heuristic", action="store_true",
                   help="decode only the --ports, do not recognise DICOM on other ports")
    if filters:
        p.add_argument("-Y", "--filter", metavar="FILTER",
                       help="Wireshark-style display filter on dicom.* fields "
                            "(see 'fastdicom fields')")
    p.add_argument("--redact", action="store_true",
                   help="replace patient-identifying values (PS3.15 basic profile) in the output")
    p.add_argument("--fail-on", choices=("warning", "error"), default=None,
                   help="exit with status 1 when expert info of this severity or worse was found")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="CPUs to use (summary only; the output is identical to one CPU's): "
                        "1 reads and decodes on one thread; 2 or 3 read the capture ahead "
                        "on a second thread; each further pair adds a process that takes "
                        "a share of the connections; 0 means every CPU; default: every CPU "
                        "for captures of 256 MB or more, else 1")
    _bounds(p)


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size()`` tells it
    (COLUMNS, else standard output's terminal, else 80), without importing
    shutil: argparse asks for it at every ``add_argument``, and shutil
    brings its archive modules along (zlib, bz2, lzma: 2 ms of every start)."""
    try:
        n = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        n = 0
    if n <= 0:
        try:
            n = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            n = 0
    return n if n > 0 else 80


class _Width:
    """Help text as wide as the terminal (argparse's own rule, ``_columns``)."""

    def __init__(self, *args, **kwargs):
        if len(args) < 4 and kwargs.get("width") is None:
            kwargs["width"] = _columns() - 2
        super().__init__(*args, **kwargs)


# argparse's help formatters at the terminal's width, made by build_parser:
# argparse is imported only then (after ``summary`` has begun to read its
# capture, see ``entry``)
_Help = _RawHelp = None


def _formatters() -> None:
    global _Help, _RawHelp
    import argparse

    class _Help(_Width, argparse.HelpFormatter):
        pass

    class _RawHelp(_Width, argparse.RawDescriptionHelpFormatter):
        pass


def _size(text: str) -> int:
    """A byte count: 1048576, 64K, 64M, 1G (powers of 1024)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(t[-1:], 1)
    if mult > 1:
        t = t[:-1]
    try:
        n = int(float(t) * mult) if "." in t else int(t) * mult
    except ValueError:
        import argparse
        raise argparse.ArgumentTypeError(f"not a byte count: {text!r} (e.g. 1048576, 64K, 64M, 1G)") from None
    if n < 0:
        import argparse
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return n


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        import argparse
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 1:
        import argparse
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return n


def _bounds(p):
    """The resource bounds (SECURITY.md); each hit is reported as expert info."""
    from .capture import (
        DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_DEPTH, DEFAULT_MAX_INFLATE, DEFAULT_MAX_OOO_BYTES,
    )
    g = p.add_argument_group("resource bounds (see SECURITY.md; hitting one is reported as expert info)")
    g.add_argument("--max-ooo-bytes", type=_size, default=DEFAULT_MAX_OOO_BYTES, metavar="BYTES",
                   help="out-of-order TCP data held, all connections together; past it the "
                        "oldest hole is declared lost (default: 64M)")
    g.add_argument("--max-pdu", type=_size, default=None, metavar="BYTES",
                   help="largest P-DATA-TF length accepted as plausible; a longer one is "
                        "treated as a damaged header (default: any, 4G; P-DATA is streamed, "
                        "never held whole)")
    g.add_argument("--max-connections", type=_count, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                   help="TCP connections tracked at once; past it the least recently active "
                        "is dropped (SYN floods; default: 100000)")
    g.add_argument("--max-depth", type=_count, default=DEFAULT_MAX_DEPTH, metavar="N",
                   help="sequence nesting levels decoded in data sets (default: 64)")
    g.add_argument("--max-inflate", type=_size, default=DEFAULT_MAX_INFLATE, metavar="BYTES",
                   help="bytes a deflated data set may inflate to when it is decoded "
                        "(decompression bombs; default: 64M)")


def _add_commands():
    """The commands, in the order ``--help`` lists them: name -> the function
    that adds its full parser to the subparsers."""
    return {"summary": _add_summary, "export": _add_export, "pdus": _add_pdus, "show": _add_show,
            "expert": _add_expert, "analyze": _add_analyze, "report": _add_report,
            "batch": _add_batch, "sample": _add_sample, "fields": _add_fields}


def build_parser(argv=None):
    """The command line parser.  Only the command that ``argv`` names gets
    its full parser (the others are named, with their one-line help, for
    ``--help`` and for the error on an unknown command): building all ten
    took 7 ms of every run's start, before a capture is even opened."""
    import argparse

    _formatters()
    ap = argparse.ArgumentParser(
        prog="fastdicom",
        description="Fast, exact analysis of DICOM network traffic in packet captures.",
        epilog="Run 'fastdicom COMMAND --help' for the options of a command.",
        formatter_class=_Help)
    ap.add_argument("--version", action="version", version=f"fastdicom {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    chosen = words[0] if words else None
    for name, add in _add_commands().items():
        if chosen is None or name == chosen:
            add(sub)
        else:
            sub.add_parser(name, help=_COMMAND_HELP[name], formatter_class=_Help)
    return ap


_COMMAND_HELP = {
    "summary": "associations, operations, objects and expert info",
    "export": "write every data set as a DICOM Part 10 file",
    "pdus": "one line per PDU, like tshark's packet list",
    "show": "a detailed tree per PDU, like tshark -V",
    "expert": "expert info: problems found, by severity",
    "analyze": "troubleshooting findings: failures, negotiation, queries, retrieves, speed",
    "report": "write a self-contained HTML report to open and share",
    "batch": "many captures into Parquet tables (local processes or Dask)",
    "sample": "print the path of a capture bundled with fastdicom",
    "fields": "list the display-filter fields (for -Y)",
}


def _add_summary(sub) -> None:
    p = sub.add_parser(
        "summary", help=_COMMAND_HELP["summary"],
        description="Summarise the DICOM traffic in captures: associations and their "
                    "negotiation, operations with statuses and timings, the objects that "
                    "crossed the wire, and expert info.",
        epilog="Example: fastdicom summary night.pcap.gz --format json -o night.json\n" + EPILOG_PORTS,
        formatter_class=_RawHelp)
    _common(p)
    p.add_argument("--format", choices=("text", "json", "jsonl", "csv"), default="text",
                   help="text: a readable report; json: one document (the contract in the "
                        "README); jsonl: one object per line; csv: the operations table")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--follow", action="store_true",
                   help="print each operation as soon as it completes (jsonl or text)")
    p.add_argument("--hash", action="store_true",
                   help="compute the SHA-256 of every data set (reads every byte; slower)")
    p.add_argument("--slowest", type=int, default=10, metavar="N",
                   help="how many of the slowest operations to list (text format, default 10)")
    p.add_argument("--head-bytes", type=int, default=65536, metavar="N",
                   help="bytes at the start of each data set that are read for its patient, "
                        "study and series context; the rest is only counted (default 65536; "
                        "the walk also stops after Series Instance UID (0020,000E), and no "
                        "byte of a Pixel Data value longer than this is read)")


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export", help=_COMMAND_HELP["export"],
        description="Export every data set that crossed the wire (C-STORE, C-GET/C-MOVE "
                    "sub-operations, C-FIND identifiers and responses, N-* data sets) as a "
                    "Part 10 file, with a manifest.jsonl.  Incomplete objects are never "
                    "written under a normal name.",
        epilog="Example: fastdicom export study.pcap -o objects/ --layout patient --verify\n"
               + EPILOG_PORTS,
        formatter_class=_RawHelp)
    _common(p, filters=False)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--min-size", type=int, default=0, metavar="BYTES",
                   help="minimum object size (meta header plus data) to export, as Wireshark's "
                        "export_minsize (default: 0, everything)")
    p.add_argument("--include-commands", action="store_true",
                   help="also export command sets (implicit VR LE, artificial UIDs)")
    p.add_argument("--keep-incomplete", action="store_true",
                   help="keep incomplete objects as NAME.dcm.partial (missing ranges reported)")
    p.add_argument("--no-meta-header", action="store_true",
                   help="write the bare data set, without preamble and File Meta Information")
    p.add_argument("--layout", choices=("flat", "association", "patient"), default="flat",
                   help="folder structure (default: flat)")
    p.add_argument("--verify", action="store_true",
                   help="re-read every exported file with pydicom and report the ones that fail")
    p.add_argument("--max-open-files", type=_count, default=64, metavar="N",
                   help="files open at once while writing; the least recently written is "
                        "closed and reopened when more comes (default: 64)")
    p.add_argument("--max-total-bytes", type=_size, default=0, metavar="BYTES",
                   help="stop writing objects past this many bytes, e.g. 10G (default: 0, no limit)")
    p.add_argument("--no-direct-io", action="store_true",
                   help="write through the page cache; by default files are written with O_DIRECT "
                        "where the file system allows it, which is faster for large exports")


def _add_pdus(sub) -> None:
    p = sub.add_parser(
        "pdus", help=_COMMAND_HELP["pdus"],
        description="List every PDU: frames, time, source and destination, PDU type and "
                    "Wireshark-style info text.",
        epilog="Example: fastdicom pdus capture.pcap -Y 'dicom.pdu.type == 1'\n" + EPILOG_PORTS,
        formatter_class=_RawHelp)
    _common(p)
    p.add_argument("--format", choices=("text", "jsonl"), default="text")
    p.add_argument("-o", "--output", metavar="FILE")
    p.add_argument("--follow", action="store_true", help="print each PDU as soon as it is complete")


def _add_show(sub) -> None:
    import argparse

    p = sub.add_parser(
        "show", help=_COMMAND_HELP["show"],
        description="Show each PDU as a tree: its items and PDVs, and the decoded command and "
                    "data set elements (tag, length, name, VR, value, UID names).  Long values "
                    "are cut with an ellipsis.",
        epilog="Example: fastdicom show capture.pcap -Y 'dicom.pdu.type == 1'\n"
               "         fastdicom show capture.pcap -Y 'dicom.tag == 0x00100010' --format json\n"
               + EPILOG_PORTS,
        formatter_class=_RawHelp)
    _common(p)
    p.add_argument("--sequence-subtrees", dest="seq_tree", action=argparse.BooleanOptionalAction,
                   default=True, help="show sequence items as nested subtrees (Wireshark's "
                   "seq_tree; default on); --no-sequence-subtrees lists them flat")
    p.add_argument("--tag-subtrees", dest="tag_tree", action="store_true",
                   help="give each element a subtree with its tag, VR, length and value "
                        "(Wireshark's tag_tree)")
    p.add_argument("--max-value-length", type=int, default=64, metavar="N",
                   help="cut values longer than N characters with an ellipsis (default 64)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text tree, or one JSON tree per line")
    p.add_argument("-o", "--output", metavar="FILE")


def _add_expert(sub) -> None:
    p = sub.add_parser(
        "expert", help=_COMMAND_HELP["expert"],
        description="List the expert infos with frame, time, association and message.",
        epilog="Example: fastdicom expert capture.pcap --min-severity warning\n" + EPILOG_PORTS,
        formatter_class=_RawHelp)
    _common(p)
    p.add_argument("--min-severity", choices=("chat", "note", "warning", "error"), default="chat")
    p.add_argument("--format", choices=("text", "jsonl"), default="text")
    p.add_argument("-o", "--output", metavar="FILE")
    p.add_argument("--follow", action="store_true", help="print each entry as soon as it is found")


def _add_analyze(sub) -> None:
    p = sub.add_parser(
        "analyze", help=_COMMAND_HELP["analyze"],
        description="Analyse the DICOM traffic for problems and explain them: rejected and "
                    "aborted associations and failed connections, presentation-context "
                    "negotiation, C-FIND queries against their responses, C-MOVE/C-GET "
                    "sub-operations, where the time goes, and data sets that do not parse.  "
                    "--fail-on counts these findings.",
        epilog="Example: fastdicom analyze night.pcap --ports 104,11112 --fail-on error\n"
               "         fastdicom analyze a.pcap b.pcap --format json -o findings.json\n"
               + EPILOG_PORTS,
        formatter_class=_RawHelp)
    _common(p, filters=False)
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text: findings by severity with explanations; json: one document")
    p.add_argument("--min-severity", choices=("chat", "note", "warning", "error"), default="chat",
                   help="text format: leave out findings below this severity (default: chat, all)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report", help=_COMMAND_HELP["report"],
        description="Write ONE self-contained HTML file (no network access needed to view it): "
                    "an overview with the findings, charts of throughput, latency and "
                    "associations over time, and one section per association with a ladder "
                    "diagram, the negotiation matrix and a sortable, filterable table of "
                    "operations.  --redact removes patient-identifying values before sharing; "
                    "--fail-on counts the findings.",
        epilog="Example: fastdicom report night.pcap -o night.html --redact\n" + EPILOG_PORTS,
        formatter_class=_RawHelp)
    _common(p, filters=False)
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the HTML file to write")
    p.add_argument("--title", metavar="TEXT", help="title of the report (default: the capture names)")


def _add_batch(sub) -> None:
    p = sub.add_parser(
        "batch", help=_COMMAND_HELP["batch"],
        description="Analyse every capture under the inputs (files, folders searched "
                    "recursively for *.pcap, *.pcapng, *.cap, *.gz, and glob patterns) into "
                    "Parquet datasets under OUTDIR, one per table (associations, operations, "
                    "objects, expert, captures), partitioned by capture date.  A second run "
                    "skips the captures already done; a capture that fails is recorded in "
                    "'captures' with its error and never stops the batch.  Exit status 1 when "
                    "some captures failed.",
        epilog="Example: fastdicom batch /data/taps/ -o tables/ --workers 4\n"
               "         duckdb -c \"select calling_ae, count(*) from 'tables/operations/**/*.parquet' "
               "group by 1\"\n" + EPILOG_PORTS,
        formatter_class=_RawHelp)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="capture file, folder or glob pattern")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="output folder (created; a second run resumes)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: one per CPU)")
    p.add_argument("--dask", metavar="SCHEDULER_ADDRESS",
                   help="run on this Dask scheduler instead (workers must see OUTDIR)")
    p.add_argument("--export", action="store_true",
                   help="also export every object as a Part 10 file under OUTDIR/files/")
    p.add_argument("--partition-bytes", type=_size, default="256M", metavar="BYTES",
                   help="an uncompressed capture of this size or more is analysed as several "
                        "tasks, each with a share of its connections, then merged (the same "
                        "tables); at most one task per worker; not with --export; 0: never "
                        "(default: 256M)")
    p.add_argument("--ports", default="104, 11112", metavar="SPEC",
                   help="TCP ports that carry DICOM (default: \"104, 11112\")")
    p.add_argument("--no-heuristic", action="store_true",
                   help="decode only the --ports, do not recognise DICOM on other ports")


def _add_sample(sub) -> None:
    p = sub.add_parser(
        "sample", help=_COMMAND_HELP["sample"],
        description="Print the path of a small real capture shipped with fastdicom, to try "
                    "the other commands on.",
        epilog="Example: fastdicom summary $(fastdicom sample)\n"
               "         fastdicom pdus \"$(fastdicom sample query_retrieve)\" --ports 5678,11113",
        formatter_class=_RawHelp)
    p.add_argument("name", nargs="?", default=None,
                   help="store_reject_abort (default) or query_retrieve")


def _add_fields(sub) -> None:
    p = sub.add_parser(
        "fields", help=_COMMAND_HELP["fields"],
        description="List the fields a display filter (-Y) can test: Wireshark's dicom.* fields "
                    "that fastdicom supplies, fastdicom's own (dicom.op.*, dicom.assoc.id, "
                    "dicom.expert.*, ip.*, tcp.*, frame.number) and the expert info pseudo-fields, "
                    "with their type and the commands where they can be present.",
        epilog="Examples: fastdicom fields userinfo\n"
               "          fastdicom pdus capture.pcap -Y 'dicom.pctx.abss.syntax contains \"CT Image\"'\n"
               "          fastdicom summary capture.pcap -Y 'dicom.op.status_class == \"failure\"'\n"
               "Syntax: ==, !=, <, <=, >, >=, contains, matches, in {1 2 5..7}; and, or, not and "
               "parentheses; a bare field tests presence.",
        formatter_class=_RawHelp)
    p.add_argument("word", nargs="?", default=None, metavar="WORD",
                   help="show only the fields whose name contains WORD")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text: a plain table (name, type, available in, description); json: a list")


def _safe(x) -> str:
    from .show import safe_text
    return safe_text(x)


def main(argv=None) -> int:
    ap = build_parser(argv)
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # argparse: usage error (2) or --help/--version (0)
        return int(e.code or 0)
    if not args.command:
        ap.print_help()
        return 2
    try:
        from . import commands
        return commands.run(args)
    except FilterError as e:
        print(f"fastdicom: filter error: {_safe(e)}\n{_safe(e.pointer().splitlines()[0])}\n"
              f"{e.pointer().splitlines()[-1]}", file=sys.stderr)
        return 2
    except (FastDicomError, CaptureFormatError) as e:
        # one line, whatever the message holds (file names from a folder of
        # captures from the wild can hold escapes too)
        print(f"fastdicom: {_safe(e)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        print("fastdicom: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print(_safe(f"fastdicom: {str(e.filename) + ': ' if e.filename else ''}{e.strerror or e}"),
              file=sys.stderr)
        return 2
    except Exception as e:  # a bug in fastdicom: one line, the traceback only on request
        if os.environ.get("FASTDICOM_DEBUG"):
            raise
        print(f"fastdicom: internal error: {type(e).__name__}: {_safe(e)} "
              "(set FASTDICOM_DEBUG=1 for a traceback, and please report it)", file=sys.stderr)
        return 70


def entry() -> None:
    """The ``fastdicom`` command: ``main()``, then exit without the
    interpreter's teardown.  Freeing every object one by one (the decoder
    keeps all associations for the summary) took 16-20 ms of a 0.25 s run on
    a 1 GiB capture, for memory the system takes back anyway.  What the
    program registered to run at exit still runs (temporary folders), and
    the output is flushed first.  A summary of one capture file begins to
    read it even before argparse is imported (``commands.walk_early``)."""
    from . import commands
    commands.walk_early(sys.argv[1:])
    try:
        status = main()
    finally:
        commands.drop_early()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    import atexit
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_functions is None:  # pragma: no cover - not CPython
        sys.exit(status)
    run_exit_functions()
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    entry()
