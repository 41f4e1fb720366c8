"""Flight SQL latency and throughput against a running Sluice scheduler (ADBC client).

    flight_sql_latency.py --uri grpc://127.0.0.1:50050 [--user U --password P] [--runs 50]
        [--clients 32 --seconds 20 [--client-processes]]
        [--large-table spotify.tracks_x100] [--executor-metrics URL,URL]

Measures, after a warm-up, p50/p99 wall time of
  * a point query (one track by id) and
  * a ~100k-row fetch (`spotify.tracks` five times over: 98,105 rows on the sample),
and the rows per second the 100k-row fetch streams. Needs `spotify.tracks` registered.

With `--clients N`: a throughput phase. N concurrent clients (threads, or processes with
`--client-processes`), each with its own connection (logged in when `--user` is given), fire
small queries over `spotify.tracks` for `--seconds`, alternating the point query and a small
aggregate (count and average popularity per album type); reports queries/s, errors and the
p50/p99 latency over all clients.

With `--large-table T`: a large aggregation over T (e.g. the Spotify job at x100), timed once
after a warm-up. With `--executor-metrics`, the executors' `/metrics` URLs, the tasks the
executors finished (`sluice_executor_tasks_finished_total`) are read before and after every
phase, which shows where each phase ran: small queries in the scheduler (no executor tasks),
the large aggregation on the executors.
"""

import argparse
import concurrent.futures
import multiprocessing
import os
import re
import statistics
import time
import urllib.request

import adbc_driver_flightsql.dbapi as flight_sql

FETCH_100K = (
    "SELECT t.* FROM spotify.tracks t "
    "CROSS JOIN (VALUES (1), (2), (3), (4), (5)) AS copies(n)"
)
SMALL_AGGREGATE = (
    "SELECT album_type, count(*) AS tracks, avg(track_popularity) AS popularity "
    "FROM spotify.tracks GROUP BY album_type ORDER BY album_type"
)


def large_aggregate(table):
    """A full scan and aggregation: tracks, artists and average popularity per album type."""
    return (
        "SELECT album_type, count(*) AS tracks, count(DISTINCT artist_id) AS artists, "
        f"avg(track_popularity) AS popularity, sum(followers) AS followers FROM {table} "
        "GROUP BY album_type ORDER BY album_type"
    )


def percentile(values, p):
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def timed(cur, sql, params=None):
    start = time.perf_counter()
    if params is None:
        cur.execute(sql)
    else:
        cur.execute(sql, parameters=params)
    table = cur.fetch_arrow_table()
    return time.perf_counter() - start, table.num_rows


def connect(args):
    db_kwargs = {}
    if args.user:
        db_kwargs = {"username": args.user, "password": args.password or ""}
    return flight_sql.connect(args.uri, db_kwargs=db_kwargs)


def executor_tasks(urls):
    """Tasks finished per executor, from their /metrics (None when no URLs are given)."""
    if not urls:
        return None
    counts = []
    for url in urls:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        match = re.search(r"^sluice_executor_tasks_finished_total(?:\{[^}]*\})? (\S+)$", text, re.M)
        counts.append(int(float(match.group(1))) if match else 0)
    return counts


def cpu_seconds(pids):
    """User + system CPU seconds of each process (Linux /proc), or None without pids."""
    if not pids:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    out = []
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out.append((int(fields[11]) + int(fields[12])) / tick)
    return out


