"""Apache Superset's way into Sluice: the `datafusion+flightsql://` SQLAlchemy dialect of
flightsql-dbapi, used directly and through Superset's own `Database` model and engine spec
(what its SQL Lab schema browser and dataset editor call). Runs in the Superset virtualenv
(tests/requirements-superset.txt), apart from the tests' main venv.

    superset_flightsql.py --host H --port P --user U --password PW \
        --parquet TABLE_DIR --expected ROWS.json

TABLE_DIR is the folder of spotify.tracks' current version (its Parquet files give the
column names and types); ROWS.json holds DuckDB's answer over those files to
`SELECT album_type, count(*) ... GROUP BY album_type` as [[album_type, count], ...].
Prints `ok <check>` for every check that passed; exits 1 at the first that fails.
"""

import argparse
import atexit
import glob
import json
import os
import shutil
import sys
import tempfile
import traceback
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

# The dialect registers `datafusion+flightsql` when this module is imported (its package
# entry point names only `datafusion`); a Superset deployment imports it in superset_config.py.
import flightsql.sqlalchemy  # noqa: F401
import sqlalchemy as sa

GROUPED = (
    "SELECT album_type, count(*) AS tracks FROM spotify.tracks "
    "GROUP BY album_type ORDER BY album_type"
)
INJECTION = "x' OR '1'='1"


def url(args, password=None, user=None):
    user = args.user if user is None else user
    password = args.password if password is None else password
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
    return f"datafusion+flightsql://{auth}{args.host}:{args.port}?insecure=true"


def expected_sqlalchemy_type(arrow_type):
    """The generic SQLAlchemy type a reader of `arrow_type` must get (not a blob)."""
    if pa.types.is_string(arrow_type):
        return sa.types.String
    if pa.types.is_integer(arrow_type):
        return sa.types.Integer
    if pa.types.is_floating(arrow_type):
        return sa.types.Float
    if pa.types.is_boolean(arrow_type):
        return sa.types.Boolean
    raise AssertionError(f"the test does not know Arrow type {arrow_type}")


def parquet_schema(table_dir):
    files = sorted(glob.glob(os.path.join(table_dir, "**", "*.parquet"), recursive=True))
    assert files, f"no Parquet files under {table_dir}"
    return pq.read_schema(files[0])


def as_rows(rows):
    """Rows as sorted lists of strings (DuckDB's expected rows are read from JSON)."""
    return sorted([None if v is None else str(v) for v in row] for row in rows)


def check_columns(columns, schema, who):
    names = [c["name"] for c in columns]
    assert names == schema.names, f"{who}: columns {names} != the Parquet files' {schema.names}"
    for column in columns:
        arrow_type = schema.field(column["name"]).type
        want = expected_sqlalchemy_type(arrow_type)
        got = column["type"]
        assert isinstance(got, want), (
            f"{who}: column {column['name']} ({arrow_type}) reads as {got!r}, not a {want.__name__}"
        )


