#!/usr/bin/env python3
"""Benchmark the Spotify pipeline on Sluice and its peers, fairly; see bench/README.md.

    run.py [--scales 1,10,100,1000] [--reps 3] [--systems duckdb,polars,...] [--seed 2023]
           [--memory-limit 2GiB] [--name NAME]

For each scale: generate the CSVs once (cached in bench/data/x<N>/), write DuckDB's output
once as the reference (untimed), then run the systems in interleaved rounds: one warm-up
round, then --reps timed rounds, each round running every system once in fresh processes
(the order rotates by one system per round). Every run's output is checked against the
reference row for row (bench/compare.py, outside the timed part); any difference fails the
benchmark. Records min / median / max wall time and peak RSS (summed over all the system's
processes); prints a table and the noise (DuckDB against itself) and writes
bench/results/<NAME>.md, .json and .png (NAME defaults to the date).
Sluice binaries come from $SLUICE_BIN_DIR, else `cargo build --release --bins` builds them
(in ${CARGO_TARGET_DIR:-target}/release) when a Sluice system is benchmarked.
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import random
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
# Sail's own virtualenv: its Spark Connect client (pyspark-client) and the full pyspark of
# the PySpark peer install the same `pyspark` package, so they cannot share .venv.
SAIL_VENV = os.path.join(BENCH, ".venv-sail")
SAIL_REQUIREMENTS = os.path.join(BENCH, "requirements-sail.txt")

sys.path.insert(0, os.path.join(BENCH, "peers"))
from common import ALBUMS, ARTISTS, OUTPUT_COLUMNS, TRACKS  # noqa: E402

from benchdata import ensure_data  # noqa: E402  (bench/ is the script's folder)
from compare import DIFFERENT, parquet_files  # noqa: E402

# `--memory-limit` of the Sluice processes (sluice run, the executors), or None for their default.
MEMORY_LIMIT = None

SYSTEMS = ["duckdb", "duckdb-again", "polars", "pyspark", "datafusion", "sail",
           "sluice-embedded", "sluice-cluster"]
LABELS = {"duckdb": "DuckDB", "duckdb-again": "DuckDB again (noise)", "polars": "Polars",
          "pyspark": "PySpark local[2]", "datafusion": "DataFusion-python", "sail": "Sail",
          "sluice-embedded": "Sluice embedded", "sluice-cluster": "Sluice cluster (1+2)"}
# The peer script each non-Sluice system runs; duckdb-again is DuckDB once more, the noise.
SCRIPTS = {"duckdb": "duckdb_job.py", "duckdb-again": "duckdb_job.py", "polars": "polars_job.py",
           "pyspark": "pyspark_job.py", "datafusion": "datafusion_job.py", "sail": "sail_job.py"}
# Systems the default --systems leaves out from this scale on, and why.
OPTIONAL_FROM = {
    "pyspark": (1000, "its JVM runs take minutes each"),
    "datafusion": (1000, "without CSV statistics it builds its hash tables on the 20M-row "
                         "albums side"),
}
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


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def tree_pids(pid):
    """`pid` and its descendants, from the kernel's per-thread child lists
    (/proc/PID/task/TID/children): one small read per thread of the tree, where psutil's
    `children()` reads the stat file of every process on the machine. On a 2-core machine
    that scan, every 50 ms over a cluster's four process trees, took 5 CPU-seconds of a 33 s
    run (perf), a load the systems measured had to share."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            threads = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
            except OSError:
                pass
    return pids