def machine_cpu():
    """(busy, total) CPU seconds of the whole machine so far (Linux /proc/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


def tasks_delta(before, after):
    if before is None:
        return ""
    deltas = [b - a for a, b in zip(before, after)]
    return f"executor tasks +{sum(deltas)} ({' + '.join(str(d) for d in deltas)})"


def client_worker(args, queries, start_at, stop_at):
    """One client: its own connection; runs `queries` in turn from start_at until stop_at.

    Returns (latencies of the successful queries, error messages)."""
    latencies, errors = [], []
    try:
        conn = connect(args)
    except Exception as e:  # noqa: BLE001 - a failed login is a benchmark error, reported
        return latencies, [f"connect: {e}"]
    with conn:
        cur = conn.cursor()
        for sql in queries:  # warm-up, not counted
            try:
                timed(cur, sql)
            except Exception as e:  # noqa: BLE001
                errors.append(f"warm-up: {e}")
        if time.time() > start_at:
            errors.append("client ready only after the measured window opened")
        while time.time() < start_at:
            time.sleep(0.001)
        i = 0
        while time.time() < stop_at:
            sql = queries[i % len(queries)]
            i += 1
            try:
                seconds, _ = timed(cur, sql)
                latencies.append(seconds)
            except Exception as e:  # noqa: BLE001
                errors.append(str(e).splitlines()[0][:200])
                cur = conn.cursor()
    return latencies, errors


def throughput(args, queries, pids):
    """Runs the clients; returns (queries/s, errors, latencies, CPU seconds of each of `pids`
    within the measured window)."""
    if args.client_processes:
        # spawn, not fork: the parent's ADBC driver (a Go runtime) does not survive a fork.
        context = multiprocessing.get_context("spawn")
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=args.clients, mp_context=context)
    else:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.clients)
    # Time for every client to connect and warm up before the measured window opens.
    start_at = time.time() + max(5.0, args.clients * (0.5 if args.client_processes else 0.15))
    stop_at = start_at + args.seconds
    latencies, errors = [], []
    with pool:
        futures = [
            pool.submit(client_worker, args, queries, start_at, stop_at) for _ in range(args.clients)
        ]
        time.sleep(max(0.0, start_at - time.time()))
        cpu_before, machine_before = cpu_seconds(pids), machine_cpu()
        time.sleep(max(0.0, stop_at - time.time()))
        cpu_after, machine_after = cpu_seconds(pids), machine_cpu()
        for future in futures:
            lat, err = future.result()
            latencies.extend(lat)
            errors.extend(err)
    used = [b - a for a, b in zip(cpu_before, cpu_after)] if pids else None
    machine = tuple(b - a for a, b in zip(machine_before, machine_after))
    return len(latencies) / args.seconds, errors, latencies, used, machine


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", default="grpc://127.0.0.1:50050")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--clients", type=int, default=0, help="concurrent clients (0: no throughput phase)")
    parser.add_argument("--seconds", type=float, default=20, help="length of the throughput phase")
    parser.add_argument("--client-processes", action="store_true", help="clients are processes, not threads")
    parser.add_argument("--large-table", help="table for the large aggregation (e.g. spotify.tracks_x100)")
    parser.add_argument("--large-runs", type=int, default=3)
    parser.add_argument("--executor-metrics", default="", help="comma-separated executor /metrics URLs")
    parser.add_argument("--server-pids", default="", help="scheduler,executor,... pids: CPU used in the throughput phase")
    args = parser.parse_args()
    metrics_urls = [u for u in args.executor_metrics.split(",") if u]

    rows, results, tasks = {}, {}, {}
    with connect(args) as conn:
        cur = conn.cursor()
        cur.execute("SELECT track_id FROM spotify.tracks LIMIT 1")
        track_id = cur.fetch_arrow_table().column(0)[0].as_py()
        point = f"SELECT * FROM spotify.tracks WHERE track_id = '{track_id}'"
        phases = [
            ("point query", point, args.runs),
            ("small aggregate", SMALL_AGGREGATE, args.runs),
            ("~100k-row fetch", FETCH_100K, max(5, args.runs // 5)),
        ]
        if args.large_table:
            phases.append(("large aggregate", large_aggregate(args.large_table), args.large_runs))
        for name, sql, runs in phases:
            timed(cur, sql)  # warm-up: plans, caches the table's schema, wakes executors
            before = executor_tasks(metrics_urls)
            times = []
            for _ in range(runs):
                seconds, n = timed(cur, sql)
                times.append(seconds)
                rows[name] = n
            results[name] = times
            tasks[name] = tasks_delta(before, executor_tasks(metrics_urls))
    print(f"{'query':<16} {'runs':>5} {'rows':>8} {'p50 ms':>9} {'p99 ms':>9} {'rows/s':>12}  where")
    for name, times in results.items():
        p50 = percentile(times, 50)
        p99 = percentile(times, 99)
        rate = rows[name] / statistics.median(times)
        print(
            f"{name:<16} {len(times):>5} {rows[name]:>8} {p50 * 1000:>9.1f} {p99 * 1000:>9.1f}"
            f" {rate:>12,.0f}  {tasks[name]}"
        )

    if args.clients:
        pids = [int(p) for p in args.server_pids.split(",") if p]
        before = executor_tasks(metrics_urls)
        if pids and not args.client_processes:
            pids.append(os.getpid())  # the client threads' process
        rate, errors, latencies, used, machine = throughput(args, [point, SMALL_AGGREGATE], pids)
        where = tasks_delta(before, executor_tasks(metrics_urls))
        kind = "processes" if args.client_processes else "threads"
        print(
            f"\n{args.clients} concurrent clients ({kind}, one connection each), point query and "
            f"small aggregate in turn, {args.seconds:g} s:"
        )
        if latencies:
            print(
                f"  {len(latencies)} queries, {rate:,.0f} queries/s, {len(errors)} errors, "
                f"p50 {percentile(latencies, 50) * 1000:.1f} ms, "
                f"p99 {percentile(latencies, 99) * 1000:.1f} ms  {where}"
            )
        else:
            print(f"  no query succeeded, {len(errors)} errors")
        if used:
            print(
                f"  CPU in the measured {args.seconds:g} s: "
                + ", ".join(f"{n} {u:.1f} s" for n, u in zip(["scheduler", "executor 1", "executor 2", "the clients"], used))
                + f"; {len(latencies)} queries -> {used[0] / max(1, len(latencies)) * 1000:.1f} ms of "
                "scheduler CPU per query"
            )
            if not args.client_processes:
                # The last pid is this process's client threads, already listed above.
                used = used[:-1]
            others = machine[0] - sum(used)
            print(
                f"  the machine was {machine[0] / max(machine[1], 1e-9):.0%} busy: "
                f"{machine[0]:.1f} of {machine[1]:.1f} CPU seconds; everything but the servers "
                f"(the clients) used {others:.1f} s, {others / max(1, len(latencies)) * 1000:.1f} ms "
                "per query"
            )
        for message in sorted(set(errors))[:5]:
            print(f"  error ({errors.count(message)}x): {message}")


if __name__ == "__main__":
    main()
