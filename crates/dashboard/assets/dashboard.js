// Sluice dashboards: renders a dashboard page's panels with ECharts from the JSON API.
// Filters live in the URL (share a view by sharing it); clicking a bar or slice filters the
// other panels; each panel links to its rows, its CSV and a PNG of its chart.
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

  // Number formats: [,][.N][f|%|s] (see the README).
  function formatNumber(v, f) {
    if (typeof v !== "number") return v === null || v === undefined ? "" : String(v);
    if (!f) return Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { maximumFractionDigits: 2 });
    const opts = { useGrouping: f.grouping };
    const hasDecimals = f.decimals !== null && f.decimals !== undefined;
    if (f.style === "s") {
      // As in d3-format, a compact number's precision is its significant digits.
      opts.notation = "compact";
      opts.maximumSignificantDigits = hasDecimals ? Math.max(1, f.decimals) : 3;
    } else if (hasDecimals) {
      opts.minimumFractionDigits = f.decimals;
      opts.maximumFractionDigits = f.decimals;
    }
    if (f.style === "%") opts.style = "percent";
    return new Intl.NumberFormat("en-US", opts).format(v);
  }

  function rowsTable(columns, rows, format) {
    const head = el("tr", {}, columns.map((c) => el("th", { text: c })));
    const body = rows.map((r) =>
      el("tr", {}, r.map((v) => el("td", { text: typeof v === "number" ? formatNumber(v, format) : v === null ? "∅" : String(v) })))
    );
    return el("table", { class: "rows" }, [el("thead", {}, [head]), el("tbody", {}, body)]);
  }

  // Draws one panel's answer into `body` as the dashboard page shows it: the error, the
  // KPI's number, the table, or the chart (the node's ECharts instance reused). `panel` is
  // the API's panel ({type, encoding}), `data` the data API's body ({columns, rows}, or
  // {error} when `ok` is false). Returns the chart, or null when there is none.
  function drawPanel(body, panel, ok, data) {
    body.classList.remove("loading");
    body.dataset.rows = ok ? String(data.rows.length) : "error";
    const old = window.echarts.getInstanceByDom(body);
    if (!ok || panel.type === "kpi" || panel.type === "table") {
      if (old) old.dispose();
      body.textContent = "";
      if (!ok) {
        body.appendChild(el("div", { class: "panel-error", text: (data && data.error && data.error.message) || "the query failed" }));
      } else if (panel.type === "kpi") {
        const v = data.rows.length ? data.rows[0][0] : null;
        body.appendChild(el("div", { class: "kpi", text: formatNumber(v, panel.encoding.format) }));
      } else {
        body.appendChild(rowsTable(data.columns, data.rows, panel.encoding.format));
      }
      return null;
    }
    let chart = old;
    if (!chart) {
      body.textContent = "";
      chart = window.echarts.init(body);
    }
    chart.setOption(option(panel, data), true);
    return chart;
  }

  // Exported for the drill-through and SQL pages.
  window.SluiceTable = rowsTable;
  // The renderers, for the SQL workbench and the playground. `render` draws `data`
  // ({columns, rows}, columns in the order x, y[, series]) as `panel` ({type, encoding:
  // {series, format}}) into `node` as a chart, reusing the node's chart; returns the
  // ECharts instance. `draw` is drawPanel above: any panel type, or its error.
  window.SluiceCharts = {
    render: function (node, panel, data) {
      const chart = window.echarts.getInstanceByDom(node) || window.echarts.init(node);
      chart.setOption(option(panel, data), true);
      return chart;
    },
    draw: drawPanel,
  };

  const boot = document.getElementById("dashboard");
  if (!boot) return;
  const dashboard = JSON.parse(boot.textContent);
  const base = "/api/dashboards/" + encodeURIComponent(dashboard.id);
  const charts = {};
  const tickets = {};

  function params() {
    return new URLSearchParams(window.location.search);
  }

  function setParams(p) {
    const q = p.toString();
    window.history.pushState(null, "", q ? "?" + q : window.location.pathname);
    refresh();
  }

  // The filter controls, filled from the URL or the defaults.
  function buildFilters() {
    const box = document.getElementById("filters");
    const p = params();
    for (const f of dashboard.filters) {
      const label = el("label", { text: f.label + " " });
      const has = p.has(f.id);
      if (f.type === "dropdown" || f.type === "multi_select") {
        const select = el("select", { id: "filter-" + f.id, "data-filter": f.id });
        if (f.type === "multi_select") select.multiple = true;
        else select.appendChild(el("option", { value: "", text: "(all)" }));
        const chosen = has ? p.getAll(f.id) : f.default;
        fetch(base + "/filters/" + encodeURIComponent(f.id) + "/options")
          .then((r) => r.json())
          .then((body) => {
            for (const v of body.values || []) {
              const o = el("option", { value: v, text: v });
              if (chosen.includes(v)) o.selected = true;
              select.appendChild(o);
            }
          });
        select.addEventListener("change", () => {
          const q = params();
          q.delete(f.id);
          const values = Array.from(select.selectedOptions).map((o) => o.value).filter((v) => v !== "");
          if (values.length === 0) q.set(f.id, "");
          for (const v of values) q.append(f.id, v);
          setParams(q);
        });
        label.appendChild(select);
      } else {
        const type = f.type === "date_range" ? "date" : "number";
        let from = f.default[0] || "", to = f.default[1] || "";
        if (has) {
          const [a, b] = (p.get(f.id) || "").split("..");
          from = a || "";
          to = b === undefined ? a || "" : b;
        }
        const a = el("input", { type: type, id: "filter-" + f.id + "-from", value: from, size: "8" });
        const b = el("input", { type: type, id: "filter-" + f.id + "-to", value: to, size: "8" });
        const change = () => {
          const q = params();
          q.set(f.id, a.value || b.value ? a.value + ".." + b.value : "");
          setParams(q);
        };
        a.addEventListener("change", change);
        b.addEventListener("change", change);
        label.append(a, document.createTextNode(" – "), b);
      }
      box.appendChild(label);
    }
    // Click filters (eq.<column>) are shown so they can be removed.
    const clicks = el("span", { id: "click-filters" });
    box.appendChild(clicks);
  }

  function showClickFilters() {
    const box = document.getElementById("click-filters");
    box.textContent = "";
    for (const [k, v] of params()) {
      if (!k.startsWith("eq.")) continue;
      const chip = el("button", { class: "chip", title: "remove this filter", text: k.slice(3) + " = " + v + " ✕" });
      chip.addEventListener("click", () => {
        const q = params();
        const rest = q.getAll(k).filter((x) => x !== v);
        q.delete(k);
        for (const x of rest) q.append(k, x);
        setParams(q);
      });
      box.appendChild(chip);
    }
  }

  // Clicking a category filters the other panels: through a filter on that column when
  // the dashboard has one, else through eq.<column>.
  function clickFilter(column, value) {
    const q = params();
    const f = dashboard.filters.find((f) => f.column === column && (f.type === "dropdown" || f.type === "multi_select"));
    const key = f ? f.id : "eq." + column;
    const current = q.getAll(key);
    q.delete(key);
    if (!(current.length === 1 && current[0] === String(value))) q.append(key, String(value));
    else if (f) q.set(key, "");
    setParams(q);
  }

  function xColumn(panel) {
    const x = panel.encoding.x;
    return x && x.kind === "column" ? x.name : null;
  }

  function option(panel, data) {
    const cols = data.columns, rows = data.rows, fmt = panel.encoding.format;
    const axisFmt = (v) => formatNumber(v, fmt);
    const hasSeries = !!panel.encoding.series;
    const type = panel.type;
    if (type === "pie") {
      return {
        tooltip: { trigger: "item", valueFormatter: axisFmt },
        legend: { type: "scroll", bottom: 0 },
        series: [{ type: "pie", radius: ["35%", "70%"], data: rows.map((r) => ({ name: String(r[0]), value: r[1] })) }],
      };
    }
    if (type === "heatmap") {
      const xs = [...new Set(rows.map((r) => String(r[0])))];
      const ys = [...new Set(rows.map((r) => String(r[1])))];
      const values = rows.map((r) => r[2]).filter((v) => typeof v === "number");
      return {
        tooltip: { position: "top" },
        grid: { left: 80, right: 20, top: 10, bottom: 60 },
        xAxis: { type: "category", data: xs, name: cols[0] },
        yAxis: { type: "category", data: ys, name: cols[1] },
        visualMap: { min: values.length ? Math.min(...values) : 0, max: values.length ? Math.max(...values) : 1, calculable: true, orient: "horizontal", left: "center", bottom: 0 },
        series: [{ type: "heatmap", data: rows.map((r) => [xs.indexOf(String(r[0])), ys.indexOf(String(r[1])), r[2]]) }],
      };
    }
    if (type === "scatter") {
      const groups = new Map();
      for (const r of rows) {
        const k = hasSeries ? String(r[2]) : cols[1];
        if (!groups.has(k)) groups.set(k, []);
        groups.get(k).push([r[0], r[1]]);
      }
      return {
        tooltip: { trigger: "item" },
        legend: hasSeries ? { type: "scroll", bottom: 0 } : undefined,
        grid: { left: 60, right: 20, top: 20, bottom: hasSeries ? 50 : 40 },
        xAxis: { type: "value", name: cols[0], scale: true },
        yAxis: { type: "value", name: cols[1], scale: true, axisLabel: { formatter: axisFmt } },
        series: [...groups].map(([name, d]) => ({ type: "scatter", name: name, data: d, symbolSize: 6 })),
      };
    }
    // bar, line, area: categories on x, one series per series value.
    const xs = [...new Set(rows.map((r) => String(r[0])))];
    const names = hasSeries ? [...new Set(rows.map((r) => String(r[2])))] : [cols[1]];
    const series = names.map((name) => {
      const byX = new Map();
      for (const r of rows) if (!hasSeries || String(r[2]) === name) byX.set(String(r[0]), r[1]);
      return {
        name: name,
        type: type === "bar" ? "bar" : "line",
        areaStyle: type === "area" ? {} : undefined,
        stack: type === "area" && hasSeries ? "total" : undefined,
        data: xs.map((x) => (byX.has(x) ? byX.get(x) : null)),
      };
    });
    return {
      tooltip: { trigger: "axis", valueFormatter: axisFmt },
      legend: hasSeries ? { type: "scroll", bottom: 0 } : undefined,
      grid: { left: 60, right: 20, top: 20, bottom: hasSeries ? 70 : 50, containLabel: true },
      xAxis: { type: "category", data: xs, axisLabel: { rotate: xs.length > 8 ? 30 : 0 } },
      yAxis: { type: "value", axisLabel: { formatter: axisFmt } },
      series: series,
    };
  }

  function renderPanel(panel) {
    const body = document.getElementById("panel-body-" + panel.id);
    const q = params().toString();
    const suffix = q ? "?" + q : "";
    document.getElementById("panel-rows-" + panel.id).href = "/dashboards/" + encodeURIComponent(dashboard.id) + "/panels/" + encodeURIComponent(panel.id) + "/rows" + suffix;
    document.getElementById("panel-csv-" + panel.id).href = base + "/panels/" + encodeURIComponent(panel.id) + "/data?" + (q ? q + "&" : "") + "format=csv";
    body.classList.add("loading");
    // Only the newest request of a panel is drawn: an older answer arriving late is dropped.
    const ticket = (tickets[panel.id] || 0) + 1;
    tickets[panel.id] = ticket;
    fetch(base + "/panels/" + encodeURIComponent(panel.id) + "/data" + suffix)
      .then((r) => r.json().then((j) => ({ ok: r.ok, body: j })))
      .then(({ ok, body: data }) => {
        if (tickets[panel.id] !== ticket) return;
        const chart = drawPanel(body, panel, ok, data);
        if (!chart) {
          delete charts[panel.id];
        } else if (charts[panel.id] !== chart) {
          charts[panel.id] = chart;
          const column = xColumn(panel);
          if (column) chart.on("click", (e) => clickFilter(column, e.name));
        }
      })
      .catch((e) => {
        body.classList.remove("loading");
        body.textContent = "";
        body.appendChild(el("div", { class: "panel-error", text: String(e) }));
      });
  }

  function refresh() {
    showClickFilters();
    for (const p of dashboard.panels) renderPanel(p);
  }

  // PNG export of a chart.
  document.addEventListener("click", (e) => {
    const a = e.target.closest("a[data-png]");
    if (!a) return;
    const chart = charts[a.dataset.png];
    if (!chart) { e.preventDefault(); return; }
    a.href = chart.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: "#fff" });
    a.download = dashboard.id + "-" + a.dataset.png + ".png";
  });

  window.addEventListener("popstate", () => {
    document.getElementById("filters").textContent = "";
    buildFilters();
    refresh();
  });
  window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));
  buildFilters();
  refresh();
})();
