"""Drives the dashboard playground (/playground) of `sluice serve` in a real Chromium
(Playwright), and checks what it saves.

    browser_playground.py URL TABLE_DIR DASHBOARDS_DIR --engineer NAME --analyst NAME --password PW

URL is the server, TABLE_DIR the folder of spotify.tracks' current version, DASHBOARDS_DIR
the folder the server was given with --dashboards (holding spotify.yaml). Both users have
the password PW. The engineer builds a bar panel (album_type on x, count(*) on y) and saves
it; the saved YAML is parsed (PyYAML) and its panel checked; the saved panel's data from the
API equals DuckDB's aggregate over the Parquet files; the file is edited on disk and the
dashboard page shows the change; the analyst's save is refused (403) and a cross-site POST
is refused, the file unchanged both times. Exits non-zero with a message on the first
difference.
"""

import argparse
import math
import os
import sys

import duckdb
import yaml
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
PANEL = "album_types_built"
TITLE = "Album types (built in the playground)"
EDITED = "Album types, renamed in the file"


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def norm(v):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        f = float(v)
        return "NaN" if math.isnan(f) else float(f"{f:.9g}")
    return str(v)


def norm_rows(rows):
    return sorted((tuple(norm(v) for v in r) for r in rows), key=repr)


def login(context, base, user, password):
    page = context.new_page()
    page.goto(f"{base}/login?next=/playground")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("form button")
    page.wait_for_url("**/playground**")
    return page


def wait_preview(page, state="ok"):
    page.wait_for_function(
        f"document.getElementById('pg-preview').dataset.state === '{state}'", timeout=60000
    )


def save_request(page, base, body, origin):
    """POSTs a save through the browser's session (its cookie), with an `Origin`."""
    return page.request.post(
        f"{base}/api/playground/save",
        data=body,
        headers={"content-type": "application/json", "origin": origin},
    )


