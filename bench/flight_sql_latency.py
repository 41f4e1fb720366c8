"""Flight SQL latency and throughput against a running Sluice scheduler (ADBC client).

    flight_sql_latency.py --uri grpc://127.0.0.1:50050 [--user U --password P] [--runs 50]

Measures, after a warm-up, p50/p99 wall time of
  * a point query (one track by id) and
  * a ~100k-row fetch (`spotify.tracks` five times over: 98,105 rows on the sample),
and the rows per second the 100k-row fetch streams. Needs `spotify.tracks` registered.
"""

import argparse
import statistics
import time

import adbc_driver_flightsql.dbapi as flight_sql

FETCH_100K = (
    "SELECT t.* FROM spotify.tracks t "
    "CROSS JOIN (VALUES (1), (2), (3), (4), (5)) AS copies(n)"
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", default="grpc://127.0.0.1:50050")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    db_kwargs = {}
    if args.user:
        db_kwargs = {"username": args.user, "password": args.password or ""}
    with flight_sql.connect(args.uri, db_kwargs=db_kwargs) as conn:
        cur = conn.cursor()
        cur.execute("SELECT track_id FROM spotify.tracks LIMIT 1")
        track_id = cur.fetch_arrow_table().column(0)[0].as_py()
        point = f"SELECT * FROM spotify.tracks WHERE track_id = '{track_id}'"
        rows = {}
        results = {}
        for name, sql, runs in (
            ("point query", point, args.runs),
            ("~100k-row fetch", FETCH_100K, max(5, args.runs // 5)),
        ):
            timed(cur, sql)  # warm-up: plans, caches the table's schema, wakes executors
            times = []
            for _ in range(runs):
                seconds, n = timed(cur, sql)
                times.append(seconds)
                rows[name] = n
            results[name] = times
    print(f"{'query':<16} {'runs':>5} {'rows':>8} {'p50 ms':>9} {'p99 ms':>9} {'rows/s':>12}")
    for name, times in results.items():
        p50 = percentile(times, 50)
        p99 = percentile(times, 99)
        rate = rows[name] / statistics.median(times)
        print(
            f"{name:<16} {len(times):>5} {rows[name]:>8} {p50 * 1000:>9.1f} {p99 * 1000:>9.1f} {rate:>12,.0f}"
        )


if __name__ == "__main__":
    main()
