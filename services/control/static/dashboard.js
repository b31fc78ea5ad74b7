// The dashboard's live part: charts (vendored Chart.js) and a refresh from the API.
// The server renders every number first; this keeps them current and wires the buttons.
"use strict";

const charts = {};
const palette = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];

function csrfToken() {
  // Every state-changing call carries the page's CSRF token (services/control/csrf.py).
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function api(path, options = {}) {
  const headers = Object.assign({ "X-CSRF-Token": csrfToken() }, options.headers || {});
  return fetch(path, Object.assign({ credentials: "same-origin" }, options, { headers }));
}

function chart(id, type, labels, datasets, extra = {}) {
  if (typeof Chart === "undefined") return;
  const data = { labels, datasets };
  if (charts[id]) {
    charts[id].data = data;
    charts[id].update("none");
    return;
  }
  const canvas = document.getElementById(id);
  if (!canvas) return;
  charts[id] = new Chart(canvas, {
    type,
    data,
    options: Object.assign({
      animation: false, responsive: true, maintainAspectRatio: false,
      plugins: { legend: { display: datasets.length > 1 } },
    }, extra),
  });
}

function fillTable(id, attribute, pairs) {
  // One row per name, in the API's order; rows the API no longer names go.
  const table = document.getElementById(id);
  table.replaceChildren();
  for (const [name, value] of pairs) {
    const tr = table.insertRow();
    const th = document.createElement("th");
    th.textContent = name;
    tr.append(th);
    const td = tr.insertCell();
    td.setAttribute(attribute, name);
    td.textContent = String(value);
  }
}

function taskRows(table, rows, header, empty) {
  const operator = document.body.dataset.operator === "true";
  table.replaceChildren(table.rows[0]);
  if (!rows.length) {
    const tr = table.insertRow();
    tr.className = "none";
    const td = tr.insertCell();
    td.colSpan = 3;
    td.textContent = empty;
    return;
  }
  for (const row of rows) {
    const tr = table.insertRow();
    if (row.task_id) tr.dataset.task = row.task_id;
    else tr.dataset.clip = row.clip_id;
    tr.insertCell().textContent = row.task_id || row.clip_id;
    tr.insertCell().textContent = row.text;
    const actions = tr.insertCell();
    for (const kind of row.actions) {
      const button = document.createElement("button");
      button.className = kind;
      button.dataset.task = row.task_id;
      button.textContent = kind === "stop" ? "Stop" : "Retry";
      button.disabled = !operator;
      actions.append(button, " ");
    }
  }
}

function render(status) {
  document.getElementById("tasks-total").textContent = String(status.tasks);
  fillTable("funnel", "data-stage", status.funnel.map((s) => [s.stage, s.tasks]));
  fillTable("waiting", "data-age", Object.entries(status.waiting_by_age));
  fillTable("policy", "data-policy", [
    ["sends", status.sends], ["same-key re-sends", status.resends], ["re-keys", status.rekeys],
    ["expirations", status.expirations], ["outputs", status.outputs], ["waiting", status.waiting],
  ]);
  chart("funnel-chart", "bar", status.funnel.map((s) => s.stage),
    [{ label: "tasks", data: status.funnel.map((s) => s.tasks), backgroundColor: palette[0] }],
    { indexAxis: "y" });
  chart("waiting-chart", "bar", Object.keys(status.waiting_by_age),
    [{ label: "waiting", data: Object.values(status.waiting_by_age), backgroundColor: palette[4] }]);
  const hours = status.hours.map((h) => h.hour.slice(6, 8) + " " + h.hour.slice(8) + "h");
  chart("hours-chart", "bar", hours, [
    { label: "sends", data: status.hours.map((h) => h.sends), backgroundColor: palette[0] },
    { label: "re-keys", data: status.hours.map((h) => h.rekeys), backgroundColor: palette[3] },
    { label: "expirations", data: status.hours.map((h) => h.expirations), backgroundColor: palette[2] },
  ]);
  const jobs = [...new Set(status.hours.flatMap((h) => Object.keys(h.outputs_per_job)))].sort();
  chart("jobs-chart", "bar", hours, jobs.map((job, i) => ({
    label: job, data: status.hours.map((h) => h.outputs_per_job[job] || 0),
    backgroundColor: palette[i % palette.length],
  })));
  taskRows(document.getElementById("failures"),
    status.failures.map((f) => (f.task_id === null
      ? { clip_id: f.clip_id, text: `${f.stage}: ${f.reason}`, actions: [] }
      : { task_id: f.task_id, text: f.reason, actions: ["retry", "stop"] })),
    "", "no failures");
}

async function refresh() {
  try {
    const [status, active] = await Promise.all([
      api("/v1/status").then((r) => (r.ok ? r.json() : Promise.reject(r.status))),
      api("/v1/tasks?status=active&limit=20").then((r) => (r.ok ? r.json() : Promise.reject(r.status))),
    ]);
    render(status);
    taskRows(document.getElementById("active"),
      active.items.map((t) => ({ task_id: t.task_id, text: `level ${t.level}`, actions: ["stop"] })),
      "", "no active tasks");
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  } catch (error) {
    document.getElementById("updated").textContent = "refresh failed (" + error + ")";
  }
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.stop, button.retry");
  if (!button) return;
  const action = button.classList.contains("stop") ? "stop" : "retry";
  const task = button.dataset.task;
  button.disabled = true;
  const response = await api(`/v1/tasks/${encodeURIComponent(task)}/${action}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: action === "stop" ? JSON.stringify({ reason: "stopped from the dashboard" }) : undefined,
  });
  const body = await response.json().catch(() => ({}));
  const result = document.getElementById("action-result");
  result.textContent = response.ok
    ? `${task}: ${action === "stop" ? "stopped" : "retried"}`
    : `${task}: ${body.detail || body.title || response.status}`;
  result.dataset.outcome = response.ok ? "ok" : "refused";
  await refresh();
});

window.addEventListener("DOMContentLoaded", () => {
  render(JSON.parse(document.getElementById("initial-status").textContent));
  const seconds = Number(document.body.dataset.refresh || 5);
  setInterval(refresh, seconds * 1000);
});
