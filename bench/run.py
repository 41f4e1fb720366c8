#!/usr/bin/env python3
"""Benchmark the Spotify pipeline on Sluice and its peers; see bench/README.md.

    run.py [--scales 1,10,100] [--reps 3] [--systems duckdb,polars,...] [--seed 2023]
           [--memory-limit 2GiB]

x1000 (20M album rows, about 4 GB of CSV) is issue 17's memory target:
    bench/run --scales 1000 --reps 1 --systems duckdb,sluice-embedded --memory-limit 2GiB

For each scale: generate the CSVs once (cached in bench/data/x<N>/), then for each system one
warm-up and N timed runs, each in fresh processes. Records the median wall time, the peak
RSS (summed over all the system's processes) and the output row count, which must be the same
for every system. Prints a table and writes bench/results/<date>.md and .png.
Sluice binaries come from $SLUICE_BIN_DIR, else `cargo build --release --bins` builds them
(in ${CARGO_TARGET_DIR:-target}/release) when a Sluice system is benchmarked.
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import psutil
import pyarrow.parquet as pq

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
DATA = os.path.join(BENCH, "data")
WORK = os.path.join(BENCH, ".work")
RESULTS = os.path.join(BENCH, "results")
JOB = os.path.join(ROOT, "examples", "spotify", "job.yaml")
PYTHON = sys.executable

sys.path.insert(0, os.path.join(BENCH, "peers"))
from common import OUTPUT_COLUMNS  # noqa: E402

from benchdata import ensure_data  # noqa: E402  (bench/ is the script's folder)

# `--memory-limit` of the Sluice processes (sluice run, the executors), or None for their default.
MEMORY_LIMIT = None

SYSTEMS = ["duckdb", "polars", "pyspark", "datafusion", "sluice-embedded", "sluice-cluster"]
LABELS = {"duckdb": "DuckDB", "polars": "Polars", "pyspark": "PySpark local[2]",
          "datafusion": "DataFusion-python", "sluice-embedded": "Sluice embedded",
          "sluice-cluster": "Sluice cluster (1+2)"}
SAMPLE_EVERY = 0.05  # seconds between RSS samples


class BenchError(Exception):
    """A run failed or its output is wrong; the message says which system and scale."""


def tail(path, lines=25):
    """The last lines of a log file, indented, for error messages."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read().rstrip().splitlines()[-lines:]
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in text) or "    (empty)"


# ---------------------------------------------------------------------------- measuring


class RssSampler(threading.Thread):
    """Samples the summed RSS of some processes and all their descendants; keeps the peak."""

    def __init__(self, pids=()):
        super().__init__(daemon=True)
        self.pids = list(pids)
        self.peak = 0
        self._stop_event = threading.Event()

    def add(self, pid):
        self.pids.append(pid)

    def sample(self):
        seen, total = set(), 0
        for pid in list(self.pids):
            try:
                root = psutil.Process(pid)
                procs = [root] + root.children(recursive=True)
            except psutil.Error:
                continue
            for p in procs:
                if p.pid in seen:
                    continue
                seen.add(p.pid)
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        self.peak = max(self.peak, total)

    def run(self):
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(SAMPLE_EVERY)

    def finish(self):
        self._stop_event.set()
        self.join()
        return self.peak


def kill_group(pid):
    """SIGKILL the process group this runner started with `pid` as its leader."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def measure(what, cmd, log, timeout, env=None, also_sample=()):
    """Run `cmd` to completion; return (wall seconds, peak RSS bytes).

    The peak is the larger of the sampled sum over `cmd`'s process tree plus `also_sample`
    (with their trees) and the exact peak of `cmd`'s largest process (wait4's ru_maxrss).
    """
    sampler = RssSampler(also_sample)
    timed_out = []
    with open(log + ".out", "wb") as out, open(log + ".err", "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True)
        sampler.add(proc.pid)
        sampler.start()
        timer = threading.Timer(timeout, lambda: (timed_out.append(1), kill_group(proc.pid)))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            kill_group(proc.pid)
            proc.wait()
            raise
        finally:
            wall = time.perf_counter() - start
            timer.cancel()
            peak = sampler.finish()
    proc.returncode = os.waitstatus_to_exitcode(status)
    kill_group(proc.pid)  # leftovers of the run (e.g. a JVM), if any
    if timed_out:
        raise BenchError(f"{what}: timed out after {timeout} s; stderr ends:\n{tail(log + '.err')}")
    if proc.returncode != 0:
        raise BenchError(f"{what}: exit status {proc.returncode} from {' '.join(cmd)}\n"
                         f"  stderr ({log}.err) ends:\n{tail(log + '.err')}")
    return wall, max(peak, usage.ru_maxrss * 1024)


def parquet_files(folder):
    """Parquet files under `folder`, skipping hidden and _ files (Spark's .crc, _SUCCESS)."""
    found = []
    for dirpath, dirnames, files in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "_"))]
        found += [os.path.join(dirpath, f) for f in files
                  if f.endswith(".parquet") and not f.startswith((".", "_"))]
    return sorted(found)


