"""The Spotify pipeline on DataFusion (single node): read the CSVs, join, drop the key copies, write snappy Parquet."""
import pyarrow as pa
from datafusion import SessionContext

from common import ALBUMS, ARTISTS, OUTPUT_COLUMNS, TRACKS, args

TYPES = {"string": pa.string(), "int64": pa.int64(), "double": pa.float64(), "bool": pa.bool_()}


def schema(columns):
    return pa.schema([(c, TYPES[t]) for c, t in columns])


def main():
    albums, artists, tracks, out = args(__doc__)
    ctx = SessionContext()
    ctx.register_csv("albums", albums, schema=schema(ALBUMS), has_header=True)
    ctx.register_csv("artists", artists, schema=schema(ARTISTS), has_header=True)
    ctx.register_csv("tracks", tracks, schema=schema(TRACKS), has_header=True)
    # Each output column from the table that owns it (albums first, so albums wins any clash).
    owner = {}
    for alias, columns in (("t", TRACKS), ("ar", ARTISTS), ("al", ALBUMS)):
        owner.update({c: alias for c, _ in columns})
    select = ", ".join(f'{owner[c]}."{c}"' for c in OUTPUT_COLUMNS)
    df = ctx.sql(f"""
        SELECT {select}
        FROM albums al
        JOIN artists ar ON al.artist_id = ar.id
        JOIN tracks t ON al.track_id = t.id
    """)
    df.write_parquet(out + "/", compression="snappy")


if __name__ == "__main__":
    main()
