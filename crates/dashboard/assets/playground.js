// Sluice playground: build a panel (dashboard, dataset, fields on x / y / series, a visual),
// preview it exactly as the dashboard page draws it (SluiceCharts.draw from dashboard.js),
// and save it into the dashboard's YAML file. The server builds and checks the file; this
// page only gathers the choices.
(function () {
  "use strict";

  const boot = JSON.parse(document.getElementById("playground").textContent);
  const NEW = "__new__";
  const $ = (id) => document.getElementById(id);
  let columns = []; // [{name, type, numeric}] of the chosen dataset
  let ticket = 0;
  let timer = null;

  function option(value, text, selected) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    if (selected) o.selected = true;
    return o;
  }

  function fill(select, values, keep, blank) {
    const before = keep ? select.value : null;
    select.textContent = "";
    if (blank !== undefined) select.appendChild(option("", blank));
    for (const v of values) select.appendChild(option(v.value, v.text));
    if (before !== null && values.some((v) => v.value === before)) select.value = before;
  }

  function dashboard() {
    return boot.dashboards.find((d) => d.id === $("pg-dashboard").value) || null;
  }

  function fillDashboards() {
    const chosen = new URLSearchParams(window.location.search).get("dashboard");
    fill($("pg-dashboard"), boot.dashboards.map((d) => ({ value: d.id, text: d.title + " (" + d.id + ")" })));
    $("pg-dashboard").appendChild(option(NEW, "New dashboard…"));
    if (chosen && boot.dashboards.some((d) => d.id === chosen)) $("pg-dashboard").value = chosen;
    if (!boot.dashboards.length) $("pg-dashboard").value = NEW;
  }

  function fillDatasets() {
    const d = dashboard();
    const sets = d ? d.datasets : [];
    fill($("pg-dataset"), sets.map((s) => ({ value: s.name, text: s.name + (s.error ? " (" + s.error + ")" : "") })), true);
    $("pg-dataset").appendChild(option(NEW, "New dataset (SQL)…"));
    if (!sets.length) $("pg-dataset").value = NEW;
  }

  function newDashboard() {
    return $("pg-dashboard").value === NEW;
  }

  function newDataset() {
    return $("pg-dataset").value === NEW;
  }

  function showFields() {
    $("pg-fields").textContent = columns.length ? "Fields: " + columns.map((c) => c.name + " (" + c.type + ")").join(", ") : "";
    const all = columns.map((c) => ({ value: c.name, text: c.name }));
    fill($("pg-x"), all, true);
    fill($("pg-y"), [{ value: "*", text: "* (rows)" }].concat(all), true);
    fill($("pg-value"), [{ value: "*", text: "* (rows)" }].concat(all), true);
    fill($("pg-series"), all, true, "(none)");
    fill($("pg-columns"), all, false);
  }

  async function loadColumns() {
    if (newDataset()) {
      const sql = $("pg-sql").value.trim();
      columns = [];
      if (sql) {
        const r = await fetch("/api/playground/columns", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql: sql }) });
        const body = await r.json();
        if (r.ok) columns = body.columns;
        else $("pg-status").textContent = body.error ? body.error.message : "the SQL does not plan";
      }
    } else {
      const d = dashboard();
      const s = d && d.datasets.find((s) => s.name === $("pg-dataset").value);
      columns = s ? s.columns : [];
    }
    showFields();
    shape();
  }

  // Which controls the visual takes.
  function shape() {
    const type = $("pg-type").value;
    const show = (id, on) => $(id).classList.toggle("hidden", !on);
    show("pg-x-box", !["kpi", "table"].includes(type));
    show("pg-y-box", type !== "table");
    show("pg-value-box", type === "heatmap");
    show("pg-series-box", ["bar", "line", "area", "scatter"].includes(type));
    show("pg-columns-box", type === "table");
    const keys = type === "table" ? Array.from($("pg-columns").selectedOptions).map((o) => o.value) : ["x", "y"].concat(type === "heatmap" ? ["value"] : []);
    const sorts = [];
    for (const k of type === "kpi" ? [] : keys) {
      sorts.push({ value: k, text: k + " ↑" }, { value: "-" + k, text: k + " ↓" });
    }
    fill($("pg-sort"), sorts, true, "(default)");
    const yAgg = $("pg-y-agg");
    // A scatter and a heatmap's y are columns; a KPI's is an aggregate.
    yAgg.disabled = type === "scatter" || type === "heatmap";
    if (yAgg.disabled) yAgg.value = "";
    if (type === "kpi" && !yAgg.value) yAgg.value = "count";
  }

  function field(agg, column) {
    if (!agg) return column === "*" ? "" : column;
    return agg + "(" + (column || "*") + ")";
  }

  // The draft the server builds the file from.
  function draft() {
    const type = $("pg-type").value;
    const p = { id: $("pg-panel-id").value.trim(), title: $("pg-panel-title").value, type: type };
    if (!["kpi", "table"].includes(type)) p.x = $("pg-x").value;
    if (type !== "table") p.y = field($("pg-y-agg").value, $("pg-y").value);
    if (type === "heatmap") p.value = field($("pg-value-agg").value, $("pg-value").value);
    if (["bar", "line", "area", "scatter"].includes(type) && $("pg-series").value) p.series = $("pg-series").value;
    if (type === "table") p.columns = Array.from($("pg-columns").selectedOptions).map((o) => o.value);
    if ($("pg-sort").value) p.sort = $("pg-sort").value;
    if ($("pg-limit").value) p.limit = Number($("pg-limit").value);
    if ($("pg-format").value.trim()) p.format = $("pg-format").value.trim();
    if (!p.id) p.id = "new_panel";
    const d = { dashboard: newDashboard() ? $("pg-new-id").value.trim() : $("pg-dashboard").value, panel: p };
    if (newDashboard()) d.title = $("pg-new-title").value;
    if (newDataset()) {
      d.dataset = $("pg-dataset-name").value.trim() || "data";
      d.sql = $("pg-sql").value;
    } else {
      d.dataset = $("pg-dataset").value;
    }
    return d;
  }

  async function post(path, body) {
    const r = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    let json = null;
    try { json = await r.json(); } catch (e) { json = { error: { message: r.status + " " + r.statusText } }; }
    return { ok: r.ok, status: r.status, body: json };
  }

  // Preview: the server builds the file, the loader checks it, the panel's query runs.
  async function preview() {
    const mine = ++ticket;
    const body = $("pg-preview");
    body.classList.add("loading");
    const r = await post("/api/playground/preview", draft());
    if (mine !== ticket) return;
    body.classList.remove("loading");
    if (!r.ok) {
      window.SluiceCharts.draw(body, { type: "table", encoding: {} }, false, r.body);
      $("pg-yaml").textContent = "";
      $("pg-preview").dataset.state = "invalid";
      return;
    }
    $("pg-preview-title").textContent = r.body.panel.title;
    window.SluiceCharts.draw(body, r.body.panel, r.body.ok, r.body.data);
    $("pg-yaml").textContent = r.body.yaml;
    $("pg-preview").dataset.state = r.body.ok ? "ok" : "error";
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(preview, 250);
  }

  async function save() {
    $("pg-status").textContent = "Saving…";
    $("pg-saved").textContent = "";
    const r = await post("/api/playground/save", draft());
    if (!r.ok) {
      $("pg-status").textContent = "";
      const e = document.createElement("div");
      e.className = "panel-error";
      e.id = "pg-save-error";
      e.textContent = (r.body.error && r.body.error.message) || "the save failed";
      $("pg-saved").appendChild(e);
      return;
    }
    $("pg-status").textContent = "Saved to " + r.body.file + ".";
    const a = document.createElement("a");
    a.id = "pg-saved-link";
    a.href = r.body.url;
    a.textContent = "Open the dashboard";
    $("pg-saved").appendChild(a);
    // The new dashboard or dataset is now in the file: list it as an existing one.
    const info = await fetch("/api/playground").then((x) => x.json());
    boot.dashboards = info.dashboards;
    const keepDataset = draft().dataset;
    fillDashboards();
    $("pg-dashboard").value = r.body.id;
    $("pg-new").classList.add("hidden");
    fillDatasets();
    $("pg-dataset").value = keepDataset;
    $("pg-new-dataset").classList.toggle("hidden", !newDataset());
  }

  function tables() {
    fetch("/api/catalog").then((r) => r.json()).then((body) => {
      const names = (body.tables || []).map((t) => t.database + "." + t.name);
      $("pg-tables").textContent = names.length ? "Tables: " + names.join(", ") : "No tables yet.";
    }).catch(() => {});
  }

  $("pg-dashboard").addEventListener("change", () => {
    $("pg-new").classList.toggle("hidden", !newDashboard());
    fillDatasets();
    $("pg-new-dataset").classList.toggle("hidden", !newDataset());
    loadColumns().then(later);
  });
  $("pg-dataset").addEventListener("change", () => {
    $("pg-new-dataset").classList.toggle("hidden", !newDataset());
    loadColumns().then(later);
  });
  $("pg-plan").addEventListener("click", () => loadColumns().then(later));
  $("pg-type").addEventListener("change", () => { shape(); later(); });
  $("pg-columns").addEventListener("change", () => { shape(); later(); });
  for (const id of ["pg-x", "pg-y-agg", "pg-y", "pg-value-agg", "pg-value", "pg-series", "pg-sort", "pg-limit", "pg-format", "pg-panel-id", "pg-panel-title", "pg-new-id", "pg-new-title", "pg-dataset-name"]) {
    $(id).addEventListener("change", later);
  }
  $("pg-save").addEventListener("click", save);
  if (!boot.can_save) {
    $("pg-save").title = boot.save_refusal || "";
  }
  if (!boot.new_dashboards) {
    $("pg-new").title = boot.new_dashboard_refusal || "";
  }
  window.addEventListener("resize", () => {
    const chart = window.echarts.getInstanceByDom($("pg-preview"));
    if (chart) chart.resize();
  });

  fillDashboards();
  $("pg-new").classList.toggle("hidden", !newDashboard());
  fillDatasets();
  $("pg-new-dataset").classList.toggle("hidden", !newDataset());
  tables();
  loadColumns().then(later);
})();
