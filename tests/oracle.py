"""An oracle that shares no code with Sluice: DuckDB computes the expected rows from the raw
staging files, and compares them with a table's Parquet files as multisets of whole rows
(EXCEPT ALL both ways, every column compared as DuckDB renders it).

    oracle.py spotify STAGING_DIR PARQUET_DIR
        the Spotify job (albums JOIN artists JOIN tracks, one copy of each key)
    oracle.py sql PARQUET_DIR "SQL over views" [name=path.csv ...]
        any query over the named CSV files

Prints `rows N` (the table's rows) and exits 0 when both sides hold the same rows; prints
the differing rows and exits 1 otherwise. The Parquet files are read with Hive partitioning
(`key=value` folders become columns), as every reader of a partitioned table does.

    oracle.py query "SQL over views" [name=path.csv ...]
        prints the query's rows as one JSON array of arrays (values as DuckDB's VARCHAR);
        when albums, artists and tracks are all named, the view `spotify` is the Spotify join
"""

import json
import sys

import duckdb

SPOTIFY = """
SELECT a.*, ar.name, ar.artist_popularity, ar.artist_genres, ar.followers,
       t.track_popularity, t.explicit
FROM albums a JOIN artists ar ON a.artist_id = ar.id JOIN tracks t ON a.track_id = t.id
"""


def connect(csvs):
    con = duckdb.connect()
    for name, path in csvs.items():
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_csv('{path}', header = true)"
        )
    if {"albums", "artists", "tracks"} <= set(csvs):
        con.execute(f"CREATE VIEW spotify AS {SPOTIFY}")
    return con


def query(sql, csvs):
    con = connect(csvs)
    cur = con.execute(sql)
    n = len(cur.description)
    rows = [[None if v is None else str(v) for v in row] for row in cur.fetchall()]
    assert all(len(r) == n for r in rows)
    print(json.dumps(rows))
    return 0


def compare(parquet_dir, sql, csvs):
    con = connect(csvs)
    con.execute(
        f"CREATE VIEW actual AS SELECT * FROM read_parquet('{parquet_dir}/**/*.parquet', "
        "hive_partitioning = true)"
    )
    con.execute(f"CREATE VIEW expected AS {sql}")
    actual_cols = [r[0] for r in con.execute("DESCRIBE actual").fetchall()]
    expected_cols = [r[0] for r in con.execute("DESCRIBE expected").fetchall()]
    if sorted(actual_cols) != sorted(expected_cols):
        print(f"columns differ:\n  actual   {actual_cols}\n  expected {expected_cols}")
        return 1
    cols = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in actual_cols)
    rows = con.execute("SELECT count(*) FROM actual").fetchone()[0]
    status = 0
    for label, a, b in (("missing", "expected", "actual"), ("unexpected", "actual", "expected")):
        diff = con.execute(
            f"SELECT * FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b}) LIMIT 5"
        ).fetchall()
        n = con.execute(
            f"SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b})"
        ).fetchone()[0]
        if n:
            status = 1
            print(f"{n} {label} rows, e.g.:")
            for r in diff:
                print("  ", r)
    print(f"rows {rows}")
    return status


def main(argv):
    if len(argv) == 4 and argv[1] == "spotify":
        staging, parquet_dir = argv[2], argv[3]
        csvs = {t: f"{staging}/{t}.csv" for t in ("albums", "artists", "tracks")}
        return compare(parquet_dir, SPOTIFY, csvs)
    if len(argv) >= 4 and argv[1] == "sql":
        csvs = dict(arg.split("=", 1) for arg in argv[4:])
        return compare(argv[2], argv[3], csvs)
    if len(argv) >= 3 and argv[1] == "query":
        csvs = dict(arg.split("=", 1) for arg in argv[3:])
        return query(argv[2], csvs)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
