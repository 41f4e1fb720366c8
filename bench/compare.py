#!/usr/bin/env python3
"""Compare a system's Parquet output with DuckDB's, row for row, with DuckDB.

    compare.py REFERENCE_DIR OUTPUT_DIR [--temp DIR] [--memory-limit 6GB] [--show 5]

Both folders hold the Spotify pipeline's 20-column output (any number of Parquet files).
The check, in this order, stops at the first failure:

1. the same columns, in the same order, with the same types as DuckDB reads them
   (`DESCRIBE`): a column written as another type fails, naming the column and both types;
   nothing is cast;
2. `REFERENCE EXCEPT ALL OUTPUT` and `OUTPUT EXCEPT ALL REFERENCE` are both empty: the same
   multiset of rows (NULLs compare equal, duplicates count), so equal row counts alone never pass.
   Both are computed in one pass, as each distinct row's count in the reference minus its count
   in the output (the rows with a positive difference are the first EXCEPT ALL, those with a
   negative one the second): at x1000 (20M rows each side) that takes 45 s where DuckDB's
   EXCEPT ALL takes 220 s each way. `--literal` runs the two EXCEPT ALL queries as written.

Exit status 0 when they match; 3 with the differences on stdout (counts and a few rows each
way) when they do not; anything else when the comparison itself failed. `bench/run` runs it in a fresh process
after every run, outside the timed part, so its memory goes when it exits.
"""
import argparse
import os
import sys

import duckdb

DIFFERENT = 3  # exit status when the outputs differ


def parquet_files(folder):
    """Parquet files under `folder`, skipping hidden and _ files (Spark's .crc, _SUCCESS)."""
    found = []
    for dirpath, dirnames, files in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "_"))]
        found += [os.path.join(dirpath, f) for f in files
                  if f.endswith(".parquet") and not f.startswith((".", "_"))]
    return sorted(found)


def sql_list(paths):
    """A DuckDB list literal of file paths."""
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def short(value, width=40):
    """A value for a message: repr, cut to `width` characters."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def compare(reference, output, temp=None, memory_limit="6GB", show=5, literal=False):
    """Differences between the Parquet in folder `output` and in folder `reference`, as lines
    of text; empty when they hold the same columns, types and rows."""
    ref_files, out_files = parquet_files(reference), parquet_files(output)
    if not ref_files:
        return [f"no Parquet files in the reference folder {reference}"]
    if not out_files:
        return [f"no Parquet files in {output}"]
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    if temp:
        os.makedirs(temp, exist_ok=True)
        con.execute(f"SET temp_directory = '{temp}'")
    con.execute(f"CREATE VIEW ref AS SELECT * FROM read_parquet({sql_list(ref_files)})")
    con.execute(f"CREATE VIEW got AS SELECT * FROM read_parquet({sql_list(out_files)})")

    ref_cols = [(r[0], r[1]) for r in con.execute("DESCRIBE ref").fetchall()]
    got_cols = [(r[0], r[1]) for r in con.execute("DESCRIBE got").fetchall()]
    if ref_cols != got_cols:
        problems = []  # the first line sums it up
        got_types = dict(got_cols)
        for name, kind in ref_cols:
            if name not in got_types:
                problems.append(f"column {name} ({kind} in DuckDB's output) is missing")
            elif got_types[name] != kind:
                problems.append(f"column {name} is {got_types[name]}, DuckDB's is {kind}")
        extra = [n for n, _ in got_cols if n not in dict(ref_cols)]
        if extra:
            problems.append(f"columns DuckDB's output does not have: {', '.join(extra)}")
        if not problems:
            problems.append(f"columns in another order: {[n for n, _ in got_cols]}, "
                            f"DuckDB's: {[n for n, _ in ref_cols]}")
        return problems

    problems = []
    if literal:
        # The two EXCEPT ALL queries as written: 220 s each way at x1000 on this machine.
        diffs = []
        for first, second in (("ref", "got"), ("got", "ref")):
            con.execute(f"CREATE OR REPLACE TEMP TABLE d_{first} AS "
                        f"SELECT * FROM {first} EXCEPT ALL SELECT * FROM {second}")
            diffs.append((con.execute(f"SELECT count(*) FROM d_{first}").fetchone()[0],
                          f"SELECT * FROM d_{first} LIMIT {show}"))
    else:
        # Both EXCEPT ALLs in one pass: per distinct row, its count in the reference minus its
        # count in the output. A row with difference d > 0 is d times in `ref EXCEPT ALL got`,
        # one with d < 0 is -d times in `got EXCEPT ALL ref` (NULLs group as EXCEPT ALL
        # compares them: equal). 45 s at x1000 on this machine, 6 GB at most (it spills).
        cols = ", ".join('"' + name.replace('"', '""') + '"' for name, _ in ref_cols)
        con.execute(f"""
            CREATE TEMP TABLE diff AS
            SELECT {cols}, sum(side) AS difference
            FROM (SELECT {cols}, 1::BIGINT AS side FROM ref
                  UNION ALL SELECT {cols}, -1::BIGINT AS side FROM got)
            GROUP BY ALL HAVING sum(side) <> 0""")
        missing, extra = con.execute(
            "SELECT coalesce(sum(difference) FILTER (difference > 0), 0), "
            "coalesce(-sum(difference) FILTER (difference < 0), 0) FROM diff").fetchone()
        diffs = [(missing, f"SELECT {cols} FROM diff WHERE difference > 0 LIMIT {show}"),
                 (extra, f"SELECT {cols} FROM diff WHERE difference < 0 LIMIT {show}")]
    for what, (count, sample) in zip(("DuckDB wrote that this output lacks (ref EXCEPT ALL output)",
                                      "this output has that DuckDB did not write "
                                      "(output EXCEPT ALL ref)"), diffs):
        if count:
            problems.append(f"{count:,} row{'s' if count != 1 else ''} {what}, e.g.:")
            for row in con.execute(sample).fetchall():
                problems.append("    (" + ", ".join(short(v) for v in row) + ")")
    if problems:
        counts = con.execute("SELECT (SELECT count(*) FROM ref), (SELECT count(*) FROM got)").fetchone()
        problems.insert(0, f"{diffs[0][0]:,} of DuckDB's rows missing, {diffs[1][0]:,} "
                           f"row{'s' if diffs[1][0] != 1 else ''} not in DuckDB's; "
                           f"{counts[1]:,} rows written, DuckDB {counts[0]:,}")
        problems.append(f"(columns: {', '.join(n for n, _ in ref_cols)})")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("reference", help="folder with DuckDB's Parquet output")
    ap.add_argument("output", help="folder with the Parquet output to check")
    ap.add_argument("--temp", help="folder DuckDB may spill to")
    ap.add_argument("--memory-limit", default="6GB", help="DuckDB's memory limit (default 6GB)")
    ap.add_argument("--show", type=int, default=5, help="differing rows to print each way")
    ap.add_argument("--literal", action="store_true",
                    help="run the two EXCEPT ALL queries as written (same answer, 10x slower)")
    a = ap.parse_args()
    try:
        problems = compare(a.reference, a.output, a.temp, a.memory_limit, a.show, a.literal)
    except Exception as e:  # noqa: BLE001 (any failure to compare is reported as such)
        print(f"cannot compare {a.output} with {a.reference}: {type(e).__name__}: {e}")
        sys.exit(2)
    if problems:
        print("\n".join(problems))
        sys.exit(DIFFERENT)


if __name__ == "__main__":
    main()
