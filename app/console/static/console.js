/* RouteIQ console: fills the server-rendered pages from /ui/api (no framework, no CDN).
   Every value from the API goes into the page as text (textContent), never as HTML. */
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const page = document.body.dataset.page;
  const $ = (sel) => document.querySelector(sel);
  const fmt = new Intl.NumberFormat("en", { maximumFractionDigits: 2 });
  const money = (v) => (v == null ? "–" : "$" + Number(v).toFixed(Math.abs(v) < 1 ? 6 : 2));
  const num = (v) => (v == null ? "–" : fmt.format(v));
  const when = (v) => (v ? new Date(v).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "–");

  function status(text) { const s = $("#status"); if (s) s.textContent = text; }

  async function api(path, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    if (opts.method && opts.method !== "GET") {
      opts.headers["x-csrf-token"] = csrf;
      opts.headers["content-type"] = "application/json";
    }
    const resp = await fetch("/ui/api/" + path, opts);
    if (resp.status === 401) { window.location.assign("/ui/login"); throw new Error("signed out"); }
    const body = await resp.json();
    if (!resp.ok) throw new Error((body.error && body.error.message) || resp.statusText);
    return body;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
    return node;
  }

  function fillTable(table, rows) {
    const body = table.querySelector("tbody");
    body.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c) =>
      c instanceof Node && c.tagName === "TD" ? c : el("td", typeof c === "number" || /^\$[0-9]/.test(c) ? { class: "num" } : {}, c)))));
    if (!rows.length) {
      const cols = table.querySelectorAll("thead th").length || 1;
      body.append(el("tr", {}, el("td", { colspan: cols, class: "empty" }, "Nothing in this range yet.")));
    }
  }

  const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569"];
  const charts = {};
  function chart(id, x, series, opts) {
    const host = document.getElementById(id);
    if (!host || !window.uPlot) return;
    if (charts[id]) charts[id].destroy();
    host.replaceChildren();
    const width = Math.max(280, host.clientWidth || 480);
    const o = Object.assign({ width: width, height: 200, series: [{}], axes: [{}, {}], legend: { show: true },
      scales: { y: { range: (u, lo, hi) => [Math.min(0, lo), hi > 0 ? hi * 1.1 : 1] } } }, opts || {});
    const ticks = (u, vals) => vals.map((v) => (v !== 0 && Math.abs(v) < 0.01 ? Number(v.toPrecision(2)).toExponential() : fmt.format(v)));
    if (!o.axes[1] || !o.axes[1].values) o.axes[1] = Object.assign({ size: 64 }, o.axes[1] || {}, { values: ticks });
    if (opts && opts.scales && !opts.scales.y) o.scales.y = { range: (u, lo, hi) => [Math.min(0, lo), hi > 0 ? hi * 1.1 : 1] };
    series.forEach((s, i) => o.series.push(Object.assign({ stroke: PALETTE[i % PALETTE.length], width: 2,
      points: { show: x.length < 3 || s.points } }, s)));
    const data = [x].concat(series.map((s) => s.data));
    series.forEach((s) => delete s.data);
    if (!x.length) { host.append(el("p", { class: "empty" }, "No data in this range yet.")); return; }
    charts[id] = new uPlot(o, data, host);
  }

  function hours() { const h = $("#hours"); return h ? h.value : "1"; }

  // Overview -----------------------------------------------------------------------------------
  async function overview() {
    status("Loading…");
    const d = await api("overview?hours=" + hours());
    const t = d.totals, q = d.request_totals, r = d.routed_totals;
    const ms = (v) => v == null ? "–" : num(v) + " ms";
    const tiles = [["Requests", num(q.requests)], ["Errors", num(q.errors)], ["p50 latency", ms(q.p50_ms)],
      ["p95 latency", ms(q.p95_ms)], ["Tokens", num(t.tokens)], ["Spend", money(t.cost)],
      ["Routed", num(r.requests)], ["Fallbacks", num(r.fallbacks)]];
    $("#tiles").replaceChildren(...tiles.map(([k, v]) => el("div", { class: "tile" }, el("dt", {}, k), el("dd", {}, v))));
    const tr = d.traffic, rq = d.requests;
    chart("chart-requests", rq.t, [{ label: "requests", data: rq.requests }, { label: "errors", data: rq.errors }]);
    chart("chart-latency", rq.t, [{ label: "p50", data: rq.p50 }, { label: "p95", data: rq.p95 }]);
    chart("chart-tokens", tr.t, [{ label: "tokens", data: tr.tokens }]);
    chart("chart-cost", tr.t, [{ label: "spend $", data: tr.cost }]);
    fillTable($("#by-model"), d.by_model.map((m) => [m.model, m.requests, m.errors, m.p50_ms ?? "–", m.p95_ms ?? "–", m.tokens, money(m.cost)]));
    fillTable($("#by-router"), d.by_router.map((m) => [m.router, m.requests, m.errors, m.fallbacks, m.p50_ms, m.p95_ms]));
    $("#cooling").textContent = d.cooling.length ? d.cooling.join(", ") : "No model is cooling down.";
    status("Updated " + new Date().toLocaleTimeString() + (d.decisions_capped ? " (newest 20,000 decisions)" : ""));
  }

  // Routing ------------------------------------------------------------------------------------
  function candidates(c) {
    const entries = Object.entries(c || {}).sort((a, b) => (b[1] ?? -1) - (a[1] ?? -1));
    const shown = entries.slice(0, 4).map(([m, s]) => el("span", {}, m + " " + (s == null ? "–" : Number(s).toFixed(3))));
    if (entries.length > 4) shown.push(el("span", { title: entries.slice(4).map(([m, s]) => m + " " + s).join(", ") }, "+" + (entries.length - 4) + " more"));
    return el("td", { class: "cands" }, ...shown);
  }

  function routerSection(r, i) {
    const id = "router-" + i;
    const l = r.loaded || {};
    const sec = el("section", { class: "card", "aria-labelledby": id + "-h" },
      el("h2", { id: id + "-h" }, "Router " + r.name),
      el("dl", { class: "kv" }, el("dt", {}, "Strategy"), el("dd", {}, l.strategy),
        el("dt", {}, "Artifact"), el("dd", { class: "mono" }, l.artifact || l.source || "– (none: a rule, not a model)"),
        el("dt", {}, "Version"), el("dd", {}, l.version || (l.source && l.source.includes("://") ? "– (not loaded)" : "local artifact (no registry version)")),
        el("dt", {}, "sha256"), el("dd", { class: "mono" }, l.sha256 ? l.sha256.slice(0, 16) + "…" : "–"),
        el("dt", {}, "Loaded at"), el("dd", {}, l.loaded_at ? when(typeof l.loaded_at === "number" ? l.loaded_at * 1000 : l.loaded_at) : "–"),
        el("dt", {}, "Default λ"), el("dd", {}, l.default_lambda ?? "–"),
        el("dt", {}, "Requests in range"), el("dd", {}, num(r.requests)),
        el("dt", {}, "Feedback"), el("dd", {}, r.feedback_n ? num(r.feedback_mean) + " mean of " + r.feedback_n : "none yet")));
    const grid = el("div", { class: "grid2" });
    grid.append(el("div", {}, el("h3", {}, "Share of traffic per model"), el("div", { class: "chart", id: id + "-share", role: "img", "aria-label": "Share of " + r.name + "'s traffic per model over time" })));
    grid.append(el("div", {}, el("h3", {}, "λ distribution"), el("div", { class: "chart", id: id + "-lam", role: "img", "aria-label": "Histogram of λ" })));
    sec.append(grid);
    if (r.curve) sec.append(el("h3", {}, "Quality–cost (offline evaluation, today's operating point)"),
      el("div", { class: "chart", id: id + "-curve", role: "img", "aria-label": "Offline quality-cost curve with today's operating point" }),
      el("p", { class: "note" }, "Cost in " + (r.curve.price_unit || "the manifest's price unit") + ". Today: " +
        (r.curve.today ? num(r.curve.today.cost) + " at quality " + (r.curve.today.quality == null ? "– (no feedback yet)" : num(r.curve.today.quality)) : "no routed traffic of the manifest's models")));
    else sec.append(el("p", { class: "note" }, "No offline quality–cost curve: this router has no local artifact manifest (" + l.strategy + ")."));
    const table = el("table", {}, el("caption", {}, "Recent decisions"),
      el("thead", {}, el("tr", {}, ...["Time", "Request", "Chosen", "Answered by", "λ", "Scores per candidate", "Feedback", "Status", "Latency ms"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody"));
    sec.append(el("div", { class: "scroll" }, table));
    fillTable(table, r.recent.map((d) => [when(d.created_at), el("td", { class: "mono" }, d.request_id.slice(0, 18)), d.chosen,
      d.routed_to + (d.fallback ? " (fallback)" : ""), d.lam == null ? "–" : Number(d.lam).toFixed(3), candidates(d.candidates),
      d.feedback == null ? "–" : Number(d.feedback).toFixed(2), d.status, Math.round(d.latency_ms)]));
    return sec;
  }

  function lamRange(c) {  // half a bin beyond the first and last bars, so neither is cut
    const half = (c[1] - c[0]) / 2;
    return [c[0] - half, c[c.length - 1] + half];
  }

  function drawRouter(r, i, bucket) {
    const id = "router-" + i;
    const models = Object.keys(r.share.models);
    chart(id + "-share", r.share.t, models.map((m) => ({ label: m, data: r.share.models[m] })),
      { scales: { y: { range: [0, 1] } } });
    const one = r.lambda.centres.length === 1 ? r.lambda.centres[0] : null;
    chart(id + "-lam", r.lambda.centres, [{ label: "decisions", data: r.lambda.counts, paths: uPlot.paths.bars({ size: [one == null ? 0.9 : 0.1] }), fill: "#93c5fd" }],
      { scales: { x: { time: false, range: one == null ? lamRange(r.lambda.centres) : [one - 0.5, one + 0.5] } }, axes: [{ label: "λ" }, {}] });
    if (r.curve) {
      const c = r.curve, pts = [];
      c.router.forEach(([x, y]) => pts.push([x, { router: y }]));
      for (const [name, [x, y]] of Object.entries(c.baselines)) pts.push([x, { [name]: y }]);
      if (c.today) pts.push([c.today.cost, { today: c.today.quality ?? (c.router[0] || [0, 0])[1] }]);
      const byX = new Map();  // uPlot wants one row per x: points sharing a cost share a row
      for (const [x, ys] of pts) byX.set(x, Object.assign(byX.get(x) || {}, ys));
      const rows = [...byX.entries()].sort((a, b) => a[0] - b[0]);
      const names = ["router", ...Object.keys(c.baselines), "today"];
      chart(id + "-curve", rows.map((p) => p[0]), names.map((n, k) => ({ label: n, data: rows.map((p) => (n in p[1] ? p[1][n] : null)),
        spanGaps: n === "router", width: n === "router" ? 2 : 0, points: { show: true, size: n === "today" ? 12 : 8 } })),
        { scales: { x: { time: false }, y: { auto: true } }, axes: [{ label: "cost" }, { label: "quality" }] });
    }
  }

  async function routing() {
    status("Loading…");
    const d = await api("routing?hours=" + hours());
    const host = $("#routers");
    host.replaceChildren(...d.routers.map(routerSection));
    d.routers.forEach((r, i) => drawRouter(r, i, d.bucket_s));
    d.routers.forEach((r, i) => { if ((d.registry_routers || []).includes(r.name)) registry(r.name, "router-" + i); });
    if (d.scorer_error) host.prepend(el("p", { class: "error", role: "alert" }, "The scorer did not answer: " + d.scorer_error));
    if (!d.routers.length) host.append(el("p", {}, "No router is configured."));
    status("Updated " + new Date().toLocaleTimeString());
  }

  async function registry(name, id) {
    const sec = document.getElementById(id + "-h").parentNode;
    let box = document.getElementById(id + "-registry");
    if (!box) { box = el("div", { id: id + "-registry" }); sec.insertBefore(box, sec.querySelector(".scroll")); }
    let d;
    try { d = await api("registry/" + encodeURIComponent(name)); } catch (err) {
      box.replaceChildren(el("p", { class: "error" }, "Registry: " + err.message)); return;
    }
    const move = (action, version) => confirmThen(action === "promote" ? "Promote " + name + " to " + version + "? Every scorer replica loads it at its next poll."
      : "Roll " + name + " back to " + d.previous + "?", async () => {
      try {
        await api("registry/" + encodeURIComponent(name) + "/" + action, { method: "POST", body: JSON.stringify(version ? { version: version } : {}) });
        status(action + " " + name + ": done"); await registry(name, id);
      } catch (err) { status(action + " failed: " + err.message); }
    });
    const table = el("table", {}, el("caption", {}, "Registry versions (" + d.url + ")"),
      el("thead", {}, el("tr", {}, ...["Version", "Published", "sha256", "Default λ", "Eval", ""].map((h) => el("th", { scope: "col" }, h)))), el("tbody"));
    fillTable(table, d.versions.map((v) => [v.version + (v.version === d.current ? " (serving)" : v.version === d.previous ? " (previous)" : ""),
      when(v.created_at), el("td", { class: "mono" }, v.sha256.slice(0, 12)), v.default_lambda ?? "–",
      Object.entries(v.eval || {}).map(([k, x]) => k + "=" + Number(x).toFixed(3)).join(" ") || "–",
      el("td", {}, v.version === d.current ? "" : el("button", { type: "button", "aria-label": "promote " + name + " to " + v.version, onclick: () => move("promote", v.version) }, "promote"))]));
    const back = el("button", { type: "button", onclick: () => move("rollback") }, "Roll back to " + (d.previous || "–"));
    if (!d.previous) back.disabled = true;
    box.replaceChildren(el("h3", {}, "Registry"), el("div", { class: "scroll" }, table), back);
  }

  // Keys and teams -----------------------------------------------------------------------------
  function left(info) { return info.max_budget == null ? "no budget" : money(Math.max(0, info.max_budget - info.spend)); }
  function state(info) { return info.blocked ? "blocked" : (info.expires && new Date(info.expires) < new Date() ? "expired" : "active"); }

  function confirmThen(text, action) {
    const dlg = $("#confirm");
    $("#confirm-text").textContent = text;
    dlg.returnValue = "";
    dlg.addEventListener("close", function once() { dlg.removeEventListener("close", once); if (dlg.returnValue === "ok") action(); });
    dlg.showModal();
  }

  function keyAction(k, action) {
    const label = (k.key_alias || k.key_id);
    const run = async () => {
      try {
        const out = await api("keys/" + encodeURIComponent(k.key_id) + "/" + action, { method: "POST", body: "{}" });
        if (action === "regenerate") showSecret("New secret for " + label + " (shown once):", out.key);
        status(action + " " + label + ": done");
        await keys();
      } catch (err) { status(action + " failed: " + err.message); }
    };
    if (action === "delete" || action === "regenerate")
      confirmThen((action === "delete" ? "Delete " : "Regenerate (the old secret stops at once) ") + label + "?", run);
    else run();
  }

  function showSecret(text, key) {
    const box = $("#new-key");
    box.replaceChildren(el("p", {}, text), el("code", { id: "new-key-value" }, key));
    box.hidden = false;
  }

  async function keys(ev) {
    if (ev) ev.preventDefault();
    status("Loading…");
    const q = $("#q").value.trim();
    const d = await api("keys?q=" + encodeURIComponent(q));
    fillTable($("#keys"), d.keys.map((k) => [el("td", { class: "mono" }, k.key_id + " (" + k.key_hint + ")"), k.key_alias || "–",
      k.team_id || "–", (k.models || []).join(", ") || "all", money(k.spend), left(k), when(k.budget_reset_at), when(k.expires), state(k),
      el("td", { class: "actions" }, ...[k.blocked ? "unblock" : "block", "regenerate", "delete"].map((a) =>
        el("button", { type: "button", "data-action": a, "data-key": k.key_id, "aria-label": a + " " + (k.key_alias || k.key_id), onclick: () => keyAction(k, a) }, a)))]));
    $("#keys-note").textContent = d.matched + " of " + d.total + " keys shown" + (d.scanned < d.total ? " (search looks through the first " + d.scanned + ")" : "") + ".";
    const t = await api("teams");
    fillTable($("#teams"), t.teams.map((x) => [x.team_alias ? x.team_id + " (" + x.team_alias + ")" : x.team_id, x.keys, money(x.spend), left(x), when(x.budget_reset_at), x.blocked ? "blocked" : "active"]));
    status("");
  }

  function formJson(form) {
    const out = {};
    for (const input of form.querySelectorAll("input")) {
      const v = input.value.trim();
      if (input.type === "checkbox") { if (input.checked) out[input.name] = true; continue; }
      if (!v) continue;
      if (input.name === "models") out.models = v.split(",").map((s) => s.trim()).filter(Boolean);
      else if (input.type === "number") out[input.name] = Number(v);
      else out[input.name] = v;
    }
    return out;
  }

  async function createKey(ev) {
    ev.preventDefault();
    try {
      const out = await api("keys", { method: "POST", body: JSON.stringify(formJson(ev.target)) });
      showSecret("New key " + (out.key_alias || out.key_id) + " (copy it now: it is shown once):", out.key);
      ev.target.reset();
      await keys();
    } catch (err) { status("Create failed: " + err.message); }
  }

  async function createTeam(ev) {
    ev.preventDefault();
    try {
      await api("teams", { method: "POST", body: JSON.stringify(formJson(ev.target)) });
      ev.target.reset();
      await keys();
    } catch (err) { status("Create failed: " + err.message); }
  }

  // Spend --------------------------------------------------------------------------------------
  async function spend(ev) {
    if (ev) ev.preventDefault();
    const group = $("#group").value, days = $("#days").value;
    const qs = "group=" + group + "&days=" + days;
    $("#csv").href = "/ui/api/spend.csv?" + qs;
    status("Loading…");
    const d = await api("spend?" + qs);
    const label = group === "day" ? "day" : group;
    const cols = [label, "requests", "tokens", "cost"];
    $("#spend thead").replaceChildren(el("tr", {}, ...cols.map((c) => el("th", { scope: "col", class: c === label ? "" : "num" }, c === "cost" ? "spend ($)" : c))));
    fillTable($("#spend"), d.rows.map((r) => [r[label] ?? "–", r.requests, r.total_tokens ?? r.tokens, money(r.cost)]));
    const rows = d.rows.slice(0, 40);
    chart("chart-spend", rows.map((_, i) => i), [{ label: "spend $", data: rows.map((r) => r.cost), paths: uPlot.paths.bars({ size: [0.7] }), fill: "#93c5fd" }],
      { scales: { x: { time: false, range: [-0.5, Math.max(1, rows.length) - 0.5] } },
        axes: [{ space: 20, incrs: [1], values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) && rows[t] ? String(rows[t][label] ?? "–").slice(0, 16) : "")) }, {}] });
    status(d.rows.length + " rows");
  }

  // Health -------------------------------------------------------------------------------------
  async function health() {
    status("Loading…");
    const d = await api("health");
    const r = d.readiness;
    $("#ready").replaceChildren(el("strong", { class: "badge " + r.status }, r.status));
    const deps = Object.entries(r).filter(([k]) => k !== "status");
    $("#deps").replaceChildren(...deps.flatMap(([k, v]) => [el("dt", {}, k),
      el("dd", {}, typeof v === "object" && v ? (v.status || JSON.stringify(v).slice(0, 120)) : String(v))]));
    const c = d.config;
    $("#config").replaceChildren(el("dt", {}, "Gateway version"), el("dd", {}, c.version), el("dt", {}, "Config sha256"),
      el("dd", { class: "mono" }, c.sha256.slice(0, 16) + "…"), el("dt", {}, "Models"), el("dd", {}, c.models),
      el("dt", {}, "Routers"), el("dd", {}, c.routers.join(", ") || "none"));
    $("#raw").textContent = JSON.stringify(r, null, 2);
    status("Updated " + new Date().toLocaleTimeString());
  }

  function guard(fn) { return (ev) => fn(ev).catch((err) => status("Error: " + err.message)); }

  const pages = { overview: overview, routing: routing, health: health };
  document.addEventListener("DOMContentLoaded", () => {
    if (pages[page]) {
      const run = guard(pages[page]);
      run();
      const sel = $("[data-reload]"); if (sel) sel.addEventListener("change", run);
      const btn = $("#refresh"); if (btn) btn.addEventListener("click", run);
    } else if (page === "keys") {
      $("#search-form").addEventListener("submit", guard(keys));
      $("#key-form").addEventListener("submit", createKey);
      $("#team-form").addEventListener("submit", createTeam);
      guard(keys)();
    } else if (page === "spend") {
      $("#spend-form").addEventListener("submit", guard(spend));
      guard(spend)();
    }
  });
})();