def rss_bytes(pid):
    """The resident set of `pid` (/proc/PID/statm), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


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
        seen = set()
        for pid in list(self.pids):
            seen.update(tree_pids(pid))
        self.peak = max(self.peak, sum(rss_bytes(p) for p in seen))

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


def check_rows(what, reference, folder, log):
    """Fails unless the Parquet in `folder` has DuckDB's columns, types and rows (`EXCEPT ALL`
    both ways with the Parquet in `reference`), by bench/compare.py in a fresh process."""
    cmd = [PYTHON, os.path.join(BENCH, "compare.py"), reference, folder,
           "--temp", os.path.join(WORK, "compare-spill")]
    with open(log, "wb") as out:
        status = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode
    if status:
        with open(log, encoding="utf-8", errors="replace") as f:
            lines = f.read().rstrip().splitlines()
        lines = lines or ["(no report)"]
        shown = "".join("\n    " + line for line in lines[1:16])
        more = f"\n    ... ({len(lines) - 16} more lines in {log})" if len(lines) > 16 else ""
        verdict = ("its output differs from DuckDB's" if status == DIFFERENT
                   else f"comparing its output with DuckDB's failed (exit status {status})")
        raise BenchError(f"{what}: {verdict}: {lines[0]}{shown}{more}")


# ---------------------------------------------------------------------------- systems


def free_ports(n):
    """`n` distinct free ports from 20000-32767, below Linux's ephemeral range (32768-60999):
    a port from `bind(0)` is an ephemeral one, which an outgoing connection's source port can
    take before the server binds it (tests/tests/e2e/cluster.rs picks ports the same way)."""
    ports = []
    start = random.randrange(20000, 32768)
    for i in range(32768 - 20000):
        port = 20000 + (start - 20000 + i) % (32768 - 20000)
        if all(port_is_free(host, port) for host in ("127.0.0.1", "0.0.0.0")):
            ports.append(port)
            if len(ports) == n:
                return ports
    raise RuntimeError(f"fewer than {n} free ports in 20000-32767")


def port_is_free(host, port):
    """Whether `host`:`port` can be bound now."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# The job's SQL type for each type of bench/peers/common.py.
SQL_TYPES = {"string": "string", "int64": "bigint", "double": "double", "bool": "boolean"}


def declare_columns(text):
    """The Spotify job `text` with every source's column types declared, as every peer is
    given them (bench/peers/common.py): Sluice then samples no rows to infer them."""
    # The job's own partial declaration (tracks.explicit) gives way to the full one.
    text, n = re.subn(r"(?m)^    columns:\n(      .*\n)+", "", text)
    for name, columns in (("albums", ALBUMS), ("artists", ARTISTS), ("tracks", TRACKS)):
        declared = ", ".join(f"{c}: {SQL_TYPES[t]}" for c, t in columns)
        text, found = re.subn(rf"(?m)^(    path: {name}\.csv.*\n)", rf"\1    columns: {{ {declared} }}\n", text)
        if found != 1:
            raise BenchError(f"{JOB} has no '    path: {name}.csv' line to declare its columns after")
    return text


