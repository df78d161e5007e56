// Batch page: live progress by polling, ETA from observed throughput, ranked sortable table, histogram.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";

const root = document.getElementById("batch");
const batchId = root.dataset.batchId;
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
let rows = [];
let scoreKey = null;
let direction = "asc";
let sortKey = null;
let sortAsc = true;
const seen = [];  // [time, finished] samples for the ETA

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function finished(p) { return p.completed + p.failed + p.cancelled; }

function eta(p) {
  const now = Date.now() / 1000;
  seen.push([now, finished(p)]);
  while (seen.length > 30) seen.shift();
  const [t0, f0] = seen[0];
  const rate = (finished(p) - f0) / Math.max(1e-6, now - t0);
  const left = p.total - finished(p);
  if (!left) return "";
  if (rate <= 0) return "Waiting for a worker to report…";
  const s = Math.round(left / rate);
  return `About ${s >= 120 ? Math.round(s / 60) + " min" : s + " s"} left (${rate.toFixed(2)} ligands/s).`;
}

async function loadRows() {
  const all = [];
  let cursor = null;
  do {
    const page = await getJSON(`/api/v1/jobs/batch/${batchId}/children?limit=1000${cursor ? "&cursor=" + cursor : ""}`);
    all.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && all.length < 20000);
  rows = all;
}

function scoreOf(row) { return row.results && typeof row.results[scoreKey] === "number" ? row.results[scoreKey] : null; }

function columns() {
  const keys = new Set();
  for (const r of rows) for (const [k, v] of Object.entries(r.results || {})) if (typeof v === "number") keys.add(k);
  const numeric = [...keys].filter((k) => k !== scoreKey).slice(0, 4);
  return ["rank", "ligand_name", ...(scoreKey ? [scoreKey] : []), ...numeric, "status", "ligand_smiles", "error"];
}

function value(row, key) {
  if (key === "rank") return row._rank ?? null;
  if (key === "error") return row.error ? `${row.error.code}: ${row.error.message}` : "";
  if (key in row) return row[key];
  return row.results ? row.results[key] ?? null : null;
}

function rank() {
  const scored = rows.filter((r) => scoreOf(r) !== null);
  scored.sort((a, b) => (direction === "asc" ? 1 : -1) * (scoreOf(a) - scoreOf(b)));
  scored.forEach((r, i) => { r._rank = i + 1; });
  rows.filter((r) => scoreOf(r) === null).forEach((r) => { r._rank = null; });
}

function render() {
  const cols = columns();
  const head = document.getElementById("results-head");
  head.replaceChildren(...cols.map((c) => {
    const th = document.createElement("th");
    th.scope = "col";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "sort";
    button.textContent = c + (sortKey === c ? (sortAsc ? " ▲" : " ▼") : "");
    button.addEventListener("click", () => { sortAsc = sortKey === c ? !sortAsc : true; sortKey = c; render(); });
    th.append(button);
    if (sortKey === c) th.setAttribute("aria-sort", sortAsc ? "ascending" : "descending");
    return th;
  }));
  const nameFilter = document.getElementById("name-filter").value.toLowerCase();
  const statusFilter = document.getElementById("status-select").value;
  let shown = rows.filter((r) => (!nameFilter || r.ligand_name.toLowerCase().includes(nameFilter))
    && (!statusFilter || r.status === statusFilter));
  const key = sortKey || "rank";
  shown = [...shown].sort((a, b) => {
    const va = value(a, key), vb = value(b, key);
    if (va === null && vb === null) return 0;
    if (va === null) return 1;
    if (vb === null) return -1;
    const cmp = typeof va === "number" ? va - vb : String(va).localeCompare(String(vb));
    return sortKey ? (sortAsc ? cmp : -cmp) : cmp;
  });
  const body = document.getElementById("results-body");
  body.replaceChildren(...shown.slice(0, 2000).map((r) => {
    const tr = document.createElement("tr");
    for (const c of cols) {
      const td = document.createElement("td");
      const v = value(r, c);
      if (c === "ligand_name") {
        const a = document.createElement("a");
        a.href = `/jobs/${r.job_id}`;
        a.textContent = v;
        td.append(a);
      } else {
        td.textContent = v === null || v === undefined ? "" : v;
      }
      if (c === "status") td.className = `status status-${v}`;
      tr.append(td);
    }
    return tr;
  }));
  renderTop();
  renderHistogram();
}