def check_output(what, folder):
    """Row count of the Parquet in `folder`; fails unless it has the 20 columns, all snappy."""
    files = parquet_files(folder)
    if not files:
        raise BenchError(f"{what}: no Parquet files in {folder}")
    rows = 0
    for path in files:
        meta = pq.ParquetFile(path).metadata
        names = pq.read_schema(path).names
        if names != OUTPUT_COLUMNS:
            raise BenchError(f"{what}: {path} does not have the expected columns\n"
                             f"  it has:   {names}\n  expected: {OUTPUT_COLUMNS}")
        codecs = {meta.row_group(i).column(j).compression
                  for i in range(meta.num_row_groups) for j in range(meta.num_columns)}
        if codecs - {"SNAPPY"}:
            raise BenchError(f"{what}: {path} is compressed with {sorted(codecs)}, not snappy")
        rows += meta.num_rows
    return rows


# ---------------------------------------------------------------------------- systems


def free_ports(n):
    """`n` distinct free loopback ports."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_job(data, folder):
    """A copy of the Spotify job reading its staging CSVs from `data`; returns its path."""
    with open(JOB, encoding="utf-8") as f:
        text = f.read()
    text, n = re.subn(r"(?m)^staging:.*$", "staging: " + json.dumps(os.path.abspath(data)), text)
    if n != 1:
        raise BenchError(f"{JOB} has no top-level 'staging:' line to point at the data")
    path = os.path.join(folder, "job.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def newest_run(what, lake):
    """The newest run-* folder of spotify.tracks in a Sluice lake."""
    table = os.path.join(lake, "spotify", "tracks")
    runs = sorted(d for d in os.listdir(table) if d.startswith("run-")) if os.path.isdir(table) else []
    if not runs:
        raise BenchError(f"{what}: no run-* folder under {table}")
    return os.path.join(table, runs[-1])


class Daemon:
    """A cluster process started by this runner, logging (stdout and stderr) to a file."""

    def __init__(self, name, cmd, log, env):
        self.name, self.log = name, log
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

    def wait_for(self, needle, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with status {self.proc.returncode} while "
                                 f"starting\n  its log ({self.log}) ends:\n{tail(self.log)}")
            with open(self.log, encoding="utf-8", errors="replace") as f:
                if needle in f.read():
                    return
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not log '{needle}' within {timeout} s\n"
                         f"  its log ({self.log}) ends:\n{tail(self.log)}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        kill_group(self.proc.pid)
        self.proc.wait()


def job_start_ms(log):
    """Sluice's job start (submit to Ballista -> first task running) from its report, in ms."""
    with open(log + ".out", encoding="utf-8", errors="replace") as f:
        m = re.search(r"first task (\d+) ms after submit", f.read())
    return int(m.group(1)) if m else None


