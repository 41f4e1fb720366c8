#!/usr/bin/env python3
"""Cost of incremental runs (job bookmarks) and of data-quality rules: issue 19's targets.

    bench/incremental.py [--scale 100] [--reps 5] [--cases albums,spotify,quality]
                         [--binary PATH] [--seed 2023]

Bookmark cases. The album rows of the x<scale> data are split into 101 CSV files
(bench/data/x<scale>-split101/, cached; each part's rows counted by pyarrow as the oracle).
Per repetition, in a fresh folder under bench/.work/incremental/: a staging folder holding
parts 0-99, a run of the job with `bookmark: enable` and `target.mode: append` that
processes them (untimed), part 100 dropped in, and the **incremental run** (timed). Against
it, the **one-file run**: the same job with `bookmark: disable` over a fresh staging folder
holding part 100 only and a fresh lake (timed). The two timed runs alternate which goes first.

* `albums`: a one-source job (albums -> snappy Parquet). Nothing but the bookmark's own cost
  (listing 101 files, loading the bookmark, linking the previous version's files, recording
  the new file) separates the two runs, so this is the strict case.
* `spotify`: the example's pipeline with albums as the tracked source and artists and tracks
  as `bookmark: false` lookups (read whole every run, as a daily run of it would).

Each incremental run must read exactly one album file with pyarrow's row count of part 100,
write as many rows as the one-file run, and leave a table version holding the first run's
rows plus those (pyarrow over the version's Parquet). Once per case, untimed, the incremental
run is traced with strace (when installed) to list the staging files it opened.

Quality case (`quality`): examples/spotify/job-quality.yaml over the x<scale> CSVs, with and
without its `quality:` block, alternating, each run into a fresh lake; every rule must pass
and both variants must write the same rows.

Each case starts with one untimed warm-up of each variant. Times are wall clock of the whole
`sluice run` process; the run's own `time` line is reported beside it. Prints a table and
writes bench/results/incremental-<date>.md. The binary: --binary, else $SLUICE_BIN_DIR/sluice,
else ${CARGO_TARGET_DIR:-target}/release/sluice (never built here).
"""
import argparse
import datetime
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
from dashboard import commit_of_checkout, ensure_data, machine  # noqa: E402

WORK = os.path.join(BENCH, ".work", "incremental")
RESULTS = os.path.join(BENCH, "results")
JOB = os.path.join(ROOT, "examples", "spotify", "job.yaml")
QUALITY_JOB = os.path.join(ROOT, "examples", "spotify", "job-quality.yaml")
PARTS = 101  # 100 processed by the first run, 1 new
CASES = ["albums", "spotify", "quality"]
TARGETS = {"albums": 1.2, "spotify": 1.2, "quality": 1.15}


class BenchError(Exception):
    """A run failed or did something else than the benchmark expects."""


# ---------------------------------------------------------------------------- data


