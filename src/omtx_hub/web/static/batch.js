// Batch page: live progress by polling, ETA from observed throughput, ranked sortable table, histogram.
//
// Two modes. A batch of up to WHOLE_LIMIT ligands is loaded whole: ranking, sorting, filters, top
// hits and the histogram are computed here, over every ligand. A larger batch is ranked by the
// server: the table holds the best TABLE_ROWS ligands of the whole batch by the chosen numeric
// column (/export?format=json&top=…), the status filter asks the server, and top hits and the
// histogram come from /stats; ranked by the primary score, its table pages through the rest of the
// ranking (a keyset cursor per page, from the score index). Either way the ligands are reloaded only when the batch's progress
// has moved, and no sooner than ten times as long as the last load took (at least every 2 s), so
// an open page costs the API little even for a screen of a million ligands.
"use strict";

const WHOLE_LIMIT = 20000;
const TABLE_ROWS = 2000;
const WHOLE_BINS = 12;  // histogram bins of a batch loaded whole (the server's /stats has its own)

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";

const root = document.getElementById("batch");
const batchId = root.dataset.batchId;
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
let rows = [];
// the predictor's declared primary score (empty for a plugin that declares none: guessed from the rows)
let scoreKey = root.dataset.rankBy || null;
let direction = root.dataset.direction || "asc";
const CONTACT_ROWS = 12;  // rows of the contacts table
const CONTACT_TOP = 20;  // the best N ligands whose contacts it counts
let sortKey = null;
let sortAsc = true;
let large = false;  // ranked by the server (more than WHOLE_LIMIT ligands)
let serverTop = [];  // large: the best ligands of the whole batch, from /stats
let serverHistogram = null;  // large: {edges, counts} of the ranking score, from /stats
let tableNote = "";
let pageAfter = null;  // large: the cursor the shown page starts after (null: the best rows)
const pagesBefore = [];  // large: the cursors of the pages before it, for "previous"
let nextCursor = null;  // large: the cursor of the next page (null: none, or not paged)
let loadedFor = null;  // the progress the ligands were last loaded for
let nextLoadAt = 0;
let lastProgress = null;
let loadSeq = 0;  // a load that a newer one (a click on a header) overtook is dropped
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

async function loadWhole() {
  const all = [];
  let cursor = null;
  do {
    const page = await getJSON(`/api/v1/jobs/batch/${batchId}/children?limit=1000${cursor ? "&cursor=" + cursor : ""}`);
    all.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && all.length < WHOLE_LIMIT);
  rows = all;
  if (!scoreKey) scoreKey = guessScoreKey();
  rank();
}

// A large batch is sorted by the server on its numeric columns; on the others, the shown rows are sorted here.
function serverSortable(column) { return column !== "batch_index" && numericColumns().has(column); }

function numericColumns() {
  const keys = new Set();
  for (const r of rows) for (const [k, v] of Object.entries(r.results || {})) if (typeof v === "number") keys.add(k);
  return keys;
}

async function loadLarge(total, seq) {
  const query = new URLSearchParams({ format: "json", top: String(TABLE_ROWS) });
  if (sortKey && serverSortable(sortKey)) {
    query.set("sort", sortKey);
    query.set("order", sortAsc ? "asc" : "desc");
  }
  const status = document.getElementById("status-select").value;
  if (status) query.set("status", status);
  if (pageAfter) query.set("after", pageAfter);
  rulesQuery(query);
  const [doc, stats] = await Promise.all([
    getJSON(`/api/v1/jobs/${batchId}/export?${query}`),
    getJSON(`/api/v1/jobs/${batchId}/stats?${rulesQuery(new URLSearchParams({ top: "5", fields: "primary" }))}`),
  ]);
  if (seq !== loadSeq) return false;
  rows = doc.results.map((r) => ({
    job_id: r.job_id,
    batch_index: r.batch_index,
    ligand_name: r.ligand_name,
    ligand_smiles: r.ligand_smiles,
    status: r.status,
    results: Object.fromEntries(doc.result_columns.filter((k) => r[k] !== null && r[k] !== undefined).map((k) => [k, r[k]])),
    error: r.error_code ? { code: r.error_code, message: r.error_message } : null,
    _rank: r.rank,
  }));
  scoreKey = stats.rank_by || scoreKey;
  direction = stats.direction || direction;
  serverTop = stats.top.map((t) => ({ job_id: t.job_id, ligand_name: t.ligand_name, score: t[stats.rank_by] }));
  serverHistogram = (stats.fields[scoreKey] || {}).histogram || null;
  nextCursor = doc.next_cursor || null;
  const by = `${doc.rank_by} (${doc.direction === "asc" ? "lowest" : "highest"} first)`;
  const from = pagesBefore.length * TABLE_ROWS;  // rows on the pages before this one
  const shown = status && status !== "completed" ? `the first ${rows.length.toLocaleString("en")} ${status} ligands`
    : pageAfter ? `ligands ${(from + 1).toLocaleString("en")}–${(from + rows.length).toLocaleString("en")} by ${by}`
      + ", in the server's ranking of the whole batch"
    : `the best ${rows.length.toLocaleString("en")} by ${by}, ranked over the whole batch by the server`;
  tableNote = `${total.toLocaleString("en")} ligands: the table shows ${shown}. Sorting by a numeric column ranks`
    + " the whole batch again; the name filter searches the rows shown. Top hits and the histogram cover every"
    + " ligand. The CSV and Parquet downloads hold every row.";
  return true;
}

