"""Drives the Spotify dashboard served by `sluice serve` in a real Chromium (Playwright),
and checks every panel's data against DuckDB over the table's Parquet files.

    browser_dashboard.py URL TABLE_DIR RUN_ID [--screenshot PNG] [--user NAME --password PW]

URL is the server (http://127.0.0.1:PORT); TABLE_DIR the folder of spotify.tracks' current
version and RUN_ID the run that wrote it (from the catalog). The data a panel shows is the JSON the page itself fetched from
/api/dashboards/spotify/panels/{panel}/data (captured from the browser's responses) and
the ECharts option the page built from it; DuckDB recomputes each panel's aggregate from the
Parquet files with the same filters as a WHERE clause. Exits non-zero with a message on the
first difference.
"""

import argparse
import math
import sys
import time
import urllib.parse

import duckdb
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
DASHBOARD = "spotify"
PANELS = [
    "tracks", "artists", "mean_popularity", "releases_per_year", "tracks_per_album_type",
    "top_artists", "popularity_vs_duration", "explicit_share", "popularity_by_type",
    "top_tracks",
]
ECHARTS_PANELS = {
    "releases_per_year", "tracks_per_album_type", "top_artists", "popularity_vs_duration",
    "explicit_share", "popularity_by_type",
}

# Each panel's aggregate, written independently of Sluice over the dataset `tracks`, and how
# to compare: "same" (the same rows in any order), "top" (the same sorted y values, every row
# one of the full grouping's: ties at a limit may pick either row), "subset" (rows drawn from
# the query's rows, as many as min(limit, all)).
ORACLE = {
    "tracks": ("same", "SELECT count(*) FROM tracks {where}", None),
    "artists": ("same", "SELECT count(DISTINCT artist_id) FROM tracks {where}", None),
    "mean_popularity": ("same", "SELECT avg(track_popularity) FROM tracks {where}", None),
    "releases_per_year": (
        "same", "SELECT release_year, count(*) FROM tracks {where} GROUP BY 1", None),
    "tracks_per_album_type": (
        "same", "SELECT album_type, count(*) FROM tracks {where} GROUP BY 1", None),
    "top_artists": (
        "top", "SELECT artist_name, max(followers) FROM tracks {where} GROUP BY 1", 10),
    "popularity_vs_duration": (
        "subset", "SELECT duration_min, track_popularity, explicit FROM tracks {where}", 3000),
    "explicit_share": ("same", "SELECT explicit, count(*) FROM tracks {where} GROUP BY 1", None),
    "popularity_by_type": (
        "same",
        "SELECT album_type, explicit, avg(track_popularity) FROM tracks {where} GROUP BY 1, 2",
        None),
    "top_tracks": (
        "top",
        "SELECT track_name, artist_name, album_name, album_type, track_popularity "
        "FROM tracks {where}", 50),
}
# Which column of a "top" panel's rows is the sort key (descending).
TOP_KEY = {"top_artists": 1, "top_tracks": 4}


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def norm(v):
    """A value comparable across JSON and DuckDB: numbers rounded to 9 significant digits."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        f = float(v)
        if math.isnan(f):
            return "NaN"
        return float(f"{f:.9g}")
    return str(v)


def norm_rows(rows):
    return sorted((tuple(norm(v) for v in r) for r in rows), key=repr)


class Oracle:
    """DuckDB over the Parquet files, with the dashboard's dataset as a view."""

    def __init__(self, table_dir):
        self.db = duckdb.connect()
        self.db.execute(
            "CREATE VIEW tracks AS SELECT track_id, track_name, album_name, album_type, "
            "artist_id, name AS artist_name, followers, track_popularity, explicit, "
            "duration_ms / 60000.0 AS duration_min, "
            "CAST(substr(release_date, 1, 4) AS INT) AS release_year "
            f"FROM read_parquet('{table_dir}/**/*.parquet', hive_partitioning = false)"
        )

    def rows(self, sql, params):
        return [list(r) for r in self.db.execute(sql, params).fetchall()]

    @staticmethod
    def where(album_types=None, years=None):
        """A WHERE clause with placeholders, and its parameters."""
        preds, params = [], []
        if album_types is not None:
            if album_types:
                preds.append("album_type IN (" + ", ".join("?" for _ in album_types) + ")")
                params.extend(album_types)
            else:
                preds.append("false")
        if years is not None:
            lo, hi = years
            if lo is not None:
                preds.append("release_year >= ?")
                params.append(lo)
            if hi is not None:
                preds.append("release_year <= ?")
                params.append(hi)
        return ("WHERE " + " AND ".join(preds) if preds else ""), params