def split_albums(data, scale, seed):
    """bench/data/x<scale>-split101/: albums.csv's rows in PARTS files of consecutive rows,
    each with the header; returns (folder, rows per part as pyarrow counts them)."""
    folder = os.path.join(os.path.dirname(data), f"x{scale}-split{PARTS}")
    stamp = os.path.join(folder, ".complete")
    want = f"seed={seed}\n"
    if os.path.exists(stamp):
        with open(stamp) as f:
            lines = f.read().splitlines()
        if lines and lines[0] + "\n" == want:
            return folder, json.loads(lines[1])
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(tmp)
    print(f"splitting x{scale} albums.csv into {PARTS} files ...", flush=True)
    with open(os.path.join(data, "albums.csv"), "rb") as f:
        header = f.readline()
        rows = f.readlines()
    per = -(-len(rows) // PARTS)
    counts = []
    for i in range(PARTS):
        path = os.path.join(tmp, f"part-{i:03}.csv")
        with open(path, "wb") as out:
            out.write(header)
            out.writelines(rows[i * per:(i + 1) * per])
        # The oracle: pyarrow's CSV reader, not a line count (a quoted newline would differ).
        n = pacsv.read_csv(path).num_rows
        if n != len(rows[i * per:(i + 1) * per]):
            raise BenchError(f"{path}: pyarrow reads {n} rows from "
                             f"{len(rows[i * per:(i + 1) * per])} lines")
        counts.append(n)
    with open(os.path.join(tmp, ".complete"), "w") as f:
        f.write(want + json.dumps(counts) + "\n")
    os.rename(tmp, folder)
    return folder, counts


def link(src, dst):
    """Hard link (the staging files are only read), falling back to a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# ---------------------------------------------------------------------------- jobs


def sub1(pattern, repl, text, what):
    text, n = re.subn(pattern, repl, text, flags=re.M)
    if n != 1:
        raise BenchError(f"{what}: expected one match of {pattern!r}, found {n}")
    return text


def bookmark_job(case, staging, bookmark):
    """The job text of a bookmark case over `staging`, with `bookmark:` set."""
    staging = json.dumps(os.path.abspath(staging))
    if case == "albums":
        return f"""name: albums_incremental
staging: {staging}
bookmark: {bookmark}
sources:
  albums:
    path: albums/*.csv
    format: csv
    header: true
target:
  input: albums
  compression: snappy
  mode: append
  table: {{ database: bench, name: albums }}
"""
    with open(JOB, encoding="utf-8") as f:
        text = f.read()
    text = sub1(r"^staging:.*$", f"staging: {staging}\nbookmark: {bookmark}", text, JOB)
    text = sub1(r"^(    path:) albums\.csv", r"\1 albums/*.csv", text, JOB)
    for lookup in ("artists", "tracks"):
        text = sub1(rf"^(    path: {lookup}\.csv.*)$", r"\1\n    bookmark: false", text, JOB)
    return sub1(r"^target:$", "target:\n  mode: append", text, JOB)


def quality_jobs(data):
    """job-quality.yaml over `data`, with its quality block and without it."""
    with open(QUALITY_JOB, encoding="utf-8") as f:
        text = f.read()
    text = sub1(r"^staging:.*$", "staging: " + json.dumps(os.path.abspath(data)), text,
                QUALITY_JOB)
    without = sub1(r"^quality:\n(?:[ #].*\n|\n)*", "", text, QUALITY_JOB)
    if "Rules" in without:
        raise BenchError(f"{QUALITY_JOB}: the quality block is not the file's last block")
    return text, without


# ---------------------------------------------------------------------------- running


def sluice_binary(arg):
    if arg:
        path = os.path.abspath(arg)
    elif os.environ.get("SLUICE_BIN_DIR"):
        path = os.path.join(os.path.abspath(os.environ["SLUICE_BIN_DIR"]), "sluice")
    else:
        target = os.environ.get("CARGO_TARGET_DIR") or "target"
        path = os.path.abspath(os.path.join(ROOT, target, "release", "sluice"))
    if not os.access(path, os.X_OK):
        sys.exit(f"error: {path} is not an executable: build it with `cargo build --release "
                 "--bin sluice`, or pass --binary")
    return path


REPORT_SOURCE = re.compile(r"^  (?:read )?\s*(\w+)\s+([\d,]+) rows\s+(\d+) files?\s")


def parse_report(out):
    """What `sluice run` printed: run id, per source (files, rows), rows written, run time,
    rule outcomes."""
    r = {"sources": {}, "rules": []}
    for line in out.splitlines():
        if m := re.match(r"^Job '.*' succeeded: run (\S+)", line):
            r["run_id"] = m.group(1)
        elif line.startswith("        total"):
            continue
        elif m := REPORT_SOURCE.match(line):
            r["sources"][m.group(1)] = (int(m.group(3)), int(m.group(2).replace(",", "")))
        elif m := re.match(r"^  wrote\s+([\d,]+) rows in (\d+) file", line):
            r["rows"] = int(m.group(1).replace(",", ""))
        elif m := re.match(r"^  time\s+([\d.]+) s", line):
            r["time"] = float(m.group(1))
        elif line.startswith("  rule "):
            r["rules"].append(line[len("  rule "):].strip())
    if "run_id" not in r or "rows" not in r:
        raise BenchError("unexpected `sluice run` output:\n" + out)
    return r


def run(sluice, job_path, lake, log, trace=None):
    """`sluice run` into `lake`; returns (wall seconds, parsed report)."""
    cmd = [sluice, "run", job_path, "--lake", lake, "--preview", "0"]
    if trace:
        cmd = ["strace", "-f", "-qq", "-e", "trace=openat,open", "-o", trace] + cmd
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}(exit {done.returncode}, "
                f"{wall:.3f} s)\n\n")
    if done.returncode:
        raise BenchError(f"`sluice run {job_path}` failed (exit {done.returncode}); see {log}:\n"
                         + (done.stdout + done.stderr)[-2000:])
    return wall, parse_report(done.stdout)


def version_rows(lake, database, table, run_id):
    """pyarrow: rows in the Parquet files of the table's version `run-<run_id>`."""
    folder = os.path.join(lake, database, table, f"run-{run_id}")
    files = glob.glob(os.path.join(folder, "**", "*.parquet"), recursive=True)
    if not files:
        raise BenchError(f"no Parquet file under {folder}")
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def opened_staging_files(trace, staging):
    """Staging files the traced process opened (strace's openat lines), by name."""
    names = set()
    with open(trace, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.search(r'open(?:at)?\((?:AT_FDCWD|\d+), "([^"]+)"', line)
            if m and m.group(1).startswith(staging + "/") and "ENOENT" not in line:
                names.add(os.path.relpath(m.group(1), staging))
    return sorted(names)


class BookmarkCase:
    """One repetition's folders and runs of a bookmark case."""

    def __init__(self, case, sluice, parts, counts, lookups):
        self.case, self.sluice, self.parts, self.counts = case, sluice, parts, counts
        self.lookups = lookups
        self.table = ("bench", "albums") if case == "albums" else ("spotify", "tracks")

    def staging(self, folder, part_numbers):
        os.makedirs(os.path.join(folder, "albums"))
        for i in part_numbers:
            name = f"part-{i:03}.csv"
            link(os.path.join(self.parts, name), os.path.join(folder, "albums", name))
        if self.case == "spotify":
            for name in ("artists.csv", "tracks.csv"):
                link(os.path.join(self.lookups, name), os.path.join(folder, name))

    def check_read(self, what, report, files):
        got = report["sources"].get("albums")
        want = (files, sum(self.counts[i] for i in range(PARTS - files, PARTS))
                if files == 1 else sum(self.counts[:files]))
        if got != want:
            raise BenchError(f"{self.case} {what}: read albums (files, rows) {got}, "
                             f"expected {want}")
        for lookup in ("artists", "tracks") if self.case == "spotify" else ():
            if report["sources"].get(lookup, (0,))[0] != 1:
                raise BenchError(f"{self.case} {what}: {lookup} read "
                                 f"{report['sources'].get(lookup)}, expected its one file whole")

    def incremental(self, folder, trace=None):
        """Processes parts 0-99 (untimed), adds part 100, times the bookmarked run."""
        staging, lake, log = (os.path.join(folder, n) for n in ("staging", "lake", "log.txt"))
        self.staging(staging, range(PARTS - 1))
        job = os.path.join(folder, "job.yaml")
        write(job, bookmark_job(self.case, staging, "enable"))
        _, first = run(self.sluice, job, lake, log)
        self.check_read("first run", first, PARTS - 1)
        name = f"part-{PARTS - 1:03}.csv"
        link(os.path.join(self.parts, name), os.path.join(staging, "albums", name))
        wall, report = run(self.sluice, job, lake, log, trace)
        self.check_read("incremental run", report, 1)
        total = version_rows(lake, *self.table, report["run_id"])
        if total != first["rows"] + report["rows"]:
            raise BenchError(f"{self.case}: after the append the table holds {total:,} rows, "
                             f"not {first['rows']:,} + {report['rows']:,}")
        return wall, report

    def one_file(self, folder, existing=False):
        """Times the job with bookmarks off over part 100 alone: into a fresh lake, or with
        `existing` into a lake where the same run has already created the table (untimed),
        so that the timed run is an append, as the incremental one is."""
        staging, lake, log = (os.path.join(folder, n) for n in ("staging", "lake", "log.txt"))
        self.staging(staging, [PARTS - 1])
        job = os.path.join(folder, "job.yaml")
        write(job, bookmark_job(self.case, staging, "disable"))
        if existing:
            run(self.sluice, job, lake, log)
        wall, report = run(self.sluice, job, lake, log)
        self.check_read("one-file run", report, 1)
        return wall, report


def fresh(folder):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    return folder


# The timed variants of a bookmark case, in the order of the first repetition.
BOOKMARK_VARIANTS = {
    "inc": "incremental (bookmarked, 100 files processed + 1 new)",
    "fresh": "one file alone, fresh lake",
    "existing": "one file alone, table already in the lake",
}


def bookmark_case(case, sluice, parts, counts, data, reps):
    c = BookmarkCase(case, sluice, parts, counts, data)
    base = os.path.join(WORK, case)
    res = {v: {"walls": [], "times": []} for v in BOOKMARK_VARIANTS}
    seen = {}
    names = list(BOOKMARK_VARIANTS)
    for rep in range(reps + 1):
        label = "warm-up" if rep == 0 else f"rep {rep}/{reps}"
        # Rotate the order so that no variant always follows the same one.
        order = names[rep % 3:] + names[:rep % 3]
        for which in order:
            folder = fresh(os.path.join(base, f"{which}-{rep}"))
            if which == "inc":
                wall, r = c.incremental(folder)
            else:
                wall, r = c.one_file(folder, existing=which == "existing")
            seen[which] = r
            if rep > 0:
                res[which]["walls"].append(wall)
                res[which]["times"].append(r["time"])
            print(f"  {case} {label}: {BOOKMARK_VARIANTS[which]}: {wall:.3f} s "
                  f"(run's time {r['time']:.2f} s), {r['rows']:,} rows written", flush=True)
            # Keep the log, drop the data.
            for sub in ("staging", "lake"):
                shutil.rmtree(os.path.join(folder, sub), ignore_errors=True)
        written = {v: r["rows"] for v, r in seen.items()}
        if len(set(written.values())) != 1:
            raise BenchError(f"{case}: the variants wrote different row counts: {written}")
    opened = None
    if shutil.which("strace"):
        folder = fresh(os.path.join(base, "traced"))
        trace = os.path.join(folder, "strace.txt")
        c.incremental(folder, trace=trace)
        opened = opened_staging_files(trace, os.path.join(folder, "staging"))
        for sub in ("staging", "lake"):
            shutil.rmtree(os.path.join(folder, sub), ignore_errors=True)
    return {"variants": res, "report": seen["inc"], "opened": opened}


def quality_case(sluice, data, reps):
    base = os.path.join(WORK, "quality")
    fresh(base)
    checked, plain = quality_jobs(data)
    jobs = {"with": os.path.join(base, "job-quality.yaml"),
            "without": os.path.join(base, "job-no-quality.yaml")}
    write(jobs["with"], checked)
    write(jobs["without"], plain)
    a, b = {"walls": [], "times": []}, {"walls": [], "times": []}
    rules, rows = None, {}
    log = os.path.join(base, "log.txt")
    for rep in range(reps + 1):
        label = "warm-up" if rep == 0 else f"rep {rep}/{reps}"
        order = ["with", "without"] if rep % 2 == 0 else ["without", "with"]
        for which in order:
            lake = os.path.join(base, "lake")
            shutil.rmtree(lake, ignore_errors=True)
            wall, r = run(sluice, jobs[which], lake, log)
            shutil.rmtree(lake, ignore_errors=True)
            if which == "with":
                if not r["rules"] or any(not x.startswith("PASSED") for x in r["rules"]):
                    raise BenchError(f"quality: not every rule passed: {r['rules']}")
                rules = r["rules"]
            elif r["rules"]:
                raise BenchError(f"quality: the run without rules printed rules: {r['rules']}")
            rows.setdefault(which, set()).add(r["rows"])
            if rep > 0:
                dest = a if which == "with" else b
                dest["walls"].append(wall)
                dest["times"].append(r["time"])
            print(f"  quality {label}: {which} rules {wall:.3f} s (run's time {r['time']:.2f} s), "
                  f"{r['rows']:,} rows", flush=True)
    if len(rows["with"] | rows["without"]) != 1:
        raise BenchError(f"quality: row counts differ: {rows}")
    return {"with": a, "without": b, "rules": rules, "rows": rows["with"].pop()}


# ---------------------------------------------------------------------------- reporting


def summary_row(label, a_name, a, b_name, b, target):
    """One table row: A's and B's medians, ranges and the ratio of the medians to `target`."""
    ma, mb = statistics.median(a["walls"]), statistics.median(b["walls"])
    ta, tb = statistics.median(a["times"]), statistics.median(b["times"])
    ratio = ma / mb
    met = "met" if ratio <= target else "MISSED"
    return [label, a_name, b_name, f"{ma:.3f}", f"{mb:.3f}",
            f"{min(a['walls']):.3f}-{max(a['walls']):.3f}",
            f"{min(b['walls']):.3f}-{max(b['walls']):.3f}",
            f"{ta:.2f} / {tb:.2f}", f"{ratio:.2f}", f"≤ {target:.2f}: {met}"]


HEADER = ["case", "A", "B", "A s (median)", "B s (median)", "A range s", "B range s",
          "run's time s A / B", "A ÷ B", "target"]


def text_table(rows):
    widths = [max(len(str(x)) for x in col) for col in zip(HEADER, *rows)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(r, widths))
                     for r in [HEADER, ["-" * w for w in widths]] + rows)


def markdown_table(rows):
    rule = "|---|---|---|" + "---:|" * (len(HEADER) - 4) + "---|"
    lines = ["| " + " | ".join(HEADER) + " |", rule]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=int, default=100, help="data scale (default 100)")
    ap.add_argument("--reps", type=int, default=5, help="timed runs of each variant (default 5)")
    ap.add_argument("--cases", default=",".join(CASES),
                    help=f"comma-separated subset of {','.join(CASES)} (default all)")
    ap.add_argument("--binary", help="the sluice binary (default: the release build)")
    ap.add_argument("--seed", type=int, default=2023, help="generator seed (default 2023)")
    args = ap.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if not cases or any(c not in CASES for c in cases) or args.reps < 1 or args.scale < 1:
        ap.error(f"--cases is a subset of {','.join(CASES)}; --reps and --scale are >= 1")
    sluice = sluice_binary(args.binary)
    data = ensure_data(args.scale, args.seed)
    os.makedirs(WORK, exist_ok=True)

    rows, notes, results = [], [], {}
    parts = counts = None
    for case in cases:
        print(f"{case} at x{args.scale}, {args.reps} reps ...", flush=True)
        if case == "quality":
            res = results[case] = quality_case(sluice, data, args.reps)
            rows.append(summary_row(f"quality: x{args.scale} Spotify job, {res['rows']:,} rows out",
                                    f"{len(res['rules'])} rules", res["with"], "no rules",
                                    res["without"], TARGETS[case]))
            continue
        if parts is None:
            parts, counts = split_albums(data, args.scale, args.seed)
        res = results[case] = bookmark_case(case, sluice, parts, counts, data, args.reps)
        what = ("albums only" if case == "albums"
                else "Spotify job (artists, tracks read whole)")
        v = res["variants"]
        for other in ("fresh", "existing"):
            rows.append(summary_row(f"bookmark: {what}, x{args.scale}", "incremental", v["inc"],
                                    BOOKMARK_VARIANTS[other], v[other], TARGETS[case]))
        r = res["report"]
        read = ", ".join(f"{name} {files} file{'s' * (files != 1)} {n:,} rows"
                         for name, (files, n) in r["sources"].items())
        opened = ("strace not installed" if res["opened"] is None else
                  f"staging files it opened (strace): {', '.join(res['opened']) or 'none'}")
        notes.append(f"- `{case}`: the incremental run listed the {PARTS} album files and read "
                     f"{read} (its report; part 100 holds {counts[-1]:,} rows by pyarrow), wrote "
                     f"{r['rows']:,} rows; {opened}.")

    profile = ("release" if "/release/" in sluice else "debug" if "debug" in sluice
               else "unknown")
    table = text_table(rows)
    print("\n" + table)
    if notes:
        print("\n" + "\n".join(notes))
    day = datetime.date.today().isoformat()
    lines = [f"# Incremental runs and quality rules, {day}", "",
             f"`bench/incremental.py {' '.join(sys.argv[1:])}`: x{args.scale} data, "
             f"{args.reps} timed runs of each variant after one warm-up each, the variants "
             f"taking turns at running first; `sluice run` ({profile} build) wall time of the "
             "whole process, median; the run's time is the `time` line of its report.", ""]
    if profile != "release":
        lines += [f"**{sluice} is not a release build: these numbers are not representative.**", ""]
    lines += [markdown_table(rows), ""] + notes
    if "quality" in results:
        rules = results["quality"]["rules"]
        lines += ["", "Rules (all passed): " + "; ".join(f"`{x}`" for x in rules)]
    lines += ["", f"Machine: {machine()}.",
              f"Sluice commit {commit_of_checkout()}, binary {sluice}."]
    os.makedirs(RESULTS, exist_ok=True)
    out = os.path.join(RESULTS, f"incremental-{day}.md")
    write(out, "\n".join(lines) + "\n")
    print(f"\nwritten to {os.path.relpath(out, ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        sys.exit(f"error: {e}")
