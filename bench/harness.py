"""The benchmark runner and the helpers every `bench_*.py` module shares.

A benchmark module exposes `run(quick: bool) -> list[dict]`; each dict is a record
made with `figure` (a plain measurement with a unit) or `ratio` (what was divided
by what, measured in the same run, as the design asks). The runner discovers the
modules, runs them one by one (a failing module is reported and the others still
run), prints a table and writes `bench/results/latest.json`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import resource
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "Record",
    "best_of",
    "discover",
    "figure",
    "machine_info",
    "main",
    "met",
    "paired",
    "peak_rss_mib",
    "per_item",
    "ratio",
    "seeded",
    "stop",
    "wrk_load",
    "wrk_path",
]

Record = dict[str, Any]

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "latest.json"


# -- helpers for benchmark modules ----------------------------------------------------


def best_of(fn: Callable[[], object], *, repeat: int = 5, number: int = 1) -> float:
    """Seconds per call of `fn`: the best of `repeat` rounds of `number` calls.

    The minimum, not the mean: noise (other processes, GC, frequency scaling) only
    ever adds time, so the fastest round is the closest to the true cost.
    """
    if repeat < 1 or number < 1:
        raise ValueError("repeat and number must be >= 1")
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def paired(a: Callable[[str], object], b: Callable[[str], object], items: Sequence[str], *,
           rounds: int = 5, chunk: int = 20) -> tuple[float, float]:
    """Seconds per item of `a` and of `b`, timed in alternating chunks of the items.

    Each chunk is run by both, one right after the other (which goes first alternates),
    and keeps its best time over `rounds` passes; the per-item figure is the sum of
    those bests. Load that comes and goes on a shared machine then falls on both sides
    alike, where two separate passes can each catch a different load.
    """
    chunks = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    best_a = [float("inf")] * len(chunks)
    best_b = [float("inf")] * len(chunks)
    for r in range(rounds):
        for k, part in enumerate(chunks):
            for fn, best in ((a, best_a), (b, best_b)) if (r + k) % 2 else ((b, best_b),
                                                                             (a, best_a)):
                start = time.perf_counter()
                for item in part:
                    fn(item)
                best[k] = min(best[k], time.perf_counter() - start)
    return sum(best_a) / len(items), sum(best_b) / len(items)


def per_item(fn: Callable[[str], object], items: Sequence[str], *, rounds: int = 3) -> float:
    """Seconds per `fn(item)` over all items: the best of `rounds` passes."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, (time.perf_counter() - start) / len(items))
    return best


def figure(name: str, value: float, *, unit: str, size: str | int | None = None,
           target: str | None = None) -> Record:
    """A plain measurement, e.g. a throughput in "customers/s"."""
    return {"name": name, "value": value, "unit": unit, "size": size,
            "numerator": None, "denominator": None, "target": target}


def ratio(name: str, numerator: float, denominator: float, *, numerator_label: str,
          denominator_label: str, unit: str = "x", size: str | int | None = None,
          target: str | None = None) -> Record:
    """numerator / denominator, with both parts named and kept, e.g. cost at 100k
    customers over cost at 10k; `target` reads like "<= 1.3"."""
    if denominator <= 0:
        raise ValueError(f"{name}: the denominator must be positive")
    return {"name": name, "value": numerator / denominator, "unit": unit, "size": size,
            "numerator": {"label": numerator_label, "value": numerator},
            "denominator": {"label": denominator_label, "value": denominator},
            "target": target}


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 1024 / 1024


_TARGET = re.compile(r"^\s*(<=|>=|<|>|==)\s*([-+0-9.eE]+)\s*$")


def met(value: object, target: str | None) -> bool | None:
    """Whether `value` meets a target like "<= 1.3"; None when there is nothing to judge."""
    if target is None or not isinstance(value, int | float):
        return None
    m = _TARGET.match(target)
    if m is None:
        return None
    op, bound = m.group(1), float(m.group(2))
    return {"<=": value <= bound, ">=": value >= bound, "<": value < bound,
            ">": value > bound, "==": value == bound}[op]


def machine_info(*, now: datetime | None = None) -> dict[str, Any]:
    return {
        "date": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "sqlite": sqlite3.sqlite_version,
    }


# Bumped with the audit trail's schema version: cached trails of an older one are dropped.
_AUDIT_FORMAT = "audit schema 2"


def seeded(customers: int, *, seed: int) -> Path:
    """A data directory with `customers` seeded customers, made once and then reused.

    Cached under `bench/results/` (git-ignored), keyed by size and seed, and shared by
    every benchmark module; seeding 100k customers takes a few minutes the first time.
    """
    import shutil

    from pacte.runtime import Pacte

    path = RESULTS.parent / f"data-{customers}-seed{seed}"
    done = path / ".seeded"
    if done.exists():
        if _AUDIT_FORMAT not in done.read_text():
            # Seeded by a build with an older audit format, which this one refuses to
            # open: the graph is still good, the trail only records the seeding.
            for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
                (path / name).unlink(missing_ok=True)
            done.write_text(done.read_text().rstrip("\n") + f" ({_AUDIT_FORMAT})\n")
        return path
    if path.exists():
        shutil.rmtree(path)  # an interrupted seeding: start again
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with Pacte.init(path) as rt:
        rt.seed(customers, seed=seed)
    done.write_text(f"{customers} customers, seed {seed}, {time.perf_counter() - t0:.0f} s"
                    f" ({_AUDIT_FORMAT})\n")
    return path