class Page:
    """The dashboard page, with every panel response the browser received for it."""

    def __init__(self, page, base):
        self.page = page
        self.base = base
        # (panel, query) -> the Response, or (status, body) once its body has been read.
        self.responses = {}
        # Why the last body could not be read (a response of a page navigated away from).
        self.unread = None
        page.on("response", self._record)

    def _record(self, response):
        url = urllib.parse.urlsplit(response.url)
        prefix = f"/api/dashboards/{DASHBOARD}/panels/"
        if not url.path.startswith(prefix) or not url.path.endswith("/data"):
            return
        panel = url.path[len(prefix):-len("/data")]
        # The body is read later, in `answer`: events can be handled after the page that
        # asked has gone (its bodies with it), and then a newer answer replaces this one.
        self.responses[(panel, url.query)] = response

    def answer(self, panel, query):
        """(status, body) of the panel's newest answer for `query`, or None when none has
        arrived."""
        entry = self.responses.get((panel, query))
        if entry is None or isinstance(entry, tuple):
            return entry
        status = entry.status
        try:
            body = entry.json()
        except PlaywrightError as e:
            # The page that asked has gone, and a newer answer for the same URL may have been
            # recorded before this one: ask the server for the same URL in the page's session
            # (a committed version answers the same every time; check_drawn then holds the
            # page's charts to it).
            self.unread = f"{panel}: {e}"
            again = self.page.request.get(entry.url)
            status = again.status
            try:
                body = again.json()
            except ValueError as e2:
                body = {"error": {"message": f"not JSON: {e2}"}}
        except ValueError as e:  # a body that is not JSON is itself a failure
            body = {"error": {"message": f"not JSON: {e}"}}
        self.responses[(panel, query)] = (status, body)
        return self.responses[(panel, query)]

    def goto(self, url):
        """Opens `url`, forgetting the answers earlier pages received."""
        self.responses.clear()
        self.page.goto(url)

    def query(self):
        """The query string of the page's URL (the filters: the page keeps them there)."""
        return urllib.parse.urlsplit(self.page.url).query

    def drawn(self):
        """Whether no panel is waiting for data (false while a navigation replaces the page)."""
        try:
            return self.page.evaluate(
                "() => document.querySelectorAll('.panel-body.loading').length === 0"
            )
        except PlaywrightError:  # the execution context went with a navigation
            return False

    def settled(self, timeout=120):
        """Waits until every panel's data for the current URL has arrived and is drawn;
        returns {panel: body}."""
        deadline = time.monotonic() + timeout
        while True:
            q = self.query()
            got = {p: self.answer(p, q) for p in PANELS}
            if all(got.values()) and self.drawn():
                break
            check(time.monotonic() < deadline,
                  f"panels without data after {timeout} s for ?{q}: "
                  f"{[p for p, v in got.items() if not v]} (last unreadable body: {self.unread})")
            self.page.wait_for_timeout(100)
        out = {}
        for p, (status, body) in got.items():
            check(status == 200 and "rows" in body,
                  f"panel {p} (?{q}): HTTP {status}: {body}")
            out[p] = body
        self.check_drawn(out)
        return out

    def check_drawn(self, data):
        """Every panel shows its data: no error box; charts hold what the API returned."""
        for p in PANELS:
            sel = f"#panel-body-{p}"
            check(self.page.locator(f"{sel} .panel-error").count() == 0,
                  f"panel {p} shows an error: {self.page.inner_text(sel)}")
            if p in ECHARTS_PANELS:
                check(self.page.locator(f"{sel} canvas, {sel} svg").count() > 0,
                      f"panel {p} has no chart")
                option = self.page.evaluate(
                    "(id) => { const c = echarts.getInstanceByDom("
                    "document.getElementById('panel-body-' + id)); "
                    "return c ? JSON.parse(JSON.stringify(c.getOption())) : null; }", p)
                check(option is not None, f"panel {p}: no ECharts instance")
                check_option(p, option, data[p])
            elif p == "top_tracks":
                shown = self.page.locator(f"{sel} table.rows tbody tr").count()
                check(shown == len(data[p]["rows"]),
                      f"table {p}: {shown} rows shown, {len(data[p]['rows'])} fetched")
            else:
                text = self.page.inner_text(f"{sel} .kpi")
                check(text.strip() != "" or data[p]["rows"][0][0] is None,
                      f"kpi {p} shows nothing")


