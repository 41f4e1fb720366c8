"""The Spotify pipeline on Sail: read the CSVs, join, drop the key copies, write snappy Parquet.

Sail (PyPI `pysail`) is a Spark Connect server written in Rust on DataFusion. This script starts
it in its own process (`pysail.spark.SparkConnectServer`, on a free loopback port; the server
runs on Rust threads beside this Python client) and drives it with the Spark Connect client
(`pyspark-client`), with the same DataFrame code as `pyspark_job.py`. It runs from its own
virtualenv (bench/.venv-sail, see bench/requirements-sail.txt): `pyspark-client` and the full
`pyspark` of the other peers install the same `pyspark` package and cannot share one.
"""
from pysail.spark import SparkConnectServer
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from common import ALBUMS, ARTISTS, TRACKS, args

TYPES = {"string": T.StringType(), "int64": T.LongType(), "double": T.DoubleType(),
         "bool": T.BooleanType()}


def schema(columns):
    """The Spark schema of a CSV's (name, type) columns."""
    return T.StructType([T.StructField(c, TYPES[t]) for c, t in columns])


def main():
    albums, artists, tracks, out = args(__doc__.split("\n")[0])
    server = SparkConnectServer("127.0.0.1", 0)
    server.start(background=True)
    host, port = server.listening_address
    spark = SparkSession.builder.remote(f"sc://{host}:{port}").getOrCreate()
    try:
        def read(path, columns):
            # escape='"': the CSVs double quotes inside quoted fields (RFC 4180), as for PySpark.
            return spark.read.csv(path, header=True, schema=schema(columns), escape='"',
                                  multiLine=False)

        al, ar, t = read(albums, ALBUMS), read(artists, ARTISTS), read(tracks, TRACKS)
        joined = (al.join(ar, al.artist_id == ar.id, "inner")
                  .join(t, al.track_id == t.id, "inner")
                  .drop(ar.id).drop(t.id))
        joined.write.mode("overwrite").option("compression", "snappy").parquet(out)
    finally:
        spark.stop()
        server.stop()


if __name__ == "__main__":
    main()
