#!/usr/bin/env python3
"""The Spotify dashboard over x100 data: first load and cached load of all its panels.

    bench/dashboard.py [--scale 100] [--rounds 5] [--connections 6] [--seed 2023]

Generates the CSVs with gen_spotify.py (cached in bench/data/x<N>/, shared with bench/run),
runs examples/spotify/job.yaml over them with the release `sluice` binary into a fresh lake
under bench/.work/dashboard/, starts `sluice serve` over that lake with
examples/spotify/dashboard.yaml, and loads the dashboard the way a browser does: every
panel's data request and the filter options at once, over `--connections` keep-alive HTTP
connections (a browser opens six per host). A load's time runs from the first request sent
to the last answer read.

* first load after a server start: `sluice serve` restarted before each round;
* first load after a commit: a run of the job commits a new version while the server runs
  (alternately the whole table and the table without singles), then the dashboard is
  loaded; its answers must be the new version's (the tracks KPI and the tracks per album
  type equal pyarrow's count over the new version's Parquet files), not cached ones;
* cached load: the same load again, every answer served from the result cache.

Prints a table (min / median / max over the rounds) and writes it with the machine's
description to bench/results/dashboard-<date>.md. The `sluice` binary comes from
$SLUICE_BIN_DIR, else ${CARGO_TARGET_DIR:-target}/release (built if missing).
"""
import argparse
import collections
import concurrent.futures
import datetime
import glob
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

import pyarrow.compute as pc
import pyarrow.dataset as ds
import requests

from benchdata import ensure_data  # noqa: E402  (bench/ is the script's folder)

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
DATA = os.path.join(BENCH, "data")
WORK = os.path.join(BENCH, ".work", "dashboard")
RESULTS = os.path.join(BENCH, "results")
JOB = os.path.join(ROOT, "examples", "spotify", "job.yaml")
DASHBOARD = os.path.join(ROOT, "examples", "spotify", "dashboard.yaml")
DASHBOARD_ID = "spotify"

# The second version a commit round writes: the same job without the singles.
NO_SINGLES = """  - filter:
      name: no_singles
      input: spotify
      predicate: "album_type <> 'single'"
"""


class BenchError(Exception):
    """Something the benchmark needs failed; the message says what."""


def write_jobs(data, folder):
    """Two copies of the Spotify job over `data`: the whole table, and the table without
    singles. Returns their paths."""
    with open(JOB, encoding="utf-8") as f:
        text = f.read()
    text, n = re.subn(r"(?m)^staging:.*$", "staging: " + json.dumps(os.path.abspath(data)), text)
    if n != 1:
        raise BenchError(f"{JOB} has no top-level 'staging:' line to point at the data")
    variant, n = re.subn(r"(?m)^target:\n  input: spotify$",
                         NO_SINGLES + "\ntarget:\n  input: no_singles", text)
    if n != 1:
        raise BenchError(f"{JOB}: no 'target:' with 'input: spotify' to filter")
    paths = []
    for name, body in (("job.yaml", text), ("job-no-singles.yaml", variant)):
        path = os.path.join(folder, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(body)
        paths.append(path)
    return paths


def sluice_bin():
    if os.environ.get("SLUICE_BIN_DIR"):
        path = os.path.join(os.path.abspath(os.environ["SLUICE_BIN_DIR"]), "sluice")
    else:
        target = os.environ.get("CARGO_TARGET_DIR") or "target"
        path = os.path.abspath(os.path.join(ROOT, target, "release", "sluice"))
        if not os.path.exists(path):
            print("building: cargo build --release --bin sluice ...", flush=True)
            if subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "sluice"],
                              cwd=ROOT).returncode:
                sys.exit("error: `cargo build --release --bin sluice` failed (or set SLUICE_BIN_DIR)")
    if not os.path.exists(path):
        sys.exit(f"error: {path} does not exist")
    return path


