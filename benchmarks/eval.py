"""``make eval``: every number and plot of docs/evaluation.md, from one command.

Runs each section of ``benchmarks/evaluation`` (peers, batching, cache,
selection, rollout, gpu), saves one JSON per section under ``--results``
(default ``~/.cache/clipper/eval/results``, outside the repository: generated
data), then writes ``docs/evaluation.md`` and its PNG plots from the saved
files. ``--only`` reruns some sections and keeps the others' files;
``--report-only`` regenerates the document without measuring. ``--quick`` runs
every section at a tiny scale (the test's smoke mode; its numbers mean nothing).

    python benchmarks/eval.py [--quick] [--only peers,cache] [--seconds 3]
                              [--results DIR] [--docs DIR | --no-docs] [--report-only]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

from evaluation import record, report
from evaluation.record import Options

SECTIONS = ["peers", "batching", "cache", "selection", "rollout", "gpu"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny scale: a smoke test")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per load cell")
    parser.add_argument("--results", type=Path, default=record.DEFAULT_RESULTS)
    parser.add_argument("--docs", type=Path, default=record.ROOT / "docs")
    parser.add_argument("--no-docs", action="store_true", help="measure only")
    parser.add_argument("--report-only", action="store_true", help="regenerate the document")
    parser.add_argument("--note", default="", help="a line for the top of the document")
    args = parser.parse_args(argv)
    sections = [s for s in args.only.split(",") if s]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; expected some of {SECTIONS}")
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    options = Options(results=args.results, quick=args.quick, seconds=seconds)
    failed = [] if args.report_only else run_sections(sections, options)
    if not args.no_docs:
        path = report.write(args.results, args.docs, args.note)
        print(f"wrote {path}")
    return 1 if failed else 0


def run_sections(sections: list[str], options: Options) -> list[str]:
    """Each section in turn; one that fails is reported and the others still run."""
    failed = []
    for section in sections:
        module = importlib.import_module(f"evaluation.{section}")
        head = record.envelope(section, options, record.machine())
        started = time.monotonic()
        print(f"== {section} (load average {head['machine']['load_average'][0]})", flush=True)
        try:
            data = module.run(options)
        except Exception:
            traceback.print_exc()
            failed.append(section)
            continue
        data["elapsed_s"] = round(time.monotonic() - started, 1)
        path = record.write(section, head, data, options)
        print(f"   {section}: {data['elapsed_s']:.0f} s -> {path}", flush=True)
    if failed:
        print(f"sections that failed: {', '.join(failed)}", file=sys.stderr)
    return failed


if __name__ == "__main__":
    sys.exit(main())
