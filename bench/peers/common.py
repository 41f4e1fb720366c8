"""What every peer implementation shares: the CSV columns and types, the output columns, the CLI.

Types are given explicitly to every reader (no inference), matching what Sluice writes for the
Spotify job: integers as int64, duration_sec as double, tracks.explicit as boolean, the rest
as strings.
"""
import argparse
import os

ALBUMS = [("track_name", "string"), ("track_id", "string"), ("track_number", "int64"),
          ("duration_ms", "int64"), ("album_type", "string"), ("artists", "string"),
          ("total_tracks", "int64"), ("album_name", "string"), ("release_date", "string"),
          ("label", "string"), ("album_popularity", "int64"), ("album_id", "string"),
          ("artist_id", "string"), ("duration_sec", "double")]
ARTISTS = [("id", "string"), ("name", "string"), ("artist_popularity", "int64"),
           ("artist_genres", "string"), ("followers", "int64")]
TRACKS = [("id", "string"), ("track_popularity", "int64"), ("explicit", "bool")]

# The output: all album columns, then the artist and track columns except their `id` join keys.
OUTPUT_COLUMNS = ([c for c, _ in ALBUMS] + [c for c, _ in ARTISTS if c != "id"]
                  + [c for c, _ in TRACKS if c != "id"])


def args(description):
    """Parse `DATA_DIR OUT_DIR`; return (albums.csv, artists.csv, tracks.csv paths, out dir)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("data", help="folder with albums.csv, artists.csv, tracks.csv")
    ap.add_argument("out", help="folder to write the snappy Parquet output into (created)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    paths = [os.path.abspath(os.path.join(a.data, f"{n}.csv")) for n in ("albums", "artists", "tracks")]
    return paths[0], paths[1], paths[2], os.path.abspath(a.out)
