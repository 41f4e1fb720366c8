#!/usr/bin/env python3
"""Interleaved A/B runs of `sluice run` under different environments, beside DuckDB.

Each variant is NAME or NAME:VAR=VALUE,VAR=VALUE (for example an allocator preloaded with
LD_PRELOAD, or a DataFusion option set from its variable); `duckdb` runs
`peers/duckdb_job.py` on the same data. `SLUICE_BIN=PATH` in a variant runs another `sluice`
binary (for example one built with another global allocator); in a cluster variant,
`SLUICE_BIN_DIR=DIR` runs the scheduler and executors of another build. A variant whose NAME starts
with `cluster` runs the job on a Sluice cluster instead (a scheduler and two executors, started fresh and untimed as
`bench/run` starts them, every process under the variant's environment; the time is `sluice
submit`'s, the RSS the sum of the cluster's processes). Every round runs every variant once,
the order rotating by one per round; wall time and peak RSS come from `/usr/bin/time` (a
cluster's from `bench/run`'s sampler). Outputs are not checked (`bench/run` does that): this
is for deciding whether a change pays.

    bench/ab.py --scale 1000 --rounds 3 duckdb base \\
        jemalloc:LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2

The job is the one `bench/run` writes for the scale (`.work/x{scale}/job`); the binary is
`$SLUICE_BIN_DIR/sluice` (default: target/release).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import run as bench_run

HERE = Path(__file__).resolve().parent


def parse_variant(text):
    name, _, settings = text.partition(":")
    env = {}
    for pair in filter(None, settings.split(",")):
        key, sep, value = pair.partition("=")
        if not sep:
            sys.exit(f"variant {text!r}: {pair!r} is not VAR=VALUE")
        env[key] = value
    return name, env


def run_cluster(name, env, data, run_dir, bins):
    """One `bench/run` cluster run of the job in `run_dir` with `env` set for every process;
    returns (wall seconds, peak RSS MiB)."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        run_dir.mkdir(parents=True)
        wall, rss, _, _ = bench_run.run_system("sluice-cluster", name, str(data), str(run_dir),
                                               str(bins), 3600)
    except bench_run.BenchError as e:
        sys.exit(f"{name} failed: {e}")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return wall, rss / 2**20


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("variants", nargs="+", help="duckdb, or NAME[:VAR=VALUE,...] for sluice run")
    a = ap.parse_args()
    data = HERE / "data" / f"x{a.scale}"
    if not (data / "albums.csv").exists():
        sys.exit(f"{data} has no data: run bench/run --scales {a.scale} --reps 1 first")
    job_dir = HERE / ".work" / f"x{a.scale}" / "ab-job"
    job_dir.mkdir(parents=True, exist_ok=True)
    bench_run.write_job(str(data), str(job_dir))
    sluice = Path(os.environ.get("SLUICE_BIN_DIR", HERE.parent / "target" / "release")) / "sluice"
    variants = [parse_variant(v) for v in a.variants]
    results = {name: [] for name, _ in variants}
    for r in range(a.rounds):
        shift = r % len(variants)
        for name, env in variants[shift:] + variants[:shift]:
            out = HERE / ".work" / f"x{a.scale}" / f"ab-out-{name}"
            shutil.rmtree(out, ignore_errors=True)
            if name.startswith("cluster"):
                bins = Path(env.get("SLUICE_BIN_DIR", sluice.parent))
                wall, rss = run_cluster(name, env, data, out, bins)
                results[name].append((wall, rss, float("nan"), float("nan")))
                print(f"round {r + 1} {name:12} wall {wall:7.2f} s  rss {rss:7.0f} MiB", flush=True)
                continue
            if name == "duckdb":
                out.mkdir(parents=True)
                cmd = [sys.executable, str(HERE / "peers" / "duckdb_job.py"), str(data), str(out)]
            else:
                binary = env.get("SLUICE_BIN", str(sluice))
                cmd = [binary, "run", str(job_dir / "job.yaml"), "--lake", str(out), "--preview", "0"]
            p = subprocess.run(["/usr/bin/time", "-f", "AB %e %M %U %S"] + cmd,
                               env=dict(os.environ, **env), capture_output=True, text=True)
            m = re.search(r"AB (\S+) (\S+) (\S+) (\S+)", p.stderr)
            if p.returncode or not m:
                sys.exit(f"{name} failed ({p.returncode}):\n{p.stderr[-2000:]}")
            wall, rss, user, sys_ = float(m[1]), int(m[2]) / 1024, float(m[3]), float(m[4])
            results[name].append((wall, rss, user, sys_))
            print(f"round {r + 1} {name:12} wall {wall:7.2f} s  rss {rss:7.0f} MiB  user {user:6.1f}  sys {sys_:5.1f}",
                  flush=True)
    duck = statistics.median(w for w, *_ in results["duckdb"]) if results.get("duckdb") else None
    print(f"\nx{a.scale}, {a.rounds} interleaved rounds: median (min-max)")
    for name, _ in variants:
        walls = [w for w, *_ in results[name]]
        rsss = [m for _, m, *_ in results[name]]
        ratio = f"  {statistics.median(walls) / duck:.2f}x DuckDB" if duck else ""
        print(f"{name:12} wall {statistics.median(walls):7.2f} s ({min(walls):.2f}-{max(walls):.2f})"
              f"  rss {statistics.median(rsss):6.0f} MiB ({min(rsss):.0f}-{max(rsss):.0f}){ratio}")


if __name__ == "__main__":
    main()