# -- wrk: an HTTP load generator in C --------------------------------------------------
# Far cheaper per request than a Python one on a small machine, so more of the client's
# core is left to the servers. Debian ships it (`apt-get install wrk`, 4.1.0); benchmarks
# that use it fall back to their own generator when it is missing, and say so.

# Each request is sent as it is given (raw HTTP/1.1 bytes), in turn over every
# connection of the one thread; `done` prints the figures as one JSON line.
_WRK_SCRIPT = """
local requests = {%s}
local next_one = 0
request = function()
  next_one = next_one %% #requests + 1
  return requests[next_one]
end
done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, '
    .. '"errors": %%d, "non2xx": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a server a benchmark started: SIGTERM, then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _lua_string(raw: bytes) -> str:
    # Decimal escapes for anything but plain printable ASCII: a Lua long string would
    # turn the CRLFs of HTTP into LFs.
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03d}"
                         for b in raw) + '"'


def wrk_path() -> str | None:
    """The wrk binary, or None when it is not installed."""
    import shutil

    return shutil.which("wrk")


class WrkLoad:
    """What one wrk run measured: requests, seconds, latency percentiles, failures."""

    def __init__(self, figures: dict[str, int]) -> None:
        self.requests = figures["requests"]
        self.seconds = figures["duration_us"] / 1e6
        self.failures = figures["errors"] + figures["non2xx"]
        self._p = {0.5: figures["p50_us"] / 1e6, 0.99: figures["p99_us"] / 1e6}

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        """p50 or p99, in seconds."""
        return self._p[p]


def wrk_load(port: int, requests: Sequence[bytes], *, connections: int, seconds: float,
             warmup: float, cpu: int | None = None) -> WrkLoad:
    """Run wrk (1 thread, `connections` keep-alive connections) against 127.0.0.1:`port`,
    cycling through the raw `requests`: `warmup` seconds unmeasured, then `seconds`."""
    import subprocess
    import tempfile

    binary = wrk_path()
    if binary is None:
        raise RuntimeError("wrk is not installed")
    affinity = {cpu} if cpu is not None and (os.cpu_count() or 1) > 1 else None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % ",\n".join(_lua_string(r) for r in requests))
    try:
        figures: dict[str, int] = {}
        for duration in (warmup, seconds):
            if duration <= 0:
                continue
            done = subprocess.run(
                [binary, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
                 "--timeout", "10s", "-s", script.name, f"http://127.0.0.1:{port}/"],
                capture_output=True, text=True, check=True,
                preexec_fn=(lambda: os.sched_setaffinity(0, affinity)) if affinity else None)
            line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
            figures = json.loads(line)
        return WrkLoad(figures)
    finally:
        os.unlink(script.name)


# -- the runner ---------------------------------------------------------------------


def discover(directory: Path = BENCH_DIR) -> list[str]:
    """Module names `bench.bench_*`, in name order."""
    return [f"bench.{p.stem}" for p in sorted(directory.glob("bench_*.py"))]


def _run_module(module: str, *, quick: bool) -> list[Record]:
    mod = importlib.import_module(module)
    records = mod.run(quick)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise TypeError(f"{module}.run must return a list of dicts")
    short = module.rsplit(".", 1)[-1]
    return [{"module": short, **r} for r in records]


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return "" if value is None else str(value)


def _table(records: Sequence[Record]) -> str:
    head = ("name", "value", "unit", "size", "target", "met")
    rows = [head]
    for r in records:
        ok = met(r.get("value"), r.get("target"))
        rows.append((str(r["name"]), _fmt(r.get("value")), str(r.get("unit") or ""),
                     _fmt(r.get("size")), str(r.get("target") or ""),
                     "" if ok is None else ("yes" if ok else "no")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if i == 1 else c.ljust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, *, now: datetime | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the benchmarks in bench/bench_*.py and print ratios measured in "
                    "one run. Example: python -m bench --quick --only store")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", metavar="NAME",
                        help="run modules whose name contains NAME; if none does, run all "
                             "and keep the records whose name contains it")
    parser.add_argument("--out", type=Path, default=RESULTS, metavar="PATH",
                        help=f"where to write the JSON results (default: {RESULTS})")
    args = parser.parse_args(argv)

    modules = discover()
    name_filter: str | None = None
    if args.only:
        by_module = [m for m in modules if args.only in m.rsplit(".", 1)[-1]]
        if by_module:
            modules = by_module
        else:
            # Records cannot be asked for one by one, so every module runs and the
            # records are filtered afterwards.
            name_filter = args.only

    records: list[Record] = []
    failures: list[dict[str, str]] = []
    for module in modules:
        print(f"running {module}{' (quick)' if args.quick else ''} ...", file=sys.stderr,
              flush=True)
        start = time.perf_counter()
        try:
            got = [r for r in _run_module(module, quick=args.quick)
                   if name_filter is None or name_filter in str(r.get("name", ""))]
        except Exception as exc:  # a broken benchmark must not hide the others' results
            traceback.print_exc()
            print(f"FAILED {module}: {type(exc).__name__}: {exc}", file=sys.stderr)
            failures.append({"module": module, "error": f"{type(exc).__name__}: {exc}"})
            continue
        print(f"  {len(got)} records in {time.perf_counter() - start:.1f}s", file=sys.stderr)
        records.extend(got)

    if records:
        print(_table(records))
    result = {"machine": machine_info(now=now), "quick": args.quick, "records": records,
              "failures": failures}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} benchmark module(s) failed: "
              f"{', '.join(f['module'] for f in failures)}", file=sys.stderr)
        return 1
    return 0