def run(args):
    base = args.url.rstrip("/")
    file = os.path.join(args.dashboards_dir, "spotify.yaml")
    db = duckdb.connect()
    expected = db.execute(
        "SELECT album_type, count(*) FROM read_parquet(?, hive_partitioning = false) GROUP BY 1",
        [f"{args.table_dir}/**/*.parquet"],
    ).fetchall()
    check(len(expected) >= 2, f"DuckDB found too few album types: {expected}")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        errors = []

        # The engineer builds the panel.
        eng = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = login(eng, base, args.engineer, args.password)
        page.on("pageerror", lambda e: errors.append(str(e)))
        check(page.locator("#pg-readonly").count() == 0, "the engineer is told they may not save")
        page.select_option("#pg-dashboard", "spotify")
        page.select_option("#pg-dataset", "tracks")
        fields = page.inner_text("#pg-fields")
        check("album_type" in fields and "release_year" in fields, f"the dataset's fields are not listed: {fields}")
        page.select_option("#pg-type", "bar")
        page.select_option("#pg-x", "album_type")
        page.select_option("#pg-y-agg", "count")
        page.select_option("#pg-y", "*")
        page.select_option("#pg-sort", "-y")
        page.fill("#pg-panel-id", PANEL)
        page.fill("#pg-panel-title", TITLE)
        page.dispatch_event("#pg-panel-title", "change")
        page.wait_for_function(
            f"document.getElementById('pg-yaml').textContent.includes('id: {PANEL}')"
            " && document.getElementById('pg-preview').dataset.state === 'ok'",
            timeout=60000,
        )
        # The preview is drawn by the dashboard page's renderer: an ECharts bar chart of the data.
        option = page.evaluate(
            "() => { const c = echarts.getInstanceByDom(document.getElementById('pg-preview'));"
            " return c ? JSON.parse(JSON.stringify(c.getOption())) : null; }"
        )
        check(option is not None, "the preview drew no chart")
        check(option["series"][0]["type"] == "bar", f"the preview is not a bar chart: {option['series']}")
        drawn = dict(zip(option["xAxis"][0]["data"], option["series"][0]["data"]))
        check(
            norm_rows(drawn.items()) == norm_rows(expected),
            f"the preview drew {drawn}, DuckDB says {expected}",
        )
        yaml_shown = page.inner_text("#pg-yaml")
        check(f"title: {TITLE}" in yaml_shown, f"the file shown lacks the panel:\n{yaml_shown}")
        print("ok   preview: a bar chart of DuckDB's counts per album type, and the file it saves")

        page.click("#pg-save")
        page.wait_for_selector("#pg-saved-link", timeout=60000)
        check(page.get_attribute("#pg-saved-link", "href") == "/dashboards/spotify", "the save links elsewhere")

        # The YAML on disk.
        with open(file, encoding="utf-8") as f:
            text = f.read()
        doc = yaml.safe_load(text)
        panels = [p for p in doc["panels"] if p["id"] == PANEL]
        check(len(panels) == 1, f"the saved file has no panel {PANEL}:\n{text}")
        p = panels[0]
        check(p["type"] == "bar" and p["dataset"] == "tracks" and p["title"] == TITLE, f"the panel is wrong: {p}")
        check(
            p["encoding"] == {"x": "album_type", "y": "count(*)", "sort": "-y"},
            f"the panel's encoding is wrong: {p['encoding']}",
        )
        check(len(doc["panels"]) == 11, "the other ten panels are kept")
        check(text.startswith("# The Spotify 2023 dashboard"), "the header comment was lost")
        check("    sql: |\n" in text, "the dataset's SQL is not a block")
        check("null" not in text, "the file holds nulls")
        print("ok   saved: spotify.yaml holds the panel with the fields chosen, the rest kept")

        # The saved panel's data equals DuckDB's aggregate.
        r = page.request.get(f"{base}/api/dashboards/spotify/panels/{PANEL}/data")
        check(r.status == 200, f"the saved panel's data: {r.status} {r.text()}")
        body = r.json()
        check(body["columns"] == ["album_type", "count(*)"], f"columns {body['columns']}")
        check(norm_rows(body["rows"]) == norm_rows(expected), f"API {body['rows']} != DuckDB {expected}")
        counts = [row[1] for row in body["rows"]]
        check(counts == sorted(counts, reverse=True), f"not sorted by count descending: {counts}")
        print("ok   data: the saved panel's rows equal DuckDB's over the Parquet files")

        # The link opens the dashboard with the new panel drawn.
        page.click("#pg-saved-link")
        page.wait_for_url("**/dashboards/spotify")
        page.wait_for_function(
            f"document.getElementById('panel-body-{PANEL}') && document.getElementById('panel-body-{PANEL}').dataset.rows === '{len(expected)}'",
            timeout=60000,
        )
        check(page.inner_text(f"#panel-{PANEL} h3") == TITLE, "the dashboard shows another title")

        # Editing the file changes what the browser shows.
        edited = text.replace(f"title: {TITLE}", f"title: {EDITED}")
        check(edited != text, "the title is not in the file as written")
        with open(file, "w", encoding="utf-8") as f:
            f.write(edited)
        page.reload()
        page.wait_for_selector(f"#panel-{PANEL} h3")
        shown = page.inner_text(f"#panel-{PANEL} h3")
        check(shown == EDITED, f"after editing the file the page shows {shown!r}")
        print("ok   edit: a title changed in the file shows on the page")

        # A cross-site save is refused, and the file is unchanged.
        draft = {
            "dashboard": "spotify", "dataset": "tracks",
            "panel": {"id": PANEL, "title": "cross-site", "type": "bar", "x": "album_type", "y": "count(*)"},
        }
        r = save_request(page, base, draft, "http://evil.example")
        check(r.status == 403, f"a cross-site save answered {r.status}")
        check("cross_site" in r.text(), f"the refusal does not say cross-site: {r.text()}")
        with open(file, encoding="utf-8") as f:
            check(f.read() == edited, "a cross-site save changed the file")
        print("ok   cross-site: a save from another origin is refused, the file unchanged")

        # The analyst may look and preview, not save.
        ana_context = browser.new_context(viewport={"width": 1400, "height": 1000})
        ana = login(ana_context, base, args.analyst, args.password)
        ana.on("pageerror", lambda e: errors.append(str(e)))
        notice = ana.inner_text("#pg-readonly")
        check("may not write dashboards" in notice, f"the analyst is not told: {notice!r}")
        r = save_request(ana, base, draft, base)
        check(r.status == 403, f"the analyst's save answered {r.status}")
        message = r.json()["error"]["message"]
        check("role analyst may not write dashboards" in message, f"the refusal: {message}")
        # Through the page's own button too.
        ana.select_option("#pg-dashboard", "spotify")
        ana.select_option("#pg-dataset", "tracks")
        ana.fill("#pg-panel-id", "analyst_panel")
        ana.select_option("#pg-x", "album_type")
        ana.select_option("#pg-y-agg", "count")
        ana.select_option("#pg-y", "*")
        ana.click("#pg-save")
        ana.wait_for_selector("#pg-save-error", timeout=60000)
        check("may not write dashboards" in ana.inner_text("#pg-save-error"), "the page shows no refusal")
        with open(file, encoding="utf-8") as f:
            check(f.read() == edited, "the analyst's save changed the file")
        print("ok   analyst: 403 naming the role, shown on the page; the file unchanged")

        check(not errors, f"JavaScript errors: {errors}")
        browser.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("table_dir")
    parser.add_argument("dashboards_dir")
    parser.add_argument("--engineer", required=True)
    parser.add_argument("--analyst", required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    try:
        run(args)
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)
    print("all playground checks passed")


if __name__ == "__main__":
    main()