class Checks:
    def __init__(self, args):
        self.args = args
        self.schema = parquet_schema(args.parquet)
        with open(args.expected) as f:
            self.expected = as_rows(json.load(f))
        assert self.expected, "DuckDB found no rows: the oracle is empty"

    def dialect_lists_schemas_tables_and_columns(self):
        engine = sa.create_engine(url(self.args))
        inspector = sa.inspect(engine)
        schemas = inspector.get_schema_names()
        assert "spotify" in schemas, f"schemas: {schemas}"
        tables = inspector.get_table_names(schema="spotify")
        assert "tracks" in tables, f"tables of spotify: {tables}"
        check_columns(inspector.get_columns("tracks", schema="spotify"), self.schema, "dialect")
        engine.dispose()

    def dialect_grouped_query_matches_duckdb(self):
        engine = sa.create_engine(url(self.args))
        with engine.connect() as conn:
            rows = conn.execute(sa.text(GROUPED)).fetchall()
        assert as_rows(rows) == self.expected, f"{as_rows(rows)} != DuckDB's {self.expected}"
        engine.dispose()

    def dialect_binds_values_as_literals_safely(self):
        # Without prepared statements the dialect writes bound values into the SQL as
        # literals (Superset's charts are SQLAlchemy Core expressions like this one): a quote
        # in the value must stay inside the string. (A `text()` statement's `:name` is
        # rendered as NULL by flightsql-dbapi 0.2.2's literal compiler, and SQLAlchemy's
        # statement cache reuses the first literal for later values unless it is off: two
        # client bugs. Superset itself compiles its queries to SQL text before running them.)
        engine = sa.create_engine(url(self.args), query_cache_size=0)
        tracks = sa.table("tracks", sa.column("album_type"), schema="spotify")
        want = dict((row[0], row[1]) for row in self.expected)
        with engine.connect() as conn:
            for value in list(want) + [INJECTION]:
                query = (
                    sa.select(sa.func.count())
                    .select_from(tracks)
                    .where(tracks.c.album_type == value)
                )
                n = conn.execute(query).scalar()
                assert str(n) == want.get(value, "0"), f"album_type = {value!r}: {n} rows"
        engine.dispose()

    def dialect_wrong_password_refused(self):
        # The dialect logs in (Handshake) when the engine is created.
        for wrong in (url(self.args, password="not the password"), url(self.args, user="")):
            try:
                engine = sa.create_engine(wrong)
                with engine.connect() as conn:
                    rows = conn.execute(sa.text(GROUPED)).fetchall()
            except Exception as e:  # pyarrow's Flight errors, or the dialect's wrapping of them
                text = str(e).lower()
                assert "unauthenticated" in text or "invalid user name or password" in text, text
            else:
                raise AssertionError(f"{wrong} was served: {rows}")

    def superset_database_model(self):
        app = superset_app()
        with app.app_context():
            from superset import db_engine_specs
            from superset.models.core import Database
            from superset.sql.parse import Table

            database = Database(database_name="sluice")
            # As Superset's "connect a database" form does: the password is kept apart.
            database.set_sqlalchemy_uri(url(self.args))
            assert database.password == self.args.password, "Superset kept the password"
            assert "XXXXXXXXXX" in database.sqlalchemy_uri, database.sqlalchemy_uri
            spec = db_engine_specs.get_engine_spec("datafusion")
            assert database.db_engine_spec is spec, (database.db_engine_spec, spec)

            schemas = database.get_all_schema_names()
            assert "spotify" in schemas, f"Superset's schemas: {schemas}"
            tables = database.get_all_table_names_in_schema(catalog=None, schema="spotify")
            assert ("tracks", "spotify", None) in tables, f"Superset's tables: {tables}"
            columns = database.get_columns(Table("tracks", "spotify"))
            check_columns(
                [{"name": c["column_name"], "type": c["type"]} for c in columns],
                self.schema,
                "Superset",
            )
            frame = database.get_df(GROUPED, schema="spotify")
            rows = frame.values.tolist()
            assert as_rows(rows) == self.expected, f"Superset: {as_rows(rows)} != {self.expected}"

            wrong = Database(database_name="wrong")
            wrong.set_sqlalchemy_uri(url(self.args, password="not the password"))
            try:
                found = wrong.get_all_schema_names()
            except Exception as e:
                assert "unauthenticated" in str(e).lower() or "password" in str(e).lower(), e
            else:
                raise AssertionError(f"Superset listed schemas with a wrong password: {found}")


def superset_app():
    """A Superset app with a throwaway metadata database and a config that loads the dialect."""
    home = tempfile.mkdtemp(prefix="superset-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    config = os.path.join(home, "superset_config.py")
    with open(config, "w") as f:
        f.write(
            "import flightsql.sqlalchemy  # registers datafusion+flightsql\n"
            f"SECRET_KEY = {os.urandom(24).hex()!r}\n"
            f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{home}/superset.db'\n"
            # Its metadata database is left empty (no `superset db upgrade`): no event log.
            "from superset.utils.log import AbstractEventLogger\n"
            "class NoEventLog(AbstractEventLogger):\n"
            "    def log(self, *args, **kwargs):\n"
            "        pass\n"
            "EVENT_LOGGER = NoEventLog()\n"
        )
    os.environ["SUPERSET_CONFIG_PATH"] = config
    os.environ["SUPERSET_HOME"] = home
    from superset.app import create_app

    return create_app()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--parquet", required=True)
    parser.add_argument("--expected", required=True)
    parser.add_argument("--only", help="run only this check")
    args = parser.parse_args()
    checks = Checks(args)
    names = [
        "dialect_lists_schemas_tables_and_columns",
        "dialect_grouped_query_matches_duckdb",
        "dialect_binds_values_as_literals_safely",
        "dialect_wrong_password_refused",
        "superset_database_model",
    ]
    for name in names:
        if args.only and name != args.only:
            continue
        try:
            getattr(checks, name)()
        except Exception:
            print(f"FAILED {name}", flush=True)
            traceback.print_exc()
            return 1
        print(f"ok {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
