// Sluice: the drill-through rows page and the SQL workbench (editor, result table, chart,
// saved queries, and the history of results kept in the lake with duration and rows).
(function () {
  "use strict";

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children || []) e.appendChild(c);
    return e;
  }

  function table(columns, rows) {
    const head = el("tr", {}, columns.map((c) => el("th", { text: c })));
    const body = rows.map((r) => el("tr", {}, r.map((v) => el("td", { text: v === null ? "∅" : String(v) }))));
    return el("table", { class: "rows" }, [el("thead", {}, [head]), el("tbody", {}, body)]);
  }

  // Drill-through: the rows behind a panel, with the page's filters.
  const drill = document.getElementById("drill");
  if (drill) {
    const api = drill.dataset.api + window.location.search;
    const q = window.location.search ? window.location.search + "&" : "?";
    document.getElementById("drill-csv").href = drill.dataset.api + q + "format=csv";
    fetch(api)
      .then((r) => r.json().then((j) => ({ ok: r.ok, body: j })))
      .then(({ ok, body }) => {
        drill.textContent = "";
        if (!ok) {
          drill.appendChild(el("div", { class: "panel-error", text: body.error.message }));
          return;
        }
        drill.appendChild(el("p", { class: "muted", text: body.rows.length + " rows (at most 1000)" }));
        drill.appendChild(table(body.columns, body.rows));
      });
  }

  // The SQL workbench: editor, result table, a chart of the result (the dashboards'
  // renderer, window.SluiceCharts), saved queries kept on the server, and the history of
  // the results the server keeps in the lake (downloadable as CSV or Parquet).
  const editor = document.getElementById("sql");
  if (!editor) return;
  const result = document.getElementById("result");
  const historyBox = document.getElementById("history");
  const chartBox = document.getElementById("chart");
  const controls = document.getElementById("chart-controls");
  const pick = {
    type: document.getElementById("chart-type"),
    x: document.getElementById("chart-x"),
    y: document.getElementById("chart-y"),
    series: document.getElementById("chart-series"),
  };
  const savedSelect = document.getElementById("saved");
  const savedDelete = document.getElementById("saved-delete");
  const savedDescription = document.getElementById("saved-description");
  const KEY = "sluice.sql.history";
  const load = () => { try { return JSON.parse(localStorage.getItem(KEY) || "[]"); } catch (e) { return []; } };
  let current = null; // the last result: {columns, rows}
  let lastRun = null; // the last run, until the server lists it
  let saved = [];

  function json(r) {
    return r.json().then((j) => ({ ok: r.ok, status: r.status, body: j }), () => ({ ok: false, status: r.status, body: { error: { message: "HTTP " + r.status } } }));
  }

  function post(url, body) {
    return fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then(json);
  }

  function downloads(id) {
    const links = [];
    for (const format of ["csv", "parquet"]) {
      links.push(document.createTextNode(" "));
      links.push(el("a", { href: "/api/sql/results/" + encodeURIComponent(id) + "?format=" + format, download: id + "." + format, class: "download-" + format, text: format.toUpperCase() }));
    }
    return links;
  }

  function historyItem(h) {
    const a = el("a", { href: "#", class: "history-sql", text: h.sql.slice(0, 120) });
    a.addEventListener("click", (e) => { e.preventDefault(); editor.value = h.sql; });
    const when = (h.started_at || h.at || "").slice(0, 19).replace("T", " ");
    const who = h.user ? ", " + h.user : "";
    const text = " — " + when + who + ", " + h.elapsed_ms + " ms, " + h.rows + " rows" + (h.error ? ", failed" : "");
    const li = el("li", {}, [a, document.createTextNode(text)]);
    if (h.id) {
      li.dataset.result = h.id;
      for (const link of downloads(h.id)) li.appendChild(link);
    }
    return li;
  }

  // The server's kept results when it keeps them, else this browser's history.
  function showHistory() {
    fetch("/api/sql/results").then(json).then(({ ok, body }) => {
      historyBox.textContent = "";
      const list = ok ? body.results : load();
      if (lastRun && !list.some((h) => h.id && h.id === lastRun.id)) historyBox.appendChild(historyItem(lastRun));
      for (const h of list) historyBox.appendChild(historyItem(h));
    });
  }

  function option(select, names, chosen, none) {
    select.textContent = "";
    if (none) select.appendChild(el("option", { value: "", text: "(none)" }));
    names.forEach((n, i) => {
      const o = el("option", { value: String(i), text: n });
      if (i === chosen) o.selected = true;
      select.appendChild(o);
    });
  }

  // Picks a first chart: x the first column, y the first numeric column after it.
  function chooseColumns() {
    const cols = current.columns;
    const numeric = (i) => current.rows.length > 0 && current.rows.every((r) => r[i] === null || typeof r[i] === "number");
    let y = cols.findIndex((_, i) => i > 0 && numeric(i));
    if (y < 0) y = cols.length > 1 ? 1 : 0;
    option(pick.x, cols, 0, false);
    option(pick.y, cols, y, false);
    option(pick.series, cols, -1, true);
    if (cols.length >= 2 && numeric(y)) pick.type.value = "bar";
    else pick.type.value = "table";
  }

  function drawChart() {
    if (!current) return;
    const type = pick.type.value;
    if (type === "table") {
      chartBox.hidden = true;
      return;
    }
    chartBox.hidden = false;
    const xi = Number(pick.x.value), yi = Number(pick.y.value);
    const si = pick.series.value === "" ? -1 : Number(pick.series.value);
    const cols = [current.columns[xi], current.columns[yi]];
    if (si >= 0) cols.push(current.columns[si]);
    const rows = current.rows.map((r) => (si >= 0 ? [r[xi], r[yi], r[si]] : [r[xi], r[yi]]));
    const panel = { type: type, encoding: { series: si >= 0 ? current.columns[si] : null } };
    window.SluiceCharts.render(chartBox, panel, { columns: cols, rows: rows });
  }

  for (const s of Object.values(pick)) s.addEventListener("change", drawChart);
  window.addEventListener("resize", () => { const c = window.echarts && window.echarts.getInstanceByDom(chartBox); if (c) c.resize(); });

  function run() {
    const sql = editor.value;
    result.textContent = "Running…";
    const started = performance.now();
    post("/api/sql", { sql: sql }).then(({ ok, body }) => {
      const ms = Math.round(performance.now() - started);
      result.textContent = "";
      const entry = { sql: sql, at: new Date().toISOString().slice(0, 19).replace("T", " "), elapsed_ms: ok ? body.elapsed_ms : ms, rows: ok ? body.row_count : 0, error: !ok, id: ok ? body.result_id : null };
      const history = [entry, ...load().filter((h) => h.sql !== sql)].slice(0, 50);
      localStorage.setItem(KEY, JSON.stringify(history));
      lastRun = entry;
      for (const format of ["csv", "parquet"]) {
        const a = document.getElementById("download-" + format);
        a.hidden = !(ok && body.result_id);
        if (ok && body.result_id) {
          a.href = "/api/sql/results/" + encodeURIComponent(body.result_id) + "?format=" + format;
          a.download = body.result_id + "." + format;
        }
      }
      showHistory();
      if (!ok) {
        current = null;
        controls.style.display = "none";
        chartBox.hidden = true;
        result.appendChild(el("div", { class: "panel-error", text: body.error.message }));
        return;
      }
      current = { columns: body.columns, rows: body.rows };
      result.dataset.resultId = body.result_id || "";
      controls.style.display = "";
      chooseColumns();
      drawChart();
      result.appendChild(el("p", { class: "muted", text: body.row_count + " rows in " + body.elapsed_ms + " ms" + (body.truncated ? " (first 10000 shown and charted; the downloads hold all)" : "") }));
      result.appendChild(table(body.columns, body.rows));
    });
  }

  // Without a kept result: runs the query again for its CSV.
  function csv() {
    fetch("/api/sql?format=csv", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sql: editor.value }),
    })
      .then((r) => r.blob())
      .then((blob) => {
        const a = el("a", { href: URL.createObjectURL(blob), download: "query.csv" });
        document.body.appendChild(a);
        a.click();
        a.remove();
      });
  }

  // Saved queries, shared by every user of the server.
  function showSaved(select) {
    return fetch("/api/sql/saved").then(json).then(({ ok, body }) => {
      saved = ok ? body.queries : [];
      savedSelect.textContent = "";
      savedSelect.appendChild(el("option", { value: "", text: ok ? "(open a saved query)" : "(no saved queries on this server)" }));
      for (const q of saved) {
        const o = el("option", { value: q.id, text: q.name + (q.saved_by ? " (" + q.saved_by + ")" : "") });
        if (q.id === select) o.selected = true;
        savedSelect.appendChild(o);
      }
      savedDelete.disabled = !savedSelect.value;
    });
  }

  savedSelect.addEventListener("change", () => {
    const q = saved.find((s) => s.id === savedSelect.value);
    savedDelete.disabled = !q;
    savedDescription.textContent = q ? q.description : "";
    if (!q) return;
    editor.value = q.sql;
    document.getElementById("save-name").value = q.name;
    document.getElementById("save-description").value = q.description;
  });

  const status = document.getElementById("save-status");
  document.getElementById("save").addEventListener("click", () => {
    const name = document.getElementById("save-name").value;
    const description = document.getElementById("save-description").value;
    post("/api/sql/saved", { name: name, sql: editor.value, description: description }).then(({ ok, body }) => {
      status.textContent = ok ? "saved as " + body.name : body.error.message;
      if (ok) showSaved(body.id);
    });
  });

  savedDelete.addEventListener("click", () => {
    const id = savedSelect.value;
    if (!id) return;
    post("/api/sql/saved/" + encodeURIComponent(id) + "/delete", {}).then(({ ok, body }) => {
      status.textContent = ok ? "deleted " + id : body.error.message;
      showSaved(null);
    });
  });

  document.getElementById("run").addEventListener("click", run);
  document.getElementById("csv").addEventListener("click", csv);
  editor.addEventListener("keydown", (e) => { if ((e.ctrlKey || e.metaKey) && e.key === "Enter") run(); });
  showHistory();
  showSaved(null);
})();
