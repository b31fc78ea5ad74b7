// The dashboard's label-quality panel (services/control/quality_panel.py): one row per worker
// from GET /v1/quality; pseudonyms only (the dashboard never asks for reveal).
"use strict";

function qualityRate(rate) {
  if (rate.value === null) return "-";
  return `${rate.value.toFixed(2)} [${rate.low.toFixed(2)}-${rate.high.toFixed(2)}] n=${rate.n}`;
}

function qualityNumber(value) {
  return value === null ? "-" : value.toFixed(2);
}

async function fillQuality() {
  const table = document.getElementById("quality-workers");
  if (!table) return;
  const response = await fetch("/v1/quality", { credentials: "same-origin" });
  if (!response.ok) return;
  const report = await response.json();
  for (const w of report.workers) {
    const row = table.insertRow();
    const cells = [
      w.name,
      String(w.gold.gold_tasks),
      qualityRate(w.gold.precision),
      qualityRate(w.gold.recall),
      qualityRate(w.gold.attribute_accuracy),
      qualityNumber(w.gold.mota),
      qualityNumber(w.gold.idf1),
      qualityRate(w.agreement.kept),
      qualityNumber(w.seconds_per_task),
    ];
    for (const text of cells) row.insertCell().textContent = text;  // never as HTML
  }
}

document.addEventListener("DOMContentLoaded", fillQuality);
