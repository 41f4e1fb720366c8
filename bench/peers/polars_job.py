"""The Spotify pipeline on Polars (lazy): read the CSVs, join, drop the key copies, write snappy Parquet."""
import os

import polars as pl

from common import ALBUMS, ARTISTS, OUTPUT_COLUMNS, TRACKS, args

TYPES = {"string": pl.String, "int64": pl.Int64, "double": pl.Float64, "bool": pl.Boolean}


def scan(path, columns):
    return pl.scan_csv(path, has_header=True, schema={c: TYPES[t] for c, t in columns})


def main():
    albums, artists, tracks, out = args(__doc__)
    # An inner join on left_on/right_on keeps only the left key: the `id` copies go.
    joined = (scan(albums, ALBUMS)
              .join(scan(artists, ARTISTS), left_on="artist_id", right_on="id", how="inner")
              .join(scan(tracks, TRACKS), left_on="track_id", right_on="id", how="inner")
              .select(OUTPUT_COLUMNS))
    joined.sink_parquet(os.path.join(out, "part-0.parquet"), compression="snappy")


if __name__ == "__main__":
    main()