def run_system(system, what, data, run_dir, bins, timeout):
    """One run of `system` on `data` in the fresh folder `run_dir`; returns (wall, rss, rows,
    job start ms or None)."""
    out = os.path.join(run_dir, "out")
    log = os.path.join(run_dir, "run")
    if not system.startswith("sluice"):
        script = os.path.join(BENCH, "peers", system + "_job.py")
        wall, rss = measure(what, [PYTHON, script, data, out], log, timeout)
        return wall, rss, check_output(what, out), None

    job = write_job(data, run_dir)
    if system == "sluice-embedded":
        cmd = [os.path.join(bins, "sluice"), "run", job, "--lake", out, "--preview", "0"]
        if MEMORY_LIMIT:
            cmd += ["--memory-limit", MEMORY_LIMIT]
        wall, rss = measure(what, cmd, log, timeout)
        return wall, rss, check_output(what, newest_run(what, out)), job_start_ms(log)

    env = dict(os.environ, SLUICE_LOG="info")
    port, *executor_ports = free_ports(5)
    daemons = []
    try:
        scheduler = Daemon(f"{what}: sluice-scheduler",
                           [os.path.join(bins, "sluice-scheduler"), "--bind", f"127.0.0.1:{port}",
                            "--lake", out, "--data-dir", os.path.join(run_dir, "scheduler-data")],
                           os.path.join(run_dir, "scheduler.log"), env)
        daemons.append(scheduler)
        scheduler.wait_for("sluice-scheduler listening")
        for i in range(2):
            os.makedirs(os.path.join(run_dir, f"executor{i + 1}"))
            daemons.append(Daemon(
                f"{what}: sluice-executor {i + 1}",
                [os.path.join(bins, "sluice-executor"), "--scheduler-port", str(port),
                 "--port", str(executor_ports[2 * i]), "--grpc-port", str(executor_ports[2 * i + 1]),
                 "--vcores", "1", "--work-dir", os.path.join(run_dir, f"executor{i + 1}")]
                + (["--memory-limit", MEMORY_LIMIT] if MEMORY_LIMIT else []),
                os.path.join(run_dir, f"executor{i + 1}.log"), env))
        for d in daemons[1:]:
            d.wait_for("Starting poll work loop")
        cmd = [os.path.join(bins, "sluice"), "submit", job, "--scheduler", f"http://127.0.0.1:{port}"]
        try:
            wall, rss = measure(what, cmd, log, timeout, also_sample=[d.proc.pid for d in daemons])
        except BenchError as e:
            logs = "".join(f"\n  {d.name} log ({d.log}) ends:\n{tail(d.log, 10)}" for d in daemons)
            raise BenchError(f"{e}{logs}") from None
    finally:
        for d in daemons:
            d.stop()
    return wall, rss, check_output(what, newest_run(what, out)), job_start_ms(log)


# ---------------------------------------------------------------------------- data


def data_info(folder):
    """Rows (lines minus header) and MB of each CSV in `folder`."""
    info = {}
    for name in ("albums", "artists", "tracks"):
        path = os.path.join(folder, name + ".csv")
        with open(path, "rb") as f:
            lines = sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b""))
        info[name] = (lines - 1, os.path.getsize(path) / 1e6)
    return info


# ---------------------------------------------------------------------------- reporting


def command_output(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def machine_info(bins, systems):
    """Hardware and software versions, as (name, value) pairs."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = [("CPU", f"{cpu}, {os.cpu_count()} cores"),
            ("RAM", f"{psutil.virtual_memory().total / 2**30:.1f} GiB"),
            ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
            ("Load average at the end (1, 5, 15 min)", " ".join(f"{x:.2f}" for x in os.getloadavg())),
            ("Python", platform.python_version())]
    for system, package in [("duckdb", "duckdb"), ("polars", "polars"), ("pyspark", "pyspark"),
                            ("datafusion", "datafusion")]:
        if system in systems:
            try:
                info.append((LABELS[system], importlib.metadata.version(package)))
            except importlib.metadata.PackageNotFoundError:
                info.append((LABELS[system], "not installed"))
    if "pyspark" in systems:
        info.append(("Java", command_output(["java", "-version"])))
    info.append(("pyarrow (reads outputs)", importlib.metadata.version("pyarrow")))
    if any(s.startswith("sluice") for s in systems):
        # Dirty means changed sources, not the results an earlier bench/run left behind.
        commit = command_output(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
        status = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", ".",
                                 ":(exclude)bench/results"], capture_output=True, text=True)
        if status.returncode != 0 or status.stdout.strip():
            commit += "-dirty"
        profile = ("release" if "release" in bins else "debug" if "debug" in bins else "?")
        info.append(("Sluice", f"{command_output([os.path.join(bins, 'sluice'), '--version'])}, "
                               f"commit {commit}, {profile} build ({bins})"))
    return info


def summarise(results, systems, scales):
    """Table rows: one per (scale, system) with medians and ratios vs DuckDB."""
    rows = []
    for scale in scales:
        base = results.get((scale, "duckdb"))
        for system in systems:
            r = results.get((scale, system))
            if r is None:
                continue
            if r.get("error"):
                rows.append([f"x{scale}", LABELS[system], "FAILED", "", "", "", "", "", ""])
                continue
            wall = statistics.median(r["walls"])
            rss = statistics.median(r["rss"]) / 2**20
            ratio_t = ratio_m = ""
            if base and not base.get("error"):
                ratio_t = f"{wall / statistics.median(base['walls']):.2f}"
                ratio_m = f"{rss / (statistics.median(base['rss']) / 2**20):.2f}"
            start = f"{statistics.median(r['starts']):.0f}" if r["starts"] else ""
            rows.append([f"x{scale}", LABELS[system], f"{wall:.2f}", ratio_t,
                         f"{min(r['walls']):.2f}-{max(r['walls']):.2f}", f"{rss:,.0f}", ratio_m,
                         f"{r['rows']:,}", start])
    return rows


HEADER = ["scale", "system", "time s (median)", "time ×DuckDB", "time range s",
          "peak RSS MiB (median)", "RSS ×DuckDB", "rows", "job start ms"]


def text_table(rows):
    widths = [max(len(str(x)) for x in col) for col in zip(HEADER, *rows)]
    fmt = lambda r: "  ".join(str(x).ljust(w) if i < 2 else str(x).rjust(w)  # noqa: E731
                              for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(HEADER), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def markdown_table(rows):
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(HEADER) - 2)) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def chart(results, systems, scales, path, note=""):
    """Bar charts of median time and peak RSS per system, one column per scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(scales), figsize=(4.5 * len(scales) + 1, 7), squeeze=False)
    for col, scale in enumerate(scales):
        done = [s for s in systems if (scale, s) in results and not results[(scale, s)].get("error")]
        names = [LABELS[s] for s in done]
        for row, (key, unit, div) in enumerate([("walls", "seconds (median)", 1),
                                                ("rss", "peak RSS MiB (median)", 2**20)]):
            ax = axes[row][col]
            values = [statistics.median(results[(scale, s)][key]) / div for s in done]
            bars = ax.bar(range(len(done)), values,
                          color=["#d62728" if s.startswith("sluice") else "#1f77b4" for s in done])
            ax.bar_label(bars, fmt="%.1f" if key == "walls" else "%.0f", fontsize=8)
            ax.set_xticks(range(len(done)), names, rotation=35, ha="right", fontsize=8)
            ax.set_ylabel(unit)
            if row == 0:
                ax.set_title(f"x{scale}")
    fig.suptitle("Spotify pipeline: CSV -> 2 joins -> snappy Parquet (lower is better)" + note)
    fig.tight_layout()
    fig.savefig(path + ".tmp", dpi=110, format="png")
    plt.close(fig)
    os.replace(path + ".tmp", path)


