"""The prediction cache on realistic streams, with it and without it, side by side.

The paper's cache "does not seem to be evaluated": here it is, on the streams a
cache meets. Every query is a real digit whose first pixel (0 in every digit) is
replaced by an item id, so the stream decides what repeats:

* ``uniform``: ids drawn uniformly from a catalogue of a million items: almost
  nothing repeats within a run, the case where the cache is worthless;
* ``zipf-S``: ids drawn by popularity rank with P(k) ~ 1/k^S, S in 0.6..1.2;
* ``recommend``: users (Zipf activity) who mostly re-request items from their
  own short history, a few new ones;
* ``bursts``: the same query sent by every client at once, again and again:
  what request coalescing saves.

Two frontends run side by side, one with the app's cache on, one with it off,
over the same containers; each stream is measured on both back to back, the
order alternating, so a change in the machine's load hits both halves of a
ratio. Two models: the digits logistic regression (cheap: a hit saves little)
and ``slow`` (an echo that sleeps 1 ms per call and 0.5 ms per row: a hit saves
a lot). Hit rate is the frontend's own (hits and coalesced over lookups).

The cost under overload (no repeats at all, concurrency 16 to 256) is
``benchmarks/overload.py``'s table, run as its own process and parsed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from clipper.testing.frontend import route
from clipper.testing.latency import URI, LatencyControl
from clipper.testing.models import digits_batch, train_logistic_regression

from . import load
from . import ours as our_side
from .record import ROOT, Options

CATALOGUE = 1_000_000
STREAM_SPAN = 10**10
"""Each stream's ids start at ``k * STREAM_SPAN``: no stream finds another's entries."""
CONCURRENCY = 16
BURST = 32
SLOW = (0.001, 0.0005)


def zipf_ids(rng: np.random.Generator, s: float, n: int, length: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** s
    ranks = rng.choice(n, size=length, p=weights / weights.sum())
    return rng.permutation(n)[ranks]  # popularity unrelated to the id


def recommend_ids(rng: np.random.Generator, length: int, users: int = 500) -> np.ndarray:
    """Each query is (user, item) as one id; 80% of a user's requests are items
    from their own history of 20 (popular items likelier), 20% are new."""
    history = [zipf_ids(rng, 1.0, CATALOGUE, 20) for _ in range(users)]
    who = zipf_ids(rng, 1.0, users, length)
    again = rng.random(length) < 0.8
    items = np.where(
        again,
        [history[u][rng.integers(20)] for u in who],
        rng.integers(CATALOGUE, size=length),
    )
    return who * CATALOGUE + items


def streams(quick: bool) -> dict[str, np.ndarray]:
    """Every stream is longer than a cell can send (about 1,000 req/s for 3 s here),
    so no id repeats because wrk started the stream over."""
    rng = np.random.default_rng(0)
    length = 2_000 if quick else 20_000
    found = {"uniform": rng.integers(CATALOGUE, size=length)}
    for s in [1.0] if quick else [0.6, 0.8, 1.0, 1.2]:
        found[f"zipf-{s:g}"] = zipf_ids(rng, s, CATALOGUE, length)
    found["recommend"] = recommend_ids(rng, length)
    found["bursts"] = np.repeat(rng.integers(CATALOGUE, size=length // BURST), BURST)
    return {name: ids + k * STREAM_SPAN for k, (name, ids) in enumerate(found.items())}


def script(ids: np.ndarray) -> Path:
    tails = ["".join(f",{v:g}" for v in row[1:]) + "]" for row in digits_batch(64)]
    return load.stream_script([int(i) for i in ids], '{"input":[', tails, "}")


def run(options: Options) -> dict[str, Any]:
    notes = load.missing_tools(("wrk",))
    names = ["digits"] if options.quick else ["digits", "slow"]
    cells: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="clipper-eval-cache-") as tmp:
        directory = Path(tmp)
        control = LatencyControl(directory / "latency")
        control.set(*SLOW)
        models = {"digits": ("sklearn", str(train_logistic_regression(directory)))}
        with our_side.containers(models) as servers:
            slow = {
                "framework": "python",
                "name": "slow",
                "uri": URI,
                "env": control.env,
                "args": [*our_side.SHAPE, *our_side.ONE_THREAD],
            }
            from clipper.testing.frontend import start_model_servers

            extra = start_model_servers([slow]) if "slow" in names else []
            try:
                addresses = {n: s.address for n, s in servers.items()}
                addresses.update({s.name: s.address for s in extra})
                cells = measure(directory, addresses, names, streams(options.quick), options)
            finally:
                for server in extra:
                    server.stop()
    overload = run_overload(options)
    return {
        "cells": cells,
        "concurrency": CONCURRENCY,
        "catalogue": CATALOGUE,
        "burst": BURST,
        "overload": overload,
        "notes": notes,
        "summary": summarise(cells),
    }


def measure(
    directory: Path,
    addresses: dict[str, str],
    names: list[str],
    stream_ids: dict[str, np.ndarray],
    options: Options,
) -> list[dict[str, Any]]:
    cells = []
    scripts = {name: script(ids) for name, ids in stream_ids.items()}
    with (
        our_side.frontend(directory / "on.yaml", *_apps(addresses, names, True)) as on,
        our_side.frontend(directory / "off.yaml", *_apps(addresses, names, False)) as off,
    ):
        frontends = {"on": on, "off": off}
        order = 0
        for model in names:
            for stream, path in scripts.items():
                c = BURST if stream == "bursts" else CONCURRENCY
                sides = ["on", "off"] if order % 2 == 0 else ["off", "on"]
                order += 1
                for side in sides:
                    process = frontends[side]
                    before = our_side.counters(process, model)
                    result = load.wrk(f"{process.url}/{model}/predict", path, c, options.seconds)
                    moved = our_side.delta(before, our_side.counters(process, model))
                    print(
                        f"  {model:<6} {stream:<10} cache {side:<3} {result.rps:8,.0f} req/s "
                        f"p99 {result.p99_ms:7.1f} ms hit rate {moved['hit_rate']:.2f}",
                        flush=True,
                    )
                    cells.append(
                        {
                            "model": model,
                            "stream": stream,
                            "cache": side,
                            "concurrency": c,
                            **result.as_dict(),
                            "hit_rate": moved["hit_rate"],
                            "coalesced": moved["coalesced"],
                            "model_rows": moved["batch_rows"],
                            "defaults": moved["defaults"],
                        }
                    )
    return cells


def _apps(addresses: dict[str, str], names: list[str], cache: bool) -> list[dict[str, Any]]:
    return [
        route(
            n, {n: [addresses[n]]}, latency_slo_ms=1000, default_output=-1, cache={"enabled": cache}
        )
        for n in names
    ]


def summarise(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for model, stream in dict.fromkeys((c["model"], c["stream"]) for c in cells):
        pair = {c["cache"]: c for c in cells if (c["model"], c["stream"]) == (model, stream)}
        on, off = pair.get("on"), pair.get("off")
        if not on or not off:
            continue
        rows.append(
            {
                "model": model,
                "stream": stream,
                "hit_rate": on["hit_rate"],
                "on_rps": on["rps"],
                "off_rps": off["rps"],
                "on_p99_ms": on["p99_ms"],
                "off_p99_ms": off["p99_ms"],
                "speedup": on["rps"] / off["rps"] if off["rps"] else None,
                "p99_ratio": on["p99_ms"] / off["p99_ms"] if off["p99_ms"] else None,
                "model_rows_per_request": on["model_rows"] / on["requests"]
                if on["requests"]
                else None,
            }
        )
    return rows


def run_overload(options: Options) -> dict[str, Any]:
    """``benchmarks/overload.py`` as its own process (another engineer owns it)."""
    if load.tool("wrk") is None:
        return {"rows": [], "text": "", "note": "wrk not found: overload skipped"}
    seconds = max(1, round(options.seconds))
    args = ["--seconds", str(seconds)]
    if options.quick:
        args += ["--concurrency", "16", "--rows", "1", "--repeats", "1"]
    command = [sys.executable, str(ROOT / "benchmarks/overload.py"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    text = done.stdout
    return {
        "command": " ".join(command[1:]),
        "rows": parse_overload(text),
        "text": text,
        "returncode": done.returncode,
        "stderr": done.stderr[-2000:],
    }


def parse_overload(text: str) -> list[dict[str, Any]]:
    """The rows of overload.py's table, by column name: the header's names are read
    through the spans of its ``----`` line, so a column added there (the median of
    repeats, the hit ratio) does not shift the others."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["rows", "conc"])
    except StopIteration:
        return []
    if start + 1 >= len(lines):
        return []
    spans = [m.span() for m in re.finditer(r"-+", lines[start + 1])]
    header = lines[start].ljust(spans[-1][1]) if spans else ""
    names = [" ".join(header[a:b].split()) for a, b in spans]
    # The cache-off columns repeat the cache-on names: tell them apart by position.
    off_at = next((i for i, name in enumerate(names) if name.startswith("off ")), len(names))
    keys = {
        "rows": "rows",
        "conc": "concurrency",
        "on rows/s": "on_rows_per_s",
        "off rows/s": "off_rows_per_s",
        "on/off": "on_off",
        "med on/off": "median_on_off",
        "cpu on/off": "cpu_on_off",
        "hit %": "hit_percent",
    }
    parsed = []
    for line in lines[start + 2 :]:
        cells = line.split()
        if len(cells) != len(names) or not cells[0].isdigit():
            break
        row: dict[str, Any] = {}
        for i, (name, cell) in enumerate(zip(names, cells, strict=True)):
            side = "on" if i < off_at else "off"
            if name in keys:
                row[keys[name]] = _number(cell)
            elif name == "p99 ms":
                row[f"{side}_p99_ms"] = _number(cell)
            elif name == "us/row":
                row[f"{side}_us_per_row"] = _number(cell)
        parsed.append(row)
    return parsed


def _number(cell: str) -> float | None:
    try:
        return float(cell.replace(",", ""))
    except ValueError:
        return None
