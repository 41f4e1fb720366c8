// Sluice: the drill-through rows page and the SQL workbench (editor, result table, CSV,
// query history kept in this browser with duration and rows).
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

  // The SQL workbench.
  const editor = document.getElementById("sql");
  if (!editor) return;
  const result = document.getElementById("result");
  const historyBox = document.getElementById("history");
  const KEY = "sluice.sql.history";
  const load = () => { try { return JSON.parse(localStorage.getItem(KEY) || "[]"); } catch (e) { return []; } };

  function showHistory() {
    historyBox.textContent = "";
    for (const h of load()) {
      const a = el("a", { href: "#", text: h.sql.slice(0, 120) });
      a.addEventListener("click", (e) => { e.preventDefault(); editor.value = h.sql; });
      historyBox.appendChild(el("li", {}, [a, document.createTextNode(" — " + h.at + ", " + h.ms + " ms, " + h.rows + " rows" + (h.error ? ", failed" : ""))]));
    }
  }

  function run() {
    const sql = editor.value;
    result.textContent = "Running…";
    const started = performance.now();
    fetch("/api/sql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sql: sql }),
    })
      .then((r) => r.json().then((j) => ({ ok: r.ok, body: j })))
      .then(({ ok, body }) => {
        const ms = Math.round(performance.now() - started);
        result.textContent = "";
        const entry = { sql: sql, at: new Date().toISOString().slice(0, 19).replace("T", " "), ms: ms, rows: ok ? body.row_count : 0, error: !ok };
        const history = [entry, ...load().filter((h) => h.sql !== sql)].slice(0, 50);
        localStorage.setItem(KEY, JSON.stringify(history));
        showHistory();
        if (!ok) {
          result.appendChild(el("div", { class: "panel-error", text: body.error.message }));
          return;
        }
        result.appendChild(el("p", { class: "muted", text: body.row_count + " rows in " + body.elapsed_ms + " ms" + (body.truncated ? " (first 10000 shown)" : "") }));
        result.appendChild(table(body.columns, body.rows));
      });
  }

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

  document.getElementById("run").addEventListener("click", run);
  document.getElementById("csv").addEventListener("click", csv);
  editor.addEventListener("keydown", (e) => { if ((e.ctrlKey || e.metaKey) && e.key === "Enter") run(); });
  showHistory();
})();