def write_results(rows, results, systems, scales, data, bins, reps, argv):
    os.makedirs(RESULTS, exist_ok=True)
    day = datetime.date.today().isoformat()
    md, png = os.path.join(RESULTS, day + ".md"), os.path.join(RESULTS, day + ".png")
    debug = any(s.startswith("sluice") for s in systems) and "release" not in bins
    chart(results, systems, scales, png, "\nSluice: NOT a release build" if debug else "")
    lines = [f"# Spotify pipeline benchmark, {day}", "",
             f"`bench/run {' '.join(argv)}`: {reps} timed run(s) per system and scale after one "
             "warm-up, each in fresh processes.", ""]
    if debug:
        lines += [f"**Sluice binaries from {bins}, not a release build: its numbers are not "
                  "representative.**", ""]
    lines += [markdown_table(rows), "",
              f"![chart]({day}.png)", "",
              "Time: wall clock of the whole process (start-up, reading the CSVs, both joins, "
              "writing snappy Parquet). Peak RSS: the highest sampled sum of the resident memory "
              f"of all the system's processes (every {SAMPLE_EVERY * 1000:.0f} ms), or the exact "
              "peak of its largest process if higher. ×DuckDB: the median divided by DuckDB's. "
              "Job start (Sluice): from the job's submission to Ballista to its first task "
              "running, as Sluice's run report gives it (median).", "",
              "Sluice cluster: a scheduler and two executors (`--vcores 1` each) started fresh "
              "for every run, untimed; the time is `sluice submit` until the run has committed, "
              "the RSS sums scheduler, executors and client.", "",
              f"Sluice's `--memory-limit`: {MEMORY_LIMIT or 'default (70% of the process memory)'} "
              "(sluice run, and each executor).", "",
              "## Data", "", "| scale | albums.csv | artists.csv | tracks.csv |", "|---|---:|---:|---:|"]
    for scale in scales:
        info = data_info(data[scale])
        lines.append(f"| x{scale} | " + " | ".join(f"{r:,} rows, {mb:,.1f} MB"
                                                   for r, mb in info.values()) + " |")
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in machine_info(bins, systems)]
    with open(md, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return md, png


# ---------------------------------------------------------------------------- main


def sluice_bins(needed):
    """$SLUICE_BIN_DIR, else the release build (built now if Sluice is benchmarked)."""
    if os.environ.get("SLUICE_BIN_DIR"):
        return os.path.abspath(os.environ["SLUICE_BIN_DIR"])
    target = os.environ.get("CARGO_TARGET_DIR") or "target"
    if needed:
        print("building Sluice: cargo build --release --bins ...", flush=True)
        if subprocess.run(["cargo", "build", "--release", "--quiet", "--bins"], cwd=ROOT).returncode:
            sys.exit("error: `cargo build --release --bins` failed (or set SLUICE_BIN_DIR)")
    return os.path.abspath(os.path.join(ROOT, target, "release"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", default="1,10,100", help="comma-separated scales (default 1,10,100)")
    ap.add_argument("--reps", type=int, default=3, help="timed runs per system and scale (default 3)")
    ap.add_argument("--systems", default=",".join(SYSTEMS),
                    help=f"comma-separated subset of {','.join(SYSTEMS)} (default all)")
    ap.add_argument("--seed", type=int, default=2023, help="generator seed (default 2023)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds allowed per run (default 3600)")
    ap.add_argument("--memory-limit", help="--memory-limit of sluice run and of each executor, "
                    "e.g. 2GiB (default: theirs, 70%% of the process's memory)")
    a = ap.parse_args()
    global MEMORY_LIMIT
    MEMORY_LIMIT = a.memory_limit
    try:
        scales = [int(s) for s in a.scales.split(",") if s.strip()]
    except ValueError:
        ap.error(f"--scales takes integers like 1,10,100, not {a.scales!r}")
    systems = [s.strip() for s in a.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems or not scales or a.reps < 1 or min(scales) < 1:
        ap.error(f"unknown systems {unknown}; choose from {','.join(SYSTEMS)}" if unknown
                 else "need at least one system, one positive scale and --reps >= 1")

    bins = sluice_bins(any(s.startswith("sluice") for s in systems))
    if any(s.startswith("sluice") for s in systems):
        missing = [b for b in ("sluice", "sluice-scheduler", "sluice-executor")
                   if not os.access(os.path.join(bins, b), os.X_OK)]
        if missing:
            sys.exit(f"error: {', '.join(missing)} not found in {bins}: build with "
                     "`cargo build --release --bins` or set SLUICE_BIN_DIR")

    results, data, errors = {}, {}, []
    for scale in scales:
        data[scale] = ensure_data(scale, a.seed)
        for system in systems:
            r = results[(scale, system)] = {"walls": [], "rss": [], "rows": None, "starts": []}
            for rep in range(a.reps + 1):
                label = "warm-up" if rep == 0 else f"run {rep}/{a.reps}"
                what = f"{LABELS[system]} at x{scale} ({label})"
                run_dir = os.path.join(WORK, f"x{scale}", system, "warmup" if rep == 0 else f"run{rep}")
                shutil.rmtree(run_dir, ignore_errors=True)
                os.makedirs(run_dir)
                try:
                    wall, rss, rows, start = run_system(system, what, data[scale], run_dir, bins,
                                                        a.timeout)
                    if r["rows"] is not None and rows != r["rows"]:
                        raise BenchError(f"{what}: wrote {rows:,} rows, the warm-up wrote {r['rows']:,}")
                except BenchError as e:
                    print(f"FAILED {e}", file=sys.stderr, flush=True)
                    errors.append(str(e).splitlines()[0])
                    r["error"] = True
                    break
                finally:
                    # Outputs can be large at x100: keep the logs, drop the Parquet.
                    for sub in ("out", "scheduler-data", "executor1", "executor2"):
                        shutil.rmtree(os.path.join(run_dir, sub), ignore_errors=True)
                r["rows"] = rows
                print(f"{what}: {wall:.2f} s, peak RSS {rss / 2**20:,.0f} MiB, {rows:,} rows", flush=True)
                if rep > 0:
                    r["walls"].append(wall)
                    r["rss"].append(rss)
                    if start is not None:
                        r["starts"].append(start)
        counts = {LABELS[s]: results[(scale, s)]["rows"] for s in systems
                  if not results[(scale, s)].get("error")}
        if len(set(counts.values())) > 1:
            errors.append(f"x{scale}: the systems wrote different row counts: "
                          + ", ".join(f"{k} {v:,}" for k, v in counts.items()))

    table = summarise(results, systems, scales)
    print("\n" + text_table(table))
    if errors:
        print("\nBENCHMARK FAILED (results not written; logs in bench/.work/):", file=sys.stderr)
        for e in errors:
            print("  - " + e, file=sys.stderr)
        sys.exit(1)
    md, png = write_results(table, results, systems, scales, data, bins, a.reps, sys.argv[1:])
    print(f"\nwrote {os.path.relpath(md)} and {os.path.relpath(png)}")


if __name__ == "__main__":
    main()
