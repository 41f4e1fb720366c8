"""The Spotify pipeline on DataFusion-python: read the CSVs, join, drop the key copies, write Parquet.

Single node, snappy Parquet. The session gets the options Sluice sets on its own DataFusion sessions
(`session_config` in crates/engine/src/session.rs), under DataFusion's names; see
SESSION_OPTIONS and bench/README.md.
"""
import os

import pyarrow as pa
from datafusion import SessionConfig, SessionContext

from common import ALBUMS, ARTISTS, OUTPUT_COLUMNS, TRACKS, args

TYPES = {"string": pa.string(), "int64": pa.int64(), "double": pa.float64(), "bool": pa.bool_()}

# Sluice's settings, as DataFusion names them (Sluice's value, then why):
SESSION_OPTIONS = {
    # `sluice run` plans for as many partitions as the machine has cores (its task slots).
    "datafusion.execution.target_partitions": str(len(os.sched_getaffinity(0))),
    # Hash joins, not sort-merge joins (DataFusion's default too; Ballista's is false).
    "datafusion.optimizer.prefer_hash_join": "true",
    # Probe-side read-ahead while the build side is built: 8 MiB per partition and join
    # (HASH_JOIN_BUFFERING_BYTES).
    "datafusion.execution.hash_join_buffering_capacity": str(8 * 1024 * 1024),
    # One hash table for a build side estimated under a quarter of the memory limit (70% of
    # the machine's memory): `sluice run` collects such a side (a CollectLeft join, one table
    # shared by every partition; collect_build_sides_under_limit). DataFusion applies this
    # only to sides with statistics, and CSV scans have none here (Sluice estimates them with
    # its own optimizer rule, which DataFusion-python cannot add), so it does not change this
    # plan; it is set for parity. The row threshold is Ballista's default, which Sluice keeps.
    "datafusion.optimizer.hash_join_single_partition_threshold": str(
        int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.7 * 0.25)),
    "datafusion.optimizer.hash_join_single_partition_threshold_rows": str(1_000_000),
    # Parquet: statistics per column chunk, not per page; snappy, as the job asks.
    "datafusion.execution.parquet.statistics_enabled": "chunk",
    "datafusion.execution.parquet.compression": "snappy",
    # Row groups of 122,880 rows (PARQUET_ROW_GROUP_ROWS, DuckDB's size).
    "datafusion.execution.parquet.max_row_group_size": str(122_880),
}


def schema(columns):
    """The Arrow schema of a CSV's (name, type) columns."""
    return pa.schema([(c, TYPES[t]) for c, t in columns])


def main():
    albums, artists, tracks, out = args(__doc__.split("\n")[0])
    config = SessionConfig()
    for key, value in SESSION_OPTIONS.items():
        config = config.set(key, value)
    ctx = SessionContext(config)
    ctx.register_csv("albums", albums, schema=schema(ALBUMS), has_header=True)
    ctx.register_csv("artists", artists, schema=schema(ARTISTS), has_header=True)
    ctx.register_csv("tracks", tracks, schema=schema(TRACKS), has_header=True)
    # Each output column from the table that owns it (albums first, so albums wins any clash).
    owner = {}
    for alias, columns in (("t", TRACKS), ("ar", ARTISTS), ("al", ALBUMS)):
        owner.update({c: alias for c, _ in columns})
    select = ", ".join(f'{owner[c]}."{c}"' for c in OUTPUT_COLUMNS)
    # COPY writes with the session's Parquet options; DataFrame.write_parquet(compression=...)
    # would ignore them (page statistics) and write_parquet_with_options has defaults of its own.
    ctx.sql(f"""
        COPY (
            SELECT {select}
            FROM albums al
            JOIN artists ar ON al.artist_id = ar.id
            JOIN tracks t ON al.track_id = t.id
        ) TO '{out}/' STORED AS PARQUET
    """).collect()


if __name__ == "__main__":
    main()