def js_str(v):
    """`String(v)` as JavaScript writes it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return "null" if v is None else str(v)


def check_option(panel, option, data):
    """The chart's series hold the fetched rows."""
    rows = data["rows"]
    series = option["series"]
    if panel in ("tracks_per_album_type", "top_artists", "releases_per_year"):
        xs = [js_str(r[0]) for r in rows]
        check(option["xAxis"][0]["data"] == xs, f"{panel}: x axis {option['xAxis'][0]['data']} != {xs}")
        check([norm(v) for v in series[0]["data"]] == [norm(r[1]) for r in rows],
              f"{panel}: bars/points differ from the data")
    elif panel == "explicit_share":
        shown = sorted((d["name"], norm(d["value"])) for d in series[0]["data"])
        check(shown == sorted((js_str(r[0]), norm(r[1])) for r in rows), f"{panel}: slices differ")
    elif panel == "popularity_vs_duration":
        points = sum(len(s["data"]) for s in series)
        check(points == len(rows), f"{panel}: {points} points drawn, {len(rows)} fetched")
    elif panel == "popularity_by_type":
        check(len(series[0]["data"]) == len(rows), f"{panel}: cells differ from the data")


def compare(oracle, data, album_types=None, years=None, label=""):
    where, params = Oracle.where(album_types, years)
    for panel in PANELS:
        mode, sql, limit = ORACLE[panel]
        expected = oracle.rows(sql.format(where=where), params)
        got = data[panel]["rows"]
        what = f"{label}: panel {panel}"
        if mode == "same":
            check(norm_rows(got) == norm_rows(expected),
                  f"{what}: page {norm_rows(got)[:8]} != DuckDB {norm_rows(expected)[:8]}")
        elif mode == "top":
            key = TOP_KEY[panel]
            want = sorted((norm(r[key]) for r in expected if r[key] is not None),
                          reverse=True)[:limit]
            have = [norm(r[key]) for r in got]
            check(have == want, f"{what}: top values {have[:5]} != DuckDB {want[:5]}")
            pool = set(norm_rows(expected))
            check(all(r in pool for r in norm_rows(got)), f"{what}: a row DuckDB does not have")
        else:
            check(len(got) == min(limit, len(expected)),
                  f"{what}: {len(got)} points, DuckDB has {len(expected)} (limit {limit})")
            pool = {}
            for r in norm_rows(expected):
                pool[r] = pool.get(r, 0) + 1
            for r in norm_rows(got):
                check(pool.get(r, 0) > 0, f"{what}: point {r} is not a row of DuckDB's")
                pool[r] -= 1
    print(f"ok   {label}: {len(PANELS)} panels equal DuckDB")


def click_bar(page, panel, index):
    """Clicks the middle of bar `index` of a bar chart's first series; returns its x value."""
    target = page.evaluate(
        """([id, i]) => {
            const el = document.getElementById('panel-body-' + id);
            const c = echarts.getInstanceByDom(el);
            const o = c.getOption();
            const v = o.series[0].data[i];
            const [x, y] = c.convertToPixel({seriesIndex: 0}, [i, v / 2]);
            const box = el.getBoundingClientRect();
            return {x: box.left + x, y: box.top + y, name: o.xAxis[0].data[i]};
        }""", [panel, index])
    page.mouse.click(target["x"], target["y"])
    return target["name"]


def login(page, base, user, password):
    status = page.request.get(f"{base}/api/dashboards").status
    check(status == 401, f"the API without a session answered {status}, not 401")
    page.goto(f"{base}/dashboards/{DASHBOARD}")
    check("/login" in page.url, f"a page without a session is not the login page: {page.url}")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", "not the password")
    with page.expect_navigation():
        page.click("form button")
    check("/login" in page.url, f"a wrong password was let in: {page.url}")
    status = page.request.get(f"{base}/api/dashboards").status
    check(status == 401, f"after a wrong password the API answered {status}, not 401")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("form button")
    page.wait_for_url(f"**/dashboards/{DASHBOARD}**")
    status = page.request.get(f"{base}/api/dashboards").status
    check(status == 200, f"after logging in the API answered {status}")
    print("ok   logins: 401 and the login page without a session; wrong password refused")