def write_job(data, folder):
    """A copy of the Spotify job reading its staging CSVs from `data`, every column's type
    declared; returns its path."""
    with open(JOB, encoding="utf-8") as f:
        text = f.read()
    text, n = re.subn(r"(?m)^staging:.*$", "staging: " + json.dumps(os.path.abspath(data)), text)
    if n != 1:
        raise BenchError(f"{JOB} has no top-level 'staging:' line to point at the data")
    text = declare_columns(text)
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
    """One run of `system` on `data` in the fresh folder `run_dir`; returns (wall, rss, the
    folder its Parquet output is in, job start ms or None)."""
    out = os.path.join(run_dir, "out")
    log = os.path.join(run_dir, "run")
    if not system.startswith("sluice"):
        script = os.path.join(BENCH, "peers", SCRIPTS[system])
        python = os.path.join(SAIL_VENV, "bin", "python") if system == "sail" else PYTHON
        wall, rss = measure(what, [python, script, data, out], log, timeout)
        return wall, rss, out, None

    job = write_job(data, run_dir)
    if system == "sluice-embedded":
        cmd = [os.path.join(bins, "sluice"), "run", job, "--lake", out, "--preview", "0"]
        if MEMORY_LIMIT:
            cmd += ["--memory-limit", MEMORY_LIMIT]
        wall, rss = measure(what, cmd, log, timeout)
        return wall, rss, newest_run(what, out), job_start_ms(log)

    env = dict(os.environ, SLUICE_LOG="info")
    # Every listener on a free port (the health ports too: their defaults are fixed ports, so
    # two executors would collide).
    port, http_port, *executor_ports = free_ports(8)
    # Job sources may read only under the config's staging roots: the generated data.
    config = os.path.join(run_dir, "scheduler.yaml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f"staging_roots: [{json.dumps(os.path.abspath(data))}]\n")
    daemons = []
    try:
        scheduler = Daemon(f"{what}: sluice-scheduler",
                           [os.path.join(bins, "sluice-scheduler"), "--config", config,
                            "--bind", f"127.0.0.1:{port}", "--http-bind", f"127.0.0.1:{http_port}",
                            "--lake", out, "--data-dir", os.path.join(run_dir, "scheduler-data")],
                           os.path.join(run_dir, "scheduler.log"), env)
        daemons.append(scheduler)
        scheduler.wait_for("sluice-scheduler listening")
        for i in range(2):
            os.makedirs(os.path.join(run_dir, f"executor{i + 1}"))
            daemons.append(Daemon(
                f"{what}: sluice-executor {i + 1}",
                [os.path.join(bins, "sluice-executor"), "--scheduler-port", str(port),
                 "--port", str(executor_ports[3 * i]), "--grpc-port", str(executor_ports[3 * i + 1]),
                 "--http-bind", f"127.0.0.1:{executor_ports[3 * i + 2]}",
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
    return wall, rss, newest_run(what, out), job_start_ms(log)


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
    if "sail" in systems:
        versions = command_output([
            os.path.join(SAIL_VENV, "bin", "python"), "-c",
            "import importlib.metadata as m; "
            "print(f\"pysail {m.version('pysail')}, pyspark-client {m.version('pyspark-client')}\")"])
        info.append(("Sail", f"{versions} (in {os.path.relpath(SAIL_VENV, ROOT)})"))
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


def settings(systems):
    """What each system is given beyond the pipeline, as (system label, text) pairs."""
    out = []
    if "duckdb" in systems or "duckdb-again" in systems:
        out.append(("DuckDB", "defaults (all cores, memory limit 80% of RAM): DuckDB tunes "
                              "itself; column types given"))
    if "polars" in systems:
        out.append(("Polars", "defaults (a thread per core), lazy scan_csv and sink_parquet; "
                              "column types given"))
    if "pyspark" in systems:
        out.append(("PySpark local[2]", "driver memory "
                    f"{os.environ.get('BENCH_SPARK_DRIVER_MEMORY', '4g')}, UI off; column types given"))
    if "datafusion" in systems:
        from datafusion_job import SESSION_OPTIONS
        opts = ", ".join(f"`{k.removeprefix('datafusion.')}={v}`" for k, v in SESSION_OPTIONS.items())
        out.append(("DataFusion-python", f"Sluice's session options: {opts}; column types given"))
    if "sail" in systems:
        out.append(("Sail", "defaults; its Spark Connect server runs in the job's process, "
                            "the same DataFrame code as PySpark; column types given"))
    if any(s.startswith("sluice") for s in systems):
        out.append(("Sluice", "`examples/spotify/job.yaml` with every column's type declared "
                              "(as every peer is given them: nothing is sampled); "
                              f"--memory-limit {MEMORY_LIMIT or 'default (70% of the process memory)'}"))
    return out


def stats(values, div=1.0):
    """(min, median, max) of `values` divided by `div`."""
    return min(values) / div, statistics.median(values) / div, max(values) / div


def ratio(results, scale, system, key):
    """The median of `key` of `system` divided by DuckDB's at `scale`, or None."""
    r, base = results.get((scale, system)), results.get((scale, "duckdb"))
    if not r or not base or r.get("error") or base.get("error") or not r[key] or not base[key]:
        return None
    return statistics.median(r[key]) / statistics.median(base[key])


def summarise(results, systems, scales):
    """Table rows: one per (scale, system) with min / median / max and ratios vs DuckDB."""
    rows = []
    for scale in scales:
        for system in systems:
            r = results.get((scale, system))
            if r is None:
                continue
            if r.get("error") or not r["walls"]:
                rows.append([f"x{scale}", LABELS[system], "FAILED", "", "", "", "", ""])
                continue
            t, m = stats(r["walls"]), stats(r["rss"], 2**20)
            rt, rm = ratio(results, scale, system, "walls"), ratio(results, scale, system, "rss")
            start = f"{statistics.median(r['starts']):.0f}" if r["starts"] else ""
            rows.append([f"x{scale}", LABELS[system], " / ".join(f"{x:.2f}" for x in t),
                         f"{rt:.2f}" if rt is not None else "",
                         " / ".join(f"{x:,.0f}" for x in m), f"{rm:.2f}" if rm is not None else "",
                         f"{r['rows']:,}", start])
    return rows


HEADER = ["scale", "system", "time s (min / median / max)", "time ×DuckDB",
          "peak RSS MiB (min / median / max)", "RSS ×DuckDB", "rows", "job start ms"]


def noise_rows(results, systems, scales):
    """Per scale: DuckDB-again ÷ DuckDB (the machine's noise) beside each Sluice ÷ DuckDB."""
    compared = [s for s in systems if s == "duckdb-again" or s.startswith("sluice")]
    rows = []
    for scale in scales:
        cells = []
        for system in compared:
            rt, rm = ratio(results, scale, system, "walls"), ratio(results, scale, system, "rss")
            cells += [f"{rt:.2f}" if rt is not None else "", f"{rm:.2f}" if rm is not None else ""]
        if any(cells):
            rows.append([f"x{scale}"] + cells)
    header = ["scale"] + [f"{LABELS[s].replace(' (noise)', '')} ÷ DuckDB {k}"
                          for s in compared for k in ("time", "RSS")]
    return header, rows


def text_table(header, rows):
    """A plain-text table: the first two columns left-aligned, the others right-aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def fmt(row):
        return "  ".join(str(x).ljust(w) if i < 2 else str(x).rjust(w)
                         for i, (x, w) in enumerate(zip(row, widths)))
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def markdown_table(header, rows, text_columns=2):
    """A Markdown table: the first `text_columns` columns left-aligned, numbers right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * text_columns + ["---:"] * (len(header) - text_columns)) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


COLORS = {"duckdb": "#1f77b4", "duckdb-again": "#9ecae1", "polars": "#2ca02c",
          "pyspark": "#ff7f0e", "datafusion": "#9467bd", "sail": "#8c564b",
          "sluice-embedded": "#d62728", "sluice-cluster": "#e377c2"}


def chart(results, systems, scales, path, note=""):
    """Scaling curves: median time and peak RSS against scale (log-log), one line per
    system, the bars spanning the fastest and slowest (smallest and largest) timed run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, (key, unit, div) in zip(axes, [("walls", "wall time s", 1),
                                           ("rss", "peak RSS MiB", 2**20)]):
        guide = None  # time: a slope-1 line through the largest scale's point of a Sluice system
        for system in systems:
            points = [(scale, stats(results[(scale, system)][key], div)) for scale in scales
                      if (scale, system) in results and not results[(scale, system)].get("error")
                      and results[(scale, system)][key]]
            if not points:
                continue
            if key == "walls" and system.startswith("sluice") and guide is None and len(points) > 1:
                guide = (points[0][0], points[-1][0], points[-1][1][1])
            xs = [p[0] for p in points]
            lo, mid, hi = ([p[1][i] for p in points] for i in range(3))
            ax.errorbar(xs, mid, yerr=[[m - a for a, m in zip(lo, mid)],
                                       [b - m for b, m in zip(hi, mid)]],
                        marker="o", capsize=3, label=LABELS[system], color=COLORS.get(system),
                        linestyle="--" if system == "duckdb-again" else "-",
                        linewidth=2.2 if system.startswith("sluice") else 1.4)
        if guide:
            first, last, value = guide
            ax.plot([first, last], [value * first / last, value], color="grey", linestyle=":",
                    linewidth=1, label="linear in the input (slope 1)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(scales, [f"x{s}" for s in scales])
        ax.minorticks_off()
        ax.set_xlabel("scale (x1 = 20,000 album rows, 4 MB of CSV)")
        ax.set_ylabel(unit + " (median; bars: min to max)")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Spotify pipeline: CSV -> 2 joins -> snappy Parquet, against scale "
                 "(lower is better)" + note)
    fig.tight_layout()
    fig.savefig(path + ".tmp", dpi=110, format="png")
    plt.close(fig)
    os.replace(path + ".tmp", path)


def write_results(name, results, systems, scales, data, bins, reps, argv, skipped):
    """bench/results/NAME.md (tables, settings, data, machine), .json (every run) and .png."""
    os.makedirs(RESULTS, exist_ok=True)
    md, js, png = (os.path.join(RESULTS, name + ext) for ext in (".md", ".json", ".png"))
    debug = any(s.startswith("sluice") for s in systems) and "release" not in bins
    chart(results, systems, scales, png, "\nSluice: NOT a release build" if debug else "")
    machine = machine_info(bins, systems)
    noise_header, noise = noise_rows(results, systems, scales)
    lines = [f"# Spotify pipeline benchmark, {datetime.date.today().isoformat()}", "",
             f"`bench/run {' '.join(argv)}`: per scale, one warm-up round and {reps} timed "
             "round(s); each round runs every system once, in fresh processes, the order "
             "rotating by one system per round. Every run's output was checked against "
             "DuckDB's, row for row.", ""]
    if debug:
        lines += [f"**Sluice binaries from {bins}, not a release build: its numbers are not "
                  "representative.**", ""]
    lines += [markdown_table(HEADER, summarise(results, systems, scales)), ""]
    lines += [f"- {line}" for line in skipped] + ([""] if skipped else [])
    if noise:
        lines += ["Noise: DuckDB run again as a system of its own in the same rounds; its ratio "
                  "to DuckDB is what this machine's noise alone gives, beside Sluice's.", "",
                  markdown_table(noise_header, noise, 1), ""]
    lines += [f"![chart]({name}.png)", "",
              "Time: wall clock of the whole process (start-up, reading the CSVs, both joins, "
              "writing snappy Parquet). Peak RSS: the highest sampled sum of the resident memory "
              f"of all the system's processes (every {SAMPLE_EVERY * 1000:.0f} ms), or the exact "
              "peak of its largest process if higher. ×DuckDB: the median divided by DuckDB's. "
              "Job start (Sluice): from the job's submission to Ballista to its first task "
              "running, as Sluice's run report gives it (median).", "",
              "Checked: every run's Parquet has the 20 columns, snappy-compressed, and the same "
              "column types and rows as DuckDB's output (`EXCEPT ALL` both ways, by DuckDB, "
              "outside the timed part).", "",
              "Sluice cluster: a scheduler and two executors (`--vcores 1` each) started fresh "
              "for every run, untimed; the time is `sluice submit` until the run has committed, "
              "the RSS sums scheduler, executors and client.", "",
              "## Settings", ""] + [f"- {k}: {v}" for k, v in settings(systems)]
    lines += ["", "## Data", "", "| scale | albums.csv | artists.csv | tracks.csv |",
              "|---|---:|---:|---:|"]
    for scale in scales:
        info = data_info(data[scale])
        lines.append(f"| x{scale} | " + " | ".join(f"{r:,} rows, {mb:,.1f} MB"
                                                   for r, mb in info.values()) + " |")
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in machine]
    with open(md, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    raw = {"argv": argv, "date": datetime.date.today().isoformat(), "reps": reps,
           "machine": dict(machine), "runs": [
               {"scale": scale, "system": system, **{k: v for k, v in r.items()}}
               for (scale, system), r in results.items()]}
    with open(js, "w", encoding="utf-8") as f:
        json.dump(raw, f, indent=1)
    return md, js, png


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


def ensure_sail_venv():
    """bench/.venv-sail with bench/requirements-sail.txt installed (again when that changes)."""
    python = os.path.join(SAIL_VENV, "bin", "python")
    stamp = os.path.join(SAIL_VENV, "requirements-sail.txt")
    with open(SAIL_REQUIREMENTS, encoding="utf-8") as f:
        wanted = f.read()
    if os.path.exists(stamp):
        with open(stamp, encoding="utf-8") as f:
            if f.read() == wanted and os.access(python, os.X_OK):
                return
    print(f"installing {os.path.relpath(SAIL_REQUIREMENTS, ROOT)} into "
          f"{os.path.relpath(SAIL_VENV, ROOT)} ...", flush=True)
    if not os.access(python, os.X_OK):
        subprocess.run([shutil.which("python3") or "python3", "-m", "venv", SAIL_VENV], check=True)
        with open(os.path.join(SAIL_VENV, ".gitignore"), "w") as f:
            f.write("*\n")  # the folder ignores itself
    subprocess.run([python, "-m", "pip", "install", "--quiet", "-r", SAIL_REQUIREMENTS], check=True)
    shutil.copyfile(SAIL_REQUIREMENTS, stamp)


def systems_at(scale, systems, explicit, skipped):
    """The systems to run at `scale`: all of `systems` if named on the command line, else
    without those optional at this scale (each skip printed and added to `skipped`)."""
    if explicit:
        return list(systems)
    keep = []
    for system in systems:
        since, why = OPTIONAL_FROM.get(system, (None, ""))
        if since is not None and scale >= since:
            line = (f"x{scale}: {LABELS[system]} left out (optional from x{since} on: {why}); "
                    "name it in --systems to run it")
            print(line, flush=True)
            skipped.append(line)
        else:
            keep.append(system)
    return keep


def reference_run(scale, data, timeout):
    """The folder of DuckDB's output at `scale`, written once, untimed: the reference."""
    run_dir = os.path.join(WORK, f"x{scale}", "reference")
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    out = os.path.join(run_dir, "out")
    what = f"DuckDB reference output at x{scale}"
    measure(what, [PYTHON, os.path.join(BENCH, "peers", SCRIPTS["duckdb"]), data, out],
            os.path.join(run_dir, "run"), timeout)
    rows = check_output(what, out)
    print(f"{what}: {rows:,} rows (untimed)", flush=True)
    return out


def run_scale(scale, here, data, bins, reps, timeout, results, errors):
    """The reference run and the interleaved rounds at `scale`; fills `results` and `errors`."""
    for system in here:
        results[(scale, system)] = {"walls": [], "rss": [], "rows": None, "starts": [],
                                    "warmup": None}
    try:
        reference = reference_run(scale, data, timeout)
    except BenchError as e:
        print(f"FAILED {e}", file=sys.stderr, flush=True)
        errors.append(str(e).splitlines()[0])
        for system in here:
            results[(scale, system)]["error"] = "no reference"
        return
    try:
        for rnd in range(reps + 1):
            label = "warm-up round" if rnd == 0 else f"round {rnd}/{reps}"
            k = rnd % len(here)
            for system in here[k:] + here[:k]:
                r = results[(scale, system)]
                if r.get("error"):
                    continue
                what = f"{LABELS[system]} at x{scale}, {label}"
                run_dir = os.path.join(WORK, f"x{scale}", system, f"round{rnd}")
                shutil.rmtree(run_dir, ignore_errors=True)
                os.makedirs(run_dir)
                try:
                    wall, rss, out, start = run_system(system, what, data, run_dir, bins, timeout)
                    rows = check_output(what, out)
                    check_rows(what, reference, out, os.path.join(run_dir, "compare.log"))
                except BenchError as e:
                    print(f"FAILED {e}", file=sys.stderr, flush=True)
                    errors.append(str(e).splitlines()[0])
                    r["error"] = str(e)
                    continue
                finally:
                    # Outputs are large at x1000: keep the logs, drop the Parquet.
                    for sub in ("out", "scheduler-data", "executor1", "executor2"):
                        shutil.rmtree(os.path.join(run_dir, sub), ignore_errors=True)
                r["rows"] = rows
                print(f"{what}: {wall:.2f} s, peak RSS {rss / 2**20:,.0f} MiB, {rows:,} rows, "
                      "same as DuckDB's", flush=True)
                if rnd == 0:
                    r["warmup"] = [wall, rss]
                else:
                    r["walls"].append(wall)
                    r["rss"].append(rss)
                    if start is not None:
                        r["starts"].append(start)
    finally:
        shutil.rmtree(os.path.dirname(reference), ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", default="1,10,100,1000",
                    help="comma-separated scales (default 1,10,100,1000)")
    ap.add_argument("--reps", type=int, default=3,
                    help="timed rounds per scale, after one warm-up round (default 3)")
    ap.add_argument("--systems", help=f"comma-separated subset of {','.join(SYSTEMS)} (default: "
                    "all, without " + " and ".join(LABELS[s] for s in OPTIONAL_FROM) +
                    " from x1000 on)")
    ap.add_argument("--seed", type=int, default=2023, help="generator seed (default 2023)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds allowed per run (default 3600)")
    ap.add_argument("--memory-limit", help="--memory-limit of sluice run and of each executor, "
                    "e.g. 2GiB (default: theirs, 70%% of the process's memory)")
    ap.add_argument("--name", help="results file name in bench/results, without extension "
                    "(default: today's date)")
    a = ap.parse_args()
    global MEMORY_LIMIT
    MEMORY_LIMIT = a.memory_limit
    try:
        scales = [int(s) for s in a.scales.split(",") if s.strip()]
    except ValueError:
        ap.error(f"--scales takes integers like 1,10,100, not {a.scales!r}")
    explicit = a.systems is not None
    systems = [s.strip() for s in (a.systems or ",".join(SYSTEMS)).split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems or not scales or a.reps < 1 or min(scales) < 1:
        ap.error(f"unknown systems {unknown}; choose from {','.join(SYSTEMS)}" if unknown
                 else "need at least one system, one positive scale and --reps >= 1")
    if a.name and (os.sep in a.name or a.name.startswith(".")):
        ap.error("--name is a file name in bench/results, not a path")
    systems = [s for s in SYSTEMS if s in systems]  # one order, whatever the command line's

    bins = sluice_bins(any(s.startswith("sluice") for s in systems))
    if any(s.startswith("sluice") for s in systems):
        missing = [b for b in ("sluice", "sluice-scheduler", "sluice-executor")
                   if not os.access(os.path.join(bins, b), os.X_OK)]
        if missing:
            sys.exit(f"error: {', '.join(missing)} not found in {bins}: build with "
                     "`cargo build --release --bins` or set SLUICE_BIN_DIR")
    skipped = []
    plan = {scale: systems_at(scale, systems, explicit, skipped) for scale in scales}
    if any("sail" in here for here in plan.values()):
        ensure_sail_venv()

    results, data, errors = {}, {}, []
    for scale in scales:
        data[scale] = ensure_data(scale, a.seed)
        run_scale(scale, plan[scale], data[scale], bins, a.reps, a.timeout, results, errors)
        if errors:
            break  # larger scales would only take longer to fail the same way

    ran = [s for s in scales if any((s, x) in results for x in systems)]
    print("\n" + text_table(HEADER, summarise(results, systems, ran)))
    noise_header, noise = noise_rows(results, systems, ran)
    if noise:
        print("\nNoise (DuckDB against itself) beside Sluice, medians ÷ DuckDB's:\n"
              + text_table(noise_header, noise))
    if errors:
        print("\nBENCHMARK FAILED (results not written; logs in bench/.work/):", file=sys.stderr)
        for e in errors:
            print("  - " + e, file=sys.stderr)
        sys.exit(1)
    md, js, png = write_results(a.name or datetime.date.today().isoformat(), results, systems,
                                scales, data, bins, a.reps, sys.argv[1:], skipped)
    print(f"\nwrote {os.path.relpath(md)}, {os.path.relpath(js)} and {os.path.relpath(png)}")


if __name__ == "__main__":
    main()
