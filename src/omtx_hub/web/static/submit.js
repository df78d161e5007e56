// Submission forms: build the JSON body, show every validation error inline, go to the new job.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";

function field(form, name) { return form.querySelector(`[name="${name}"]`); }

function commonBody(form) {
  const body = { predictor: field(form, "predictor").value };
  const target = field(form, "target_id").value;
  const sequence = field(form, "protein_sequence").value.trim();
  if (target) body.target_id = target;
  if (sequence) body.protein_sequence = sequence;
  let params = {};
  const raw = field(form, "params").value.trim();
  if (raw) params = JSON.parse(raw);  // a SyntaxError is shown to the user by the caller
  const exh = field(form, "exhaustiveness").value;
  if (body.predictor === "vina" && exh) params.exhaustiveness = Number(exh);
  if (body.predictor === "boltz2") {
    // the form's Boltz-2 choices; the same keys in the JSON box win
    const choices = { pocket: field(form, "pocket").value, template: field(form, "template").value,
      method: field(form, "method").value };
    for (const [key, value] of Object.entries(choices)) {
      if (value && !(key in params) && !(key === "pocket" && value === "auto") && !(key === "template" && value === "off")) {
        params[key] = value;
      }
    }
  }
  body.params = params;
  return body;
}

function parseLines(text) {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith("#")).map((line, i) => {
    const [smiles, ...rest] = line.split(/\s+/);
    return { smiles, name: rest.join(" ") || `ligand_${i + 1}` };
  });
}

function showErrors(box, error) {
  box.replaceChildren();
  const head = document.createElement("p");
  head.textContent = error.message;
  box.append(head);
  const rows = (error.details && (error.details.ligands || error.details.params || error.details.problems)) || [];
  if (rows.length) {
    const list = document.createElement("ul");
    list.className = "ligand-errors";
    for (const row of rows.slice(0, 200)) {
      const item = document.createElement("li");
      item.textContent = typeof row === "string" ? `${error.details.param}: ${row}`
        : row.index !== undefined ? `line ${row.index + 1} (${row.name}): ${row.smiles} — ${row.reason}`
        : `${row.param}: ${row.reason}`;
      list.append(item);
    }
    box.append(list);
  }
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST", headers: { "content-type": "application/json", "x-csrf-token": CSRF }, body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw data.error || { message: `HTTP ${response.status}` };
  return data;
}

document.getElementById("ligand-file")?.addEventListener("change", async (event) => {
  const file = event.target.files[0];
  const box = document.getElementById("batch-errors");
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  const response = await fetch("/api/v1/ligands/parse", { method: "POST", body: form, headers: { "x-csrf-token": CSRF } });
  const data = await response.json();
  if (!response.ok) { showErrors(box, data.error); return; }
  document.getElementById("ligands").value = data.ligands.map((l) => `${l.smiles} ${l.name}`).join("\n");
  box.replaceChildren();
});

document.getElementById("batch-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const box = document.getElementById("batch-errors");
  try {
    const body = commonBody(form);
    body.batch_name = field(form, "batch_name").value;
    body.ligands = parseLines(document.getElementById("ligands").value);
    const maxConcurrent = field(form, "max_concurrent").value;
    if (maxConcurrent) body.max_concurrent = Number(maxConcurrent);
    const batch = await post("/api/v1/jobs/predict/batch", body);
    window.location.href = `/jobs/${batch.batch_id}`;
  } catch (error) {
    showErrors(box, error instanceof SyntaxError ? { message: `Parameters are not valid JSON: ${error.message}` } : error);
  }
});

document.getElementById("single-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const box = document.getElementById("single-errors");
  try {
    const body = commonBody(form);
    body.ligand_smiles = field(form, "ligand_smiles").value.trim();
    body.ligand_name = field(form, "ligand_name").value.trim() || "ligand";
    const job = await post("/api/v1/jobs/predict", body);
    window.location.href = `/jobs/${job.job_id}`;
  } catch (error) {
    showErrors(box, error instanceof SyntaxError ? { message: `Parameters are not valid JSON: ${error.message}` } : error);
  }
});