def run(args):
    oracle = Oracle(args.table_dir)
    base = args.url.rstrip("/")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        view = Page(page, base)
        if args.user:
            login(page, base, args.user, args.password)

        # Every panel, no filter.
        view.goto(f"{base}/dashboards/{DASHBOARD}")
        data = view.settled()
        compare(oracle, data, label="no filter")
        if args.screenshot:
            page.wait_for_timeout(1000)  # ECharts' entry animation
            page.screenshot(path=args.screenshot, full_page=True)
            print(f"ok   screenshot {args.screenshot}")

        # The album-type multi-select.
        types = [r[0] for r in oracle.rows(
            "SELECT DISTINCT album_type FROM tracks WHERE album_type IS NOT NULL ORDER BY 1", [])]
        check(len(types) >= 2, f"the sample has album types {types}")
        chosen = types[:2] if len(types) > 2 else types[:1]
        page.wait_for_function(
            "(n) => document.querySelectorAll('#filter-album_type option').length >= n",
            arg=len(types))
        page.select_option("#filter-album_type", chosen)
        data = view.settled()
        check(view.query().count("album_type=") == len(chosen), f"URL ?{view.query()}")
        compare(oracle, data, album_types=chosen, label=f"album_type in {chosen}")

        # The release-year range, on top.
        # One end, then the other, as a person types them: each change fetches every panel,
        # and only the newest answers may be drawn.
        page.fill("#filter-year-from", "2000")
        page.dispatch_event("#filter-year-from", "change")
        page.fill("#filter-year-to", "2010")
        page.dispatch_event("#filter-year-to", "change")
        data = view.settled()
        check("year=2000..2010" in view.query(), f"URL ?{view.query()}")
        compare(oracle, data, album_types=chosen, years=(2000, 2010),
                label=f"album_type in {chosen}, year 2000..2010")

        # A shared view opens with its filters (the URL holds them).
        view.goto(f"{base}/dashboards/{DASHBOARD}?year=..1990")
        data = view.settled()
        compare(oracle, data, years=(None, 1990), label="year ..1990 from the URL")

        # A click on a bar filters the other panels.
        view.goto(f"{base}/dashboards/{DASHBOARD}")
        view.settled()
        before = view.query()
        # A click during ECharts' entry animation can miss the growing bar: click again
        # until the URL changes (a few tries).
        for _ in range(10):
            clicked = click_bar(page, "tracks_per_album_type", 0)
            for _ in range(20):
                if view.query() != before:
                    break
                page.wait_for_timeout(100)
            if view.query() != before:
                break
        check(view.query() != before, "clicking a bar changed nothing")
        check(urllib.parse.parse_qs(view.query()).get("album_type") == [clicked],
              f"the click on {clicked!r} set ?{view.query()}")
        data = view.settled()
        compare(oracle, data, album_types=[clicked], label=f"click on the bar {clicked!r}")

        # A filter value that would change the SQL if pasted into it: no rows, no error.
        evil = "x' OR '1'='1"
        view.goto(f"{base}/dashboards/{DASHBOARD}?" + urllib.parse.urlencode({"album_type": evil}))
        data = view.settled()
        compare(oracle, data, album_types=[evil], label="album_type = x' OR '1'='1")
        check(data["tracks"]["rows"] == [[0]], f"the injection counted {data['tracks']['rows']}")
        check(data["tracks_per_album_type"]["rows"] == [], "the injection matched rows")

        # The SQL workbench runs a query and shows its rows.
        sql = ("SELECT album_type, count(*) AS n FROM spotify.tracks "
               "GROUP BY album_type ORDER BY album_type")
        page.goto(f"{base}/sql")
        page.fill("#sql", sql)
        page.click("#run")
        page.wait_for_selector("#result table")
        cells = page.eval_on_selector_all(
            "#result table tbody tr",
            "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))")
        shown = sorted((a, int(n.replace(",", ""))) for a, n in cells)
        want = sorted((a, n) for a, n in oracle.rows(
            "SELECT album_type, count(*) FROM tracks GROUP BY 1", []))
        check(shown == want, f"the workbench shows {shown}, DuckDB {want}")
        # The history is drawn after the result, from the server's list of kept results.
        try:
            page.wait_for_selector("#history li", timeout=10_000)
        except Exception:  # Playwright's TimeoutError: reported as the check below
            pass
        check(page.locator("#history li").count() >= 1, "the query is not in the history")
        print("ok   SQL workbench: rows equal DuckDB, history kept")

        # The runs page in the embedded mode: the run that wrote the table, from the catalog.
        page.goto(f"{base}/runs")
        rows = page.eval_on_selector_all(
            "#runs tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))")
        check([r for r in rows if r[0] == args.run_id and r[2] == "SUCCEEDED"
               and "spotify.tracks" in r[1]],
              f"the runs page does not show run {args.run_id} SUCCEEDED: {rows}")
        print("ok   runs page: the run that wrote spotify.tracks, SUCCEEDED")

        check(not errors, f"JavaScript errors on the pages: {errors}")
        browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("table_dir")
    parser.add_argument("run_id")
    parser.add_argument("--screenshot")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    try:
        run(args)
    except Failure as e:
        print(f"FAIL {e}", file=sys.stderr)
        sys.exit(1)
    print("all browser checks passed")


if __name__ == "__main__":
    main()