def run_job(sluice, job, lake, log):
    """Runs a job into the lake; returns its wall time in seconds."""
    start = time.perf_counter()
    with open(log, "ab") as f:
        done = subprocess.run([sluice, "run", job, "--lake", lake, "--preview", "0"],
                              stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        raise BenchError(f"`sluice run {job}` failed; see {log}")
    return time.perf_counter() - start


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`sluice serve` over the lake on a free loopback port."""

    def __init__(self, sluice, lake, log):
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = log
        with open(log, "ab") as f:
            self.proc = subprocess.Popen(
                [sluice, "serve", "--lake", lake, "--dashboards", DASHBOARD,
                 "--http-bind", self.url.removeprefix("http://")],
                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"sluice serve exited ({self.proc.returncode}); see {log}")
            try:
                if requests.get(self.url + "/api/dashboards", timeout=5).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise BenchError(f"sluice serve did not answer within 60 s; see {log}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Browser:
    """Parallel GETs over a fixed number of keep-alive connections, as a browser makes."""

    def __init__(self, connections):
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=connections)
        self.local = threading.local()

    def _get(self, url):
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        start = time.perf_counter()
        response = session.get(url, timeout=120)
        body = response.content
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise BenchError(f"GET {url}: {response.status_code} {body[:300]!r}")
        return url, elapsed, json.loads(body)

    def load(self, urls):
        """All `urls` at once; returns (seconds for all, {url: (seconds, JSON)})."""
        start = time.perf_counter()
        answers = list(self.pool.map(self._get, urls))
        return time.perf_counter() - start, {u: (t, j) for u, t, j in answers}


def dashboard_urls(base):
    """What the dashboard page fetches: every panel's data and every filter's options."""
    listing = requests.get(base + "/api/dashboards", timeout=30).json()
    dashboard = next((d for d in listing if d["id"] == DASHBOARD_ID), None)
    if dashboard is None:
        raise BenchError(f"sluice serve lists no dashboard '{DASHBOARD_ID}': {listing}")
    detail = requests.get(f"{base}/api/dashboards/{DASHBOARD_ID}", timeout=30).json()
    api = f"{base}/api/dashboards/{DASHBOARD_ID}"
    urls = [f"{api}/panels/{p['id']}/data" for p in dashboard["panels"]]
    for f in detail.get("filters", []):
        if f.get("options") is not None or f.get("type") in ("dropdown", "multi_select"):
            urls.append(f"{api}/filters/{f['id']}/options")
    return urls


def panel_answers(answers):
    """Panel data answers only (not filter options), by panel id."""
    out = {}
    for url, (_, body) in answers.items():
        m = re.search(r"/panels/([^/]+)/data$", url)
        if m:
            out[m.group(1)] = body
    return out


def current_version(lake):
    table = os.path.join(lake, "spotify", "tracks")
    runs = sorted(d for d in os.listdir(table) if d.startswith("run-"))
    if not runs:
        raise BenchError(f"no run-* folder under {table}")
    return os.path.join(table, runs[-1])


def expected_counts(version):
    """pyarrow over the version's Parquet files: rows, and rows per album type."""
    files = glob.glob(os.path.join(version, "**", "*.parquet"), recursive=True)
    table = ds.dataset(files, format="parquet").to_table(columns=["album_type"])
    counts = pc.value_counts(table.column("album_type")).to_pylist()
    return table.num_rows, {c["values"]: c["counts"] for c in counts}


def check_answers(answers, version, what):
    """The load's answers are the version's data (the oracle is pyarrow, not Sluice)."""
    rows, per_type = expected_counts(version)
    panels = panel_answers(answers)
    kpi = panels["tracks"]["rows"][0][0]
    if int(kpi) != rows:
        raise BenchError(f"{what}: the tracks KPI says {kpi}, the version has {rows} rows")
    got = {r[0]: int(r[1]) for r in panels["tracks_per_album_type"]["rows"]}
    if got != per_type:
        raise BenchError(f"{what}: tracks per album type {got}, the version has {per_type}")
    return rows


def cached_flags(answers):
    return collections.Counter(body.get("cached") for body in panel_answers(answers).values())


def stats(values):
    ms = [v * 1000 for v in values]
    return min(ms), statistics.median(ms), max(ms)


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.+)", f.read())
            cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s*(\d+)", f.read()).group(1))
            mem = f", {kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, AttributeError):
        pass
    load = ", load average %.2f %.2f %.2f" % os.getloadavg()
    return f"{cpu}, {os.cpu_count()} cores{mem}{load}"


