"""The Arrow types a Flight SQL client receives, as the server sends them (no cast).

    flight_sql_types.py --uri grpc://127.0.0.1:PORT --user U --password P --location DIR

BI clients (JDBC, older Arrow) do not know `string_view`, and some choke on `large_string`:
every string column must arrive as plain `string` (Utf8) — in the schema GetFlightInfo
announces, in the stream DoGet sends, and in what ADBC's driver hands the application —
for a table's columns and for computed ones. The rows must equal the table's Parquet files
(DIR, read by pyarrow), compared as Python values, so no cast is needed on either side.

Prints `ok <check>` per check and exits non-zero at the first that fails.
"""

import argparse
import sys

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq

TABLE = "spotify.tracks"
QUERIES = {
    "table": f"SELECT * FROM {TABLE}",
    "computed": f"SELECT album_type, upper(track_name) AS shout, concat(artist_id, '-', track_id) AS pair, "
    f"count(*) AS n FROM {TABLE} GROUP BY 1, 2, 3",
}


def ok(name):
    print(f"ok {name}", flush=True)


def bad_types(schema):
    """Fields whose type is a string or binary flavour other than the plain one."""
    wrong = []
    for f in schema:
        t = f.type
        if (
            pa.types.is_large_string(t)
            or pa.types.is_string_view(t)
            or pa.types.is_large_binary(t)
            or pa.types.is_binary_view(t)
            or pa.types.is_dictionary(t)
        ):
            wrong.append(f"{f.name}: {t}")
    return wrong


def statement_command(sql):
    def field(number, data):
        n, varint = len(data), b""
        while True:
            byte = n & 0x7F
            n >>= 7
            varint += bytes([byte | 0x80 if n else byte])
            if not n:
                break
        return bytes([(number << 3) | 2]) + varint + data

    type_url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return field(1, type_url) + field(2, field(1, sql.encode()))


def rows(table):
    return sorted(table.to_pylist(), key=lambda r: repr(sorted(r.items())))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--location", required=True)
    args = parser.parse_args()
    lake = pq.read_table(args.location)
    string_columns = [f.name for f in lake.schema if pa.types.is_string(f.type) or pa.types.is_string_view(f.type) or pa.types.is_large_string(f.type)]
    assert string_columns, lake.schema

    client = flight.FlightClient(args.uri)
    options = flight.FlightCallOptions(headers=[client.authenticate_basic_token(args.user, args.password)])
    served = {}
    for name, sql in QUERIES.items():
        info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_command(sql)), options)
        reader = client.do_get(info.endpoints[0].ticket, options)
        table = reader.read_all()
        for where, schema in (("GetFlightInfo", info.schema), ("DoGet", reader.schema), ("batches", table.schema)):
            wrong = bad_types(schema)
            assert not wrong, f"{name}: {where} sends {wrong}"
        assert info.schema.equals(table.schema), f"{name}: announced {info.schema} but sent {table.schema}"
        served[name] = table
    for c in string_columns:
        t = served["table"].schema.field(c).type
        assert t == pa.string(), f"column {c} arrives as {t}, not string"
    for c in ("album_type", "shout", "pair"):
        t = served["computed"].schema.field(c).type
        assert t == pa.string(), f"computed column {c} arrives as {t}, not string"
    ok("pyarrow_flight_sends_plain_strings")

    with flight_sql.connect(args.uri, db_kwargs={"username": args.user, "password": args.password}) as conn:
        cur = conn.cursor()
        for name, sql in QUERIES.items():
            cur.execute(sql)
            table = cur.fetch_arrow_table()
            wrong = bad_types(table.schema)
            assert not wrong, f"{name}: ADBC hands over {wrong}"
            assert table.schema.equals(served[name].schema), (table.schema, served[name].schema)
        cur.close()
    ok("adbc_receives_plain_strings")

    assert served["table"].column_names == lake.column_names, (served["table"].column_names, lake.column_names)
    assert rows(served["table"]) == rows(lake), "the rows served differ from the table's Parquet files"
    ok("rows_match_the_lake_without_a_cast")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