// Reload the ligands when progress has moved, and not more often than ten times the last load's duration.
async function loadRows(p, force) {
  const mark = `${finished(p)}/${p.running}`;
  if (!force && (mark === loadedFor || Date.now() < nextLoadAt)) return false;
  const started = Date.now();
  large = p.total > WHOLE_LIMIT;
  if (large && !rows.length) {
    document.getElementById("table-note").textContent = `Ranking ${p.total.toLocaleString("en")} ligands on the server…`;
  }
  const seq = ++loadSeq;
  if (large) { if (!(await loadLarge(p.total, seq))) return false; } else await loadWhole();
  loadedFor = mark;
  nextLoadAt = Date.now() + Math.max(2000, 10 * (Date.now() - started));
  return true;
}

// What a pose must show to be ranked (docs/analytics.md): the batch's own rules, as the filter edits them.
function requirements() {
  return document.getElementById("require-filter").value.split(",").map((s) => s.trim()).filter(Boolean);
}
function poseChecks() { return document.getElementById("pose-checks-filter").checked ? "require" : "any"; }
function admit(row) {
  const r = row.results || {};
  if (poseChecks() === "require" && r.pose_checks_passed !== true) return false;
  const contacts = String(r.interactions || "").split(", ");
  return requirements().every((q) => (q.split(":").length === 3 ? contacts.includes(q)
    : contacts.some((c) => c.startsWith(q + ":"))));
}
function rulesQuery(query) {
  for (const q of requirements()) query.append("required_interactions", q);
  query.set("pose_checks", poseChecks());
  return query;
}

function scoreOf(row) { return row.results && typeof row.results[scoreKey] === "number" ? row.results[scoreKey] : null; }

function columns() {
  const numeric = [...numericColumns()].filter((k) => k !== scoreKey).slice(0, 4);
  const checked = rows.some((r) => r.results && "pose_checks_passed" in r.results) ? ["pose_checks_passed", "interactions"] : [];
  return ["rank", "ligand_name", ...(scoreKey ? [scoreKey] : []), ...numeric, ...checked, "status", "ligand_smiles",
    "error"];
}

function value(row, key) {
  if (key === "rank") return row._rank ?? null;
  if (key === "error") return row.error ? `${row.error.code}: ${row.error.message}` : "";
  if (key in row) return row[key];
  return row.results ? row.results[key] ?? null : null;
}

function rank() {
  const ranked = (r) => r.status === "completed" && scoreOf(r) !== null && admit(r);
  const scored = rows.filter(ranked);
  scored.sort((a, b) => (direction === "asc" ? 1 : -1) * (scoreOf(a) - scoreOf(b)));
  scored.forEach((r, i) => { r._rank = i + 1; });
  rows.filter((r) => !ranked(r)).forEach((r) => { r._rank = null; });
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
    button.addEventListener("click", () => {
      sortAsc = sortKey === c ? !sortAsc : true;
      sortKey = c;
      if (large && serverSortable(c)) { resetPages(); reloadNow(); } else render();
    });
    th.append(button);
    if (sortKey === c) th.setAttribute("aria-sort", sortAsc ? "ascending" : "descending");
    return th;
  }));
  const nameFilter = document.getElementById("name-filter").value.toLowerCase();
  const statusFilter = document.getElementById("status-select").value;
  let shown = rows.filter((r) => (!nameFilter || r.ligand_name.toLowerCase().includes(nameFilter))
    && (large || !statusFilter || r.status === statusFilter));
  const key = sortKey || "rank";
  const sortedByServer = large && (!sortKey || serverSortable(sortKey));
  if (!sortedByServer) shown = [...shown].sort((a, b) => {
    const va = value(a, key), vb = value(b, key);
    if (va === null && vb === null) return 0;
    if (va === null) return 1;
    if (vb === null) return -1;
    const cmp = typeof va === "number" ? va - vb : String(va).localeCompare(String(vb));
    return sortKey ? (sortAsc ? cmp : -cmp) : cmp;
  });
  const body = document.getElementById("results-body");
  document.getElementById("table-note").textContent = large ? tableNote : "";
  body.replaceChildren(...shown.slice(0, TABLE_ROWS).map((r) => {
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
  renderPages();
  renderTop();
  renderHistogram();
  renderContacts();
}

// How many of the best CONTACT_TOP ranked ligands make each contact: counted here over the loaded rows,
// or the server's table (/stats) for a large batch.
let serverContacts = null;
async function renderContacts() {
  let table;
  if (large) {
    const query = rulesQuery(new URLSearchParams({ top: String(CONTACT_TOP) }));
    serverContacts = (await getJSON(`/api/v1/jobs/${batchId}/stats?${query}`)).interactions;
    table = serverContacts;
  } else {
    const counts = new Map();
    const best = rows.filter((r) => r._rank).sort((a, b) => a._rank - b._rank).slice(0, CONTACT_TOP);
    for (const r of best) {
      for (const c of new Set(String((r.results || {}).interactions || "").split(", ").filter(Boolean))) {
        counts.set(c, (counts.get(c) || 0) + 1);
      }
    }
    table = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([interaction, count]) => ({ interaction, count, fraction: count / best.length }));
  }
  document.getElementById("contacts-body").replaceChildren(...table.slice(0, CONTACT_ROWS).map((row) => {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = row.interaction;
    const n = document.createElement("td");
    n.textContent = `${row.count} (${Math.round(row.fraction * 100)} %)`;
    tr.append(name, n);
    return tr;
  }));
}

function renderTop() {
  const top = large ? serverTop
    : rows.filter((r) => r._rank).sort((a, b) => a._rank - b._rank).slice(0, 5)
      .map((r) => ({ job_id: r.job_id, ligand_name: r.ligand_name, score: scoreOf(r) }));
  document.getElementById("top").replaceChildren(...top.map((r) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `/jobs/${r.job_id}`;
    a.textContent = r.ligand_name;
    li.append(a, ` ${r.score}`);
    return li;
  }));
}