function renderTop() {
  const top = rows.filter((r) => r._rank).sort((a, b) => a._rank - b._rank).slice(0, 5);
  document.getElementById("top").replaceChildren(...top.map((r) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `/jobs/${r.job_id}`;
    a.textContent = r.ligand_name;
    li.append(a, ` ${scoreOf(r)}`);
    return li;
  }));
}

function renderHistogram() {
  const values = rows.map(scoreOf).filter((v) => v !== null);
  const box = document.getElementById("histogram");
  if (!values.length) { box.textContent = "No scores yet."; return; }
  const lo = Math.min(...values), hi = Math.max(...values);
  const bins = 12, width = 360, height = 140;
  const counts = new Array(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo || 1)) * bins))]++;
  const max = Math.max(...counts);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 20}`);
  svg.setAttribute("width", "100%");
  counts.forEach((c, i) => {
    const rect = document.createElementNS(ns, "rect");
    const h = (c / max) * height;
    rect.setAttribute("x", (i * width) / bins + 1);
    rect.setAttribute("y", height - h);
    rect.setAttribute("width", width / bins - 2);
    rect.setAttribute("height", h);
    rect.setAttribute("class", "bar");
    const title = document.createElementNS(ns, "title");
    title.textContent = `${c} ligands`;
    rect.append(title);
    svg.append(rect);
  });
  for (const [x, text, anchor] of [[0, lo.toFixed(2), "start"], [width, hi.toFixed(2), "end"]]) {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", x);
    label.setAttribute("y", height + 16);
    label.setAttribute("text-anchor", anchor);
    label.textContent = text;
    svg.append(label);
  }
  const caption = document.createElementNS(ns, "text");
  caption.setAttribute("x", width / 2);
  caption.setAttribute("y", height + 16);
  caption.setAttribute("text-anchor", "middle");
  caption.textContent = scoreKey;
  svg.append(caption);
  box.replaceChildren(svg);
}

async function refresh() {
  const status = await getJSON(`/api/v1/jobs/${batchId}/status`);
  const p = status.progress;
  const badge = document.getElementById("batch-status");
  badge.textContent = status.status;
  badge.className = `status status-${status.status}`;
  document.getElementById("counts").textContent =
    `${p.completed} completed, ${p.running} running, ${p.pending} pending, ${p.failed} failed, ${p.cancelled} cancelled of ${p.total}`;
  const bar = document.getElementById("bar");
  bar.max = p.total;
  bar.value = finished(p);
  document.getElementById("eta").textContent = TERMINAL.has(status.status) ? "" : eta(p);
  if (status.results && status.results.rank_by) { scoreKey = status.results.rank_by; direction = status.results.direction; }
  await loadRows();
  if (!scoreKey) scoreKey = guessScoreKey();
  rank();
  render();
  root.dataset.state = status.status;
  const done = TERMINAL.has(status.status) && (status.results || !p.completed);
  if (!done) setTimeout(refresh, 2000);
}

function guessScoreKey() {
  for (const r of rows) for (const [k, v] of Object.entries(r.results || {})) if (typeof v === "number") return k;
  return null;
}

async function act(path) {
  const message = document.getElementById("action-message");
  const response = await fetch(`/api/v1/jobs/${batchId}/${path}`, { method: "POST", headers: { "x-csrf-token": CSRF } });
  const data = await response.json();
  message.textContent = response.ok ? `${path}: batch is ${data.status}` : data.error.message;
  if (response.ok) refresh();
}

document.getElementById("cancel").addEventListener("click", () => act("cancel"));
document.getElementById("retry").addEventListener("click", () => act("retry"));
document.getElementById("name-filter").addEventListener("input", render);
document.getElementById("status-select").addEventListener("change", render);
refresh();