def commit_of_checkout():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each kind of load")
    parser.add_argument("--connections", type=int, default=6,
                        help="parallel HTTP connections (a browser opens 6 per host)")
    parser.add_argument("--seed", type=int, default=2023)
    args = parser.parse_args()

    sluice = sluice_bin()
    data = ensure_data(args.scale, args.seed)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    lake = os.path.join(WORK, "lake")
    log = os.path.join(WORK, "log.txt")
    whole, no_singles = write_jobs(data, WORK)
    print(f"running the Spotify job at x{args.scale} ...", flush=True)
    job_s = run_job(sluice, whole, lake, log)
    print(f"  committed in {job_s:.2f} s", flush=True)

    browser = Browser(args.connections)
    first_after_start, first_after_commit, cached = [], [], []
    per_panel_first = collections.defaultdict(list)
    rows_seen = set()

    # First loads after a server start, each followed by cached loads.
    for r in range(args.rounds):
        server = Server(sluice, lake, log)
        try:
            urls = dashboard_urls(server.url)
            seconds, answers = browser.load(urls)
            flags = cached_flags(answers)
            if flags.get(True):
                raise BenchError(f"a first load after start was served from the cache: {flags}")
            rows_seen.add(check_answers(answers, current_version(lake), "first load"))
            first_after_start.append(seconds)
            for url, (t, _) in answers.items():
                per_panel_first[url.rsplit("/api/dashboards/" + DASHBOARD_ID + "/", 1)[1]].append(t)
            seconds, answers = browser.load(urls)
            flags = cached_flags(answers)
            if flags.get(False):
                raise BenchError(f"a repeated load was not all cached: {flags}")
            cached.append(seconds)
            print(f"  start round {r + 1}: first {first_after_start[-1] * 1000:.0f} ms, "
                  f"cached {seconds * 1000:.0f} ms", flush=True)
        finally:
            server.stop()

    # First loads after a commit while the server runs: the cache must not answer.
    server = Server(sluice, lake, log)
    commit_s = []
    try:
        urls = dashboard_urls(server.url)
        browser.load(urls)
        for r in range(args.rounds):
            _, answers = browser.load(urls)
            if cached_flags(answers).get(False):
                raise BenchError("a repeated load before the commit was not all cached")
            job = no_singles if r % 2 == 0 else whole
            commit_s.append(run_job(sluice, job, lake, log))
            seconds, answers = browser.load(urls)
            flags = cached_flags(answers)
            if flags.get(True):
                raise BenchError(f"the first load after a commit used the cache: {flags}")
            rows = check_answers(answers, current_version(lake), "first load after a commit")
            rows_seen.add(rows)
            first_after_commit.append(seconds)
            seconds, answers = browser.load(urls)
            if cached_flags(answers).get(False):
                raise BenchError("the load after the first one following a commit missed the cache")
            cached.append(seconds)
            print(f"  commit round {r + 1} ({os.path.basename(job)}, {rows:,} rows): "
                  f"first {first_after_commit[-1] * 1000:.0f} ms, cached {seconds * 1000:.0f} ms",
                  flush=True)
    finally:
        server.stop()

    profile = "debug" if "/debug/" in sluice else "release"
    lines = [
        f"Spotify dashboard at x{args.scale} ({max(rows_seen):,} rows in spotify.tracks; "
        f"{len(urls)} requests per load: {sum('/panels/' in u for u in urls)} panels and "
        f"{sum('/filters/' in u for u in urls)} filter options, over {args.connections} "
        f"connections), `sluice serve` ({profile} build), {args.rounds} rounds of each",
        "",
        "| load | rounds | min ms | median ms | max ms | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for label, values, target in (
        ("first load after `sluice serve` starts", first_after_start, 1500),
        ("first load after a commit (new data)", first_after_commit, 1500),
        ("cached load", cached, 150),
    ):
        lo, med, hi = stats(values)
        met = "met" if med < target else "missed"
        lines.append(f"| {label} | {len(values)} | {lo:.0f} | {med:.0f} | {hi:.0f} | "
                     f"< {target} ms: {met} (median) |")
    lines += ["", "First load after a start, per request (median ms):", ""]
    lines += ["| request | median ms |", "|---|---:|"]
    for name, values in sorted(per_panel_first.items(), key=lambda kv: -statistics.median(kv[1])):
        lines.append(f"| {name} | {statistics.median(values) * 1000:.0f} |")
    lines += ["", f"Job runs between commit rounds: {', '.join(f'{s:.2f}' for s in commit_s)} s.",
              f"Machine: {machine()}.", f"Sluice commit {commit_of_checkout()}, binary {sluice}."]
    text = "\n".join(lines)
    print()
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    out = os.path.join(RESULTS, f"dashboard-{datetime.date.today().isoformat()}.md")
    with open(out, "w") as f:
        f.write("# Dashboard benchmark (`bench/dashboard.py`)\n\n" + text + "\n")
    print(f"\nwritten to {os.path.relpath(out, ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        sys.exit(f"error: {e}")
