"""The Spotify pipeline on DuckDB: read the CSVs, join, drop the key copies, write snappy Parquet."""
import os

import duckdb

from common import ALBUMS, ARTISTS, TRACKS, args

TYPES = {"string": "VARCHAR", "int64": "BIGINT", "double": "DOUBLE", "bool": "BOOLEAN"}


def read_csv(path, columns):
    cols = ", ".join(f"'{c}': '{TYPES[t]}'" for c, t in columns)
    return f"read_csv('{path}', header = true, columns = {{{cols}}})"


def main():
    albums, artists, tracks, out = args(__doc__)
    con = duckdb.connect()
    con.execute(f"""
        COPY (
            SELECT al.*, ar.* EXCLUDE (id), t.* EXCLUDE (id)
            FROM {read_csv(albums, ALBUMS)} AS al
            JOIN {read_csv(artists, ARTISTS)} AS ar ON al.artist_id = ar.id
            JOIN {read_csv(tracks, TRACKS)} AS t ON al.track_id = t.id
        ) TO '{os.path.join(out, "part-0.parquet")}' (FORMAT parquet, COMPRESSION snappy)
    """)


if __name__ == "__main__":
    main()
