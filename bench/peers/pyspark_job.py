"""The Spotify pipeline on PySpark local[2]: read the CSVs, join, drop the key copies, write snappy Parquet."""
import os

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from common import ALBUMS, ARTISTS, TRACKS, args

TYPES = {"string": T.StringType(), "int64": T.LongType(), "double": T.DoubleType(),
         "bool": T.BooleanType()}


def schema(columns):
    return T.StructType([T.StructField(c, TYPES[t]) for c, t in columns])


def main():
    albums, artists, tracks, out = args(__doc__)
    spark = (SparkSession.builder.master("local[2]").appName("sluice-bench")
             .config("spark.driver.memory", os.environ.get("BENCH_SPARK_DRIVER_MEMORY", "4g"))
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")

    def read(path, columns):
        # escape='"': the CSVs double quotes inside quoted fields (RFC 4180), Spark's default is '\'.
        return spark.read.csv(path, header=True, schema=schema(columns), escape='"', multiLine=False)

    al, ar, t = read(albums, ALBUMS), read(artists, ARTISTS), read(tracks, TRACKS)
    joined = (al.join(ar, al.artist_id == ar.id, "inner")
              .join(t, al.track_id == t.id, "inner")
              .drop(ar.id).drop(t.id))
    joined.write.mode("overwrite").option("compression", "snappy").parquet(out)
    spark.stop()


if __name__ == "__main__":
    main()
