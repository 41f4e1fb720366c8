"""Flight SQL checks with clients Sluice did not write: ADBC's Flight SQL driver and pyarrow.flight.

Run by the end-to-end tests against a real scheduler that holds `spotify.tracks`:

    flight_sql_client.py --uri grpc://127.0.0.1:PORT --user U --password P --location DIR [--tls-ca PEM]

Prints `ok <check>` per check that passed and exits non-zero at the first that fails.
The rows Sluice serves are compared with the table's Parquet files read by pyarrow.
"""

import argparse
import sys

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pyarrow.parquet as pq

TABLE = "spotify.tracks"


def ok(name):
    print(f"ok {name}", flush=True)


def expect_error(fn, *needles):
    """Runs fn, which must raise an error whose text contains one of needles."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - any client error type is fine, its text matters
        text = str(e)
        assert any(n in text for n in needles), f"unexpected error text: {text!r}"
        return text
    raise AssertionError(f"expected an error containing one of {needles}")


def sortable(table):
    return [
        f.name
        for f in table.schema
        if not (pa.types.is_nested(f.type) or pa.types.is_binary(f.type))
    ]


def canonical(table):
    keys = sortable(table)
    return table.sort_by([(k, "ascending") for k in keys]).to_pylist()


def connect(args, password=None):
    db_kwargs = {"username": args.user, "password": password or args.password}
    if args.tls_ca:
        with open(args.tls_ca) as f:
            db_kwargs[adbc_driver_flightsql.DatabaseOptions.TLS_ROOT_CERTS.value] = f.read()
    return flight_sql.connect(args.uri, db_kwargs=db_kwargs)


def pb_field(number, data):
    """A length-delimited protobuf field (enough to build Flight SQL commands by hand)."""
    n = len(data)
    varint = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            varint += bytes([byte | 0x80])
        else:
            varint += bytes([byte])
            break
    return bytes([(number << 3) | 2]) + varint + data


def statement_command(sql):
    type_url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return pb_field(1, type_url) + pb_field(2, pb_field(1, sql.encode()))


def check_adbc(args, lake):
    with connect(args) as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT * FROM {TABLE}")
        served = cur.fetch_arrow_table()
        assert served.num_rows == lake.num_rows, (served.num_rows, lake.num_rows)
        assert served.column_names == lake.column_names, (served.column_names, lake.column_names)
        served = served.cast(lake.schema)
        assert canonical(served) == canonical(lake), "rows differ from the lake's Parquet files"
        ok("adbc_query_matches_lake")

        objects = conn.adbc_get_objects(depth="all", catalog_filter="sluice").read_all().to_pylist()
        catalogs = {c["catalog_name"]: c for c in objects}
        assert "sluice" in catalogs, objects
        schemas = {s["db_schema_name"]: s for s in catalogs["sluice"]["catalog_db_schemas"]}
        assert "spotify" in schemas, list(schemas)
        tables = {t["table_name"]: t for t in schemas["spotify"]["db_schema_tables"]}
        assert "tracks" in tables, list(tables)
        columns = [c["column_name"] for c in tables["tracks"]["table_columns"]]
        assert columns == lake.column_names, (columns, lake.column_names)
        ok("adbc_get_objects")

        info = conn.adbc_get_info()
        assert info.get("vendor_name") == "Sluice", info
        assert conn.adbc_get_table_types() == ["TABLE"], conn.adbc_get_table_types()
        ok("adbc_get_info_and_table_types")

        schema = conn.adbc_get_table_schema("tracks", catalog_filter="sluice", db_schema_filter="spotify")
        got = [(f.name, f.type) for f in schema]
        want = [(f.name, f.type) for f in lake.schema]
        assert got == want, (got, want)
        ok("adbc_get_table_schema")

        kind = lake.column("album_type")[0].as_py()
        expected = pc.sum(pc.equal(lake.column("album_type"), kind)).as_py()
        cur.execute(f"SELECT count(*) AS n FROM {TABLE} WHERE album_type = ?", parameters=(kind,))
        got = cur.fetch_arrow_table().column("n")[0].as_py()
        assert got == expected, (got, expected)
        other = "no-such-album-type"
        cur.execute(f"SELECT count(*) AS n FROM {TABLE} WHERE album_type = ?", parameters=(other,))
        assert cur.fetch_arrow_table().column("n")[0].as_py() == 0
        ok("adbc_prepared_statement_with_parameter")

        for sql in (
            "CREATE TABLE spotify.copy AS SELECT 1 AS x",
            f"DROP TABLE {TABLE}",
            f"INSERT INTO {TABLE} SELECT * FROM {TABLE}",
        ):
            expect_error(lambda sql=sql: cur.execute(sql), "read-only")
        cur.execute(f"SELECT count(*) AS n FROM {TABLE}")
        assert cur.fetch_arrow_table().column("n")[0].as_py() == lake.num_rows
        ok("adbc_ddl_refused")

        text = expect_error(lambda: cur.execute("SELECT * FROM spotify.no_such_table"), "not found")
        assert "no_such_table" in text, text
        expect_error(lambda: cur.execute("SELEC 1"), "SELEC")
        ok("adbc_sql_errors")
        cur.close()

    def wrong_password():
        with connect(args, password=args.password + "-wrong") as conn:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            cur.fetch_arrow_table()

    expect_error(wrong_password, "invalid user name or password", "Unauthenticated", "UNAUTHENTICATED")
    ok("adbc_wrong_password_refused")


def check_pyarrow_flight(args, lake):
    kwargs = {}
    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            kwargs["tls_root_certs"] = f.read()
    client = flight.FlightClient(args.uri, **kwargs)
    descriptor = flight.FlightDescriptor.for_command(
        statement_command(f"SELECT count(*) AS n FROM {TABLE}")
    )
    try:
        client.get_flight_info(descriptor)
        raise AssertionError("a call without a token was accepted")
    except flight.FlightUnauthenticatedError:
        pass
    try:
        client.authenticate_basic_token(args.user, args.password + "-wrong")
        raise AssertionError("a wrong password was accepted")
    except flight.FlightUnauthenticatedError:
        pass
    ok("pyarrow_flight_refuses_without_login")

    header = client.authenticate_basic_token(args.user, args.password)
    options = flight.FlightCallOptions(headers=[header])
    info = client.get_flight_info(descriptor, options)
    table = client.do_get(info.endpoints[0].ticket, options).read_all()
    assert table.column("n")[0].as_py() == lake.num_rows
    # The plan GetFlightInfo made is taken by the first DoGet; the same ticket again is
    # planned afresh from the SQL it carries, with the same answer.
    again = client.do_get(info.endpoints[0].ticket, options).read_all()
    assert again.column("n")[0].as_py() == lake.num_rows, again
    ok("pyarrow_flight_ticket_reused")
    forged = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer forged-token")])
    try:
        client.get_flight_info(descriptor, forged)
        raise AssertionError("a forged token was accepted")
    except flight.FlightUnauthenticatedError:
        pass
    ok("pyarrow_flight_bearer_token")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--location", required=True, help="folder of the table's Parquet files")
    parser.add_argument("--tls-ca")
    parser.add_argument("--only", choices=["adbc", "pyarrow"])
    args = parser.parse_args()
    lake = pq.read_table(args.location)
    if args.only in (None, "adbc"):
        check_adbc(args, lake)
    if args.only in (None, "pyarrow"):
        check_pyarrow_flight(args, lake)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except adbc_driver_manager.Error as e:
        print(f"FAILED (ADBC): {e}", file=sys.stderr)
        sys.exit(1)