// Counts per bin and the range: over every loaded ligand, or the server's for a large batch.
function histogramData() {
  if (large) {
    if (!serverHistogram) return null;
    const edges = serverHistogram.edges;
    return { counts: serverHistogram.counts, lo: edges[0], hi: edges[edges.length - 1] };
  }
  const values = rows.map(scoreOf).filter((v) => v !== null);
  if (!values.length) return null;
  const lo = Math.min(...values), hi = Math.max(...values);
  const counts = new Array(WHOLE_BINS).fill(0);
  for (const v of values) counts[Math.min(WHOLE_BINS - 1, Math.floor(((v - lo) / (hi - lo || 1)) * WHOLE_BINS))]++;
  return { counts, lo, hi };
}

function renderHistogram() {
  const data = histogramData();
  const box = document.getElementById("histogram");
  if (!data) { box.textContent = "No scores yet."; return; }
  const { counts, lo, hi } = data;
  const bins = counts.length, width = 360, height = 140;
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
  // why the batch waits (no worker for its predictor, every worker paused by a store that refuses writes)
  document.getElementById("warnings").textContent = (status.warnings || []).join(" ");
  if (status.results && status.results.rank_by) { scoreKey = status.results.rank_by; direction = status.results.direction; }
  const done = TERMINAL.has(status.status) && (status.results || !p.completed);
  lastProgress = p;
  if (await loadRows(p, done)) render();
  root.dataset.state = status.status;
  if (!done) setTimeout(refresh, 2000);
}

async function reloadNow() {
  if (lastProgress) { await loadRows(lastProgress, true); render(); }
}

// Another ranking (sort, status, rules) starts again from its best rows.
function resetPages() {
  pageAfter = null;
  pagesBefore.length = 0;
  nextCursor = null;
}

function renderPages() {
  const pager = document.getElementById("table-pages");
  pager.hidden = !(large && (nextCursor || pageAfter));
  document.getElementById("page-next").disabled = !nextCursor;
  document.getElementById("page-previous").disabled = !pageAfter;
  document.getElementById("page-best").disabled = !pageAfter;
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

for (const id of ["require-filter", "pose-checks-filter"]) {
  document.getElementById(id).addEventListener("change", () => {
    if (large) { resetPages(); reloadNow(); } else { rank(); render(); }
  });
}
document.getElementById("cancel").addEventListener("click", () => act("cancel"));
document.getElementById("retry").addEventListener("click", () => act("retry"));
document.getElementById("name-filter").addEventListener("input", render);
document.getElementById("status-select").addEventListener("change", () => {
  if (large) { resetPages(); reloadNow(); } else render();
});
document.getElementById("page-next").addEventListener("click", () => {
  pagesBefore.push(pageAfter);
  pageAfter = nextCursor;
  reloadNow();
});
document.getElementById("page-previous").addEventListener("click", () => {
  pageAfter = pagesBefore.pop() || null;
  reloadNow();
});
document.getElementById("page-best").addEventListener("click", () => { resetPages(); reloadNow(); });
refresh();
