"""Drives the SQL workbench served by `sluice serve --users` in a real Chromium (Playwright)
and checks it against DuckDB over the table's Parquet files.

    browser_workbench.py URL LAKE_DIR TABLE_DIR --user U --password P --other U2
        --other-password P2 --admin A --admin-password PA --max-count N
    browser_workbench.py URL LAKE_DIR TABLE_DIR --expire --admin A --admin-password PA ...

The first form: runs a grouped query, charts it (the series data read from the page's
ECharts instance equal DuckDB's aggregate), charts a second query by a series column, saves
a query, reloads the page and opens it from the saved list, deletes another, downloads the
result as CSV and as Parquet (pyarrow reads the Parquet; whole rows equal DuckDB's), checks
the result's files under <lake>/_sluice/results/, that another user gets 403 for it (an
admin 200), that a cross-site save is refused, and that the retention's maximum count
deletes the oldest results. The second form (a server started with a retention of 1s)
checks every kept result is deleted. Exits non-zero with a message on the first difference.
"""

import argparse
import csv
import io
import json
import math
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"

GROUPED = (
    "SELECT album_type, count(*) AS n, avg(track_popularity) AS mean_popularity "
    "FROM spotify.tracks GROUP BY album_type ORDER BY album_type"
)
ORACLE_GROUPED = (
    "SELECT album_type, count(*) AS n, avg(track_popularity) AS mean_popularity "
    "FROM tracks GROUP BY album_type"
)
BY_SERIES = (
    "SELECT album_type, CAST(explicit AS VARCHAR) AS explicit, count(*) AS n "
    "FROM spotify.tracks GROUP BY 1, 2"
)
ORACLE_BY_SERIES = (
    "SELECT album_type, CAST(explicit AS VARCHAR), count(*) FROM tracks GROUP BY 1, 2"
)


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def norm(v):
    """A value comparable across JSON, CSV, Parquet and DuckDB: floats to 9 digits."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        f = float(v)
        if math.isnan(f):
            return "NaN"
        if f == int(f) and abs(f) < 2**53:
            return int(f)
        return float(f"{f:.9g}")
    return str(v)


def norm_rows(rows):
    return sorted((tuple(norm(v) for v in r) for r in rows), key=repr)


def results_dir(lake):
    return Path(lake) / "_sluice" / "results"


def wait_until(what, probe, timeout=60):
    """Polls `probe` until it returns a true value (a bound, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise Failure(f"gave up waiting: {what}")
        time.sleep(0.2)


def login_form(page, base, user, password):
    page.goto(f"{base}/sql")
    check("/login" in page.url, f"the workbench without a session is not the login page: {page.url}")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("form button")
    page.wait_for_url("**/sql")


def login_api(context, base, user, password):
    r = context.request.post(f"{base}/login", form={"user": user, "password": password, "next": "/sql"},
                             max_redirects=0)
    check(r.status == 303, f"logging {user} in answered {r.status}")


def chart_option(page):
    return page.evaluate(
        "() => { const c = echarts.getInstanceByDom(document.getElementById('chart'));"
        " return c ? JSON.parse(JSON.stringify(c.getOption())) : null; }"
    )


def run_query(page, sql):
    page.fill("#sql", sql)
    with page.expect_response(lambda r: r.url.endswith("/api/sql") and r.request.method == "POST") as info:
        page.click("#run")
    response = info.value
    body = response.json()
    check(response.ok, f"the query failed: {body}")
    page.wait_for_function(
        "id => document.getElementById('result').dataset.resultId === id", arg=body["result_id"]
    )
    check(body.get("result_id"), f"no result_id in the answer: {list(body)}")
    return body


def check_chart(page, oracle):
    # The workbench's first chart: a bar of n by album_type.
    page.wait_for_function("() => !document.getElementById('chart').hidden")
    check(page.input_value("#chart-type") == "bar", "the first chart is not a bar chart")
    option = wait_until("the chart is drawn", lambda: chart_option(page))
    expected = {r[0]: r for r in oracle.execute(ORACLE_GROUPED).fetchall()}
    xs = option["xAxis"][0]["data"]
    series = option["series"]
    check(len(series) == 1 and series[0]["type"] == "bar", f"series: {series}")
    drawn = dict(zip(xs, series[0]["data"]))
    check(sorted(drawn) == sorted(expected), f"x values {sorted(drawn)} != {sorted(expected)}")
    for k, v in drawn.items():
        check(norm(v) == norm(expected[k][1]), f"bar {k}: {v} != DuckDB's {expected[k][1]}")
    # Another y and another chart type.
    page.select_option("#chart-y", label="mean_popularity")
    page.select_option("#chart-type", "line")
    option = chart_option(page)
    series = option["series"]
    check(series[0]["type"] == "line", f"not a line: {series[0]['type']}")
    drawn = dict(zip(option["xAxis"][0]["data"], series[0]["data"]))
    for k, v in drawn.items():
        check(norm(v) == norm(expected[k][2]), f"line {k}: {v} != DuckDB's {expected[k][2]}")
    check(len(drawn) == len(expected), "the line misses points")
    print("ok   chart: bar of n and line of mean_popularity equal DuckDB's aggregates")


def check_series_chart(page, oracle):
    run_query(page, BY_SERIES)
    page.select_option("#chart-x", label="album_type")
    page.select_option("#chart-y", label="n")
    page.select_option("#chart-series", label="explicit")
    page.select_option("#chart-type", "bar")
    option = chart_option(page)
    xs = option["xAxis"][0]["data"]
    drawn = {}
    for s in option["series"]:
        for x, v in zip(xs, s["data"]):
            if v is not None:
                drawn[(x, s["name"])] = v
    expected = {(r[0], r[1]): r[2] for r in oracle.execute(ORACLE_BY_SERIES).fetchall()}
    check({k: norm(v) for k, v in drawn.items()} == {k: norm(v) for k, v in expected.items()},
          f"series chart {drawn} != DuckDB's {expected}")
    print(f"ok   chart by series: {len(option['series'])} series equal DuckDB's counts")


def check_saved(page, base, lake, context):
    name = "Tracks per album type"
    page.fill("#sql", GROUPED)
    page.fill("#save-name", name)
    page.fill("#save-description", "count and mean popularity")
    page.click("#save")
    page.wait_for_function("() => document.getElementById('save-status').textContent.startsWith('saved as')")
    stored = Path(lake) / "_sluice" / "saved_queries" / "tracks-per-album-type.json"
    check(stored.exists(), f"{stored} was not written")
    saved = json.loads(stored.read_text())
    check(saved["sql"] == GROUPED and saved["name"] == name, f"saved file: {saved}")
    # A second one, deleted from the page.
    page.fill("#sql", "SELECT 1 AS one")
    page.fill("#save-name", "Scratch")
    page.fill("#save-description", "")
    page.click("#save")
    page.wait_for_function("() => document.getElementById('save-status').textContent === 'saved as Scratch'")
    scratch = Path(lake) / "_sluice" / "saved_queries" / "scratch.json"
    check(scratch.exists(), "the second saved query was not written")
    # A cross-site save is refused and changes nothing.
    r = context.request.post(f"{base}/api/sql/saved", data={"name": name, "sql": "SELECT 2"},
                             headers={"Origin": "http://evil.example"})
    check(r.status == 403, f"a cross-site save answered {r.status}")
    check(json.loads(stored.read_text())["sql"] == GROUPED, "a cross-site save changed the file")
    r = context.request.post(f"{base}/api/sql/saved/scratch/delete", data={},
                             headers={"Origin": "http://evil.example"})
    check(r.status == 403 and scratch.exists(), f"a cross-site delete answered {r.status}")

    page.reload()
    page.fill("#sql", "")
    page.wait_for_selector("#saved option[value='tracks-per-album-type']", state="attached")
    page.select_option("#saved", "tracks-per-album-type")
    check(page.input_value("#sql") == GROUPED, "opening the saved query did not load its SQL")
    check(page.input_value("#save-name") == name, "opening the saved query did not load its name")
    page.select_option("#saved", "scratch")
    page.click("#saved-delete")
    page.wait_for_function("() => document.getElementById('save-status').textContent === 'deleted scratch'")
    check(not scratch.exists(), "deleting from the page left the file")
    # The page redraws the list from the server's after the status line says deleted.
    page.wait_for_selector("#saved option[value='scratch']", state="detached", timeout=10_000)
    options = page.eval_on_selector_all("#saved option", "os => os.map(o => o.value)")
    check("scratch" not in options and "tracks-per-album-type" in options, f"saved list: {options}")
    print("ok   saved queries: saved, listed after a reload, opened, deleted; cross-site refused")


def check_downloads(page, base, lake, oracle, body, user):
    rid = body["result_id"]
    expected = norm_rows(oracle.execute(ORACLE_GROUPED).fetchall())
    check(norm_rows(body["rows"]) == expected, "the result table differs from DuckDB")
    files = results_dir(lake)
    parquet_file = files / f"{rid}.parquet"
    meta_file = files / f"{rid}.json"
    wait_until(f"{meta_file} is written", meta_file.exists)
    check(parquet_file.exists(), f"{parquet_file} is missing")
    meta = json.loads(meta_file.read_text())
    check(meta["sql"] == GROUPED and meta["user"] == user and meta["rows"] == len(expected),
          f"the result's JSON: {meta}")
    check(isinstance(meta["elapsed_ms"], int) and meta["started_at"], f"the result's JSON: {meta}")
    in_lake = [list(r.values()) for r in pq.read_table(parquet_file).to_pylist()]
    check(norm_rows(in_lake) == expected, f"the Parquet file in the lake differs from DuckDB: {in_lake}")

    # The history lists it, with its downloads.
    page.wait_for_selector(f"#history li[data-result='{rid}'] a.download-parquet", state="attached")

    # The downloads from the page, without running the query again.
    with page.expect_download() as info:
        page.click("#download-csv")
    text = Path(info.value.path()).read_text()
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    check(header == ["album_type", "n", "mean_popularity"], f"CSV header: {header}")
    rows = [[r[0] or None, int(r[1]), float(r[2])] for r in reader]
    check(norm_rows(rows) == expected, f"the CSV differs from DuckDB: {rows}")
    with page.expect_download() as info:
        page.click("#download-parquet")
    downloaded = Path(info.value.path())
    check(downloaded.read_bytes() == parquet_file.read_bytes(), "the Parquet download is not the lake's file")
    table = pq.read_table(downloaded)
    check(table.column_names == ["album_type", "n", "mean_popularity"], f"columns: {table.column_names}")
    got = [list(r.values()) for r in table.to_pylist()]
    check(norm_rows(got) == expected, f"the Parquet rows differ from DuckDB: {got}")
    print(f"ok   result {rid}: kept in the lake, listed, CSV and Parquet downloads equal DuckDB")
    return rid


def check_others(browser, base, rid, args):
    other = browser.new_context()
    login_api(other, base, args.other, args.other_password)
    for fmt in ["csv", "parquet"]:
        r = other.request.get(f"{base}/api/sql/results/{rid}?format={fmt}")
        check(r.status == 403, f"{args.other} downloading {args.user}'s result as {fmt}: {r.status}")
    listed = other.request.get(f"{base}/api/sql/results").json()["results"]
    check(all(r["id"] != rid for r in listed), f"{args.other}'s history lists {args.user}'s result")
    # Saved queries are shared.
    saved = other.request.get(f"{base}/api/sql/saved").json()["queries"]
    check(any(q["id"] == "tracks-per-album-type" for q in saved), f"{args.other} sees no saved query")
    other.close()
    admin = browser.new_context()
    login_api(admin, base, args.admin, args.admin_password)
    r = admin.request.get(f"{base}/api/sql/results/{rid}?format=csv")
    check(r.status == 200, f"the admin's download answered {r.status}")
    admin.close()
    anonymous = browser.new_context()
    r = anonymous.request.get(f"{base}/api/sql/results/{rid}?format=csv")
    check(r.status == 401, f"a download without a session answered {r.status}")
    anonymous.close()
    print(f"ok   {args.other} gets 403 for the result and does not list it; the admin 200; no session 401")


def check_retention(page, base, lake, rid, max_count, context):
    files = results_dir(lake)
    ids = []
    for i in range(max_count):
        ids.append(run_query(page, f"SELECT {i} AS i")["result_id"])
    # The newest max_count stay; the first (grouped) result goes.
    def settled():
        kept = sorted(p.stem for p in files.glob("*.parquet"))
        return kept if kept == sorted(ids) else None
    kept = wait_until(f"only the newest {max_count} results are kept", settled)
    check(not (files / f"{rid}.json").exists(), "the expired result's JSON is left")
    r = context.request.get(f"{base}/api/sql/results/{rid}?format=csv")
    check(r.status == 404, f"an expired result's download answered {r.status}")
    print(f"ok   retention: at most {max_count} results kept ({len(kept)}), the oldest deleted (404)")


def run(args):
    base = args.url.rstrip("/")
    oracle = duckdb.connect()
    oracle.execute(
        "CREATE VIEW tracks AS SELECT * FROM "
        f"read_parquet('{args.table_dir}/**/*.parquet', hive_partitioning = false)"
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        if args.expire:
            admin = browser.new_context()
            login_api(admin, base, args.admin, args.admin_password)
            before = list(results_dir(args.lake).glob("*.parquet"))
            check(before, "no results to expire")
            # Older than the server's 1 s retention.
            time.sleep(1.5)
            listed = admin.request.get(f"{base}/api/sql/results").json()["results"]
            check(listed == [], f"expired results are listed: {listed}")
            left = list(results_dir(args.lake).iterdir())
            check(left == [], f"expired results are left: {left}")
            print(f"ok   retention by age: {len(before)} result(s) older than 1s deleted")
            browser.close()
            print("all workbench checks passed")
            return
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        login_form(page, base, args.user, args.password)
        body = run_query(page, GROUPED)
        check_chart(page, oracle)
        rid = check_downloads(page, base, args.lake, oracle, body, args.user)
        check_series_chart(page, oracle)
        check_saved(page, base, args.lake, context)
        check_others(browser, base, rid, args)
        check_retention(page, base, args.lake, rid, args.max_count, context)
        check(not errors, f"JavaScript errors on the page: {errors}")
        browser.close()
    print("all workbench checks passed")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("lake")
    p.add_argument("table_dir")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--other")
    p.add_argument("--other-password")
    p.add_argument("--admin")
    p.add_argument("--admin-password")
    p.add_argument("--max-count", type=int, default=3)
    p.add_argument("--expire", action="store_true")
    args = p.parse_args()
    try:
        run(args)
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
