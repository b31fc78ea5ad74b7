// The overview's live part: it re-reads the page every few seconds, swaps in the panels the
// server rendered (one renderer: what the page shows without JavaScript is what it shows with
// it) and draws the charts (vendored Chart.js) from the status JSON the page carries.
// Actions are plain forms (they work without this file); Stop asks for confirmation on its page.
"use strict";

document.documentElement.classList.add("js");  // the charts' boxes show only when drawn

const charts = {};
const palette = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];

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

function draw(status) {
  const stages = status.funnel.slice(1);  // the first is the running total, not a stage
  chart("funnel-chart", "bar", stages.map((s) => s.stage),
    [{ label: "tasks", data: stages.map((s) => s.tasks), backgroundColor: palette[0] }],
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
}

function swapPanels(fresh) {
  // Panels keep their canvases (the charts live on): only what is not a chart is replaced.
  for (const section of fresh.querySelectorAll("section[data-live]")) {
    const current = document.getElementById(section.id);
    if (!current) continue;
    for (const child of [...current.children]) {
      if (!child.classList.contains("chart")) child.remove();
    }
    const chartBox = current.querySelector(".chart");
    for (const child of [...section.children]) {
      if (child.classList.contains("chart")) continue;
      current.insertBefore(document.importNode(child, true), chartBox);
    }
  }
}

async function refresh() {
  try {
    const response = await fetch(location.pathname, { credentials: "same-origin" });
    if (!response.ok || response.redirected) throw new Error(String(response.status));
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    swapPanels(fresh);
    const data = fresh.getElementById("initial-status");
    if (data) draw(JSON.parse(data.textContent));
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  } catch (error) {
    document.getElementById("updated").textContent = "refresh failed (" + error.message + ")";
  }
}

window.addEventListener("DOMContentLoaded", () => {
  const data = document.getElementById("initial-status");
  if (!data) return;
  draw(JSON.parse(data.textContent));
  const seconds = Number(document.body.dataset.refresh || 5);
  refresh();
  setInterval(refresh, seconds * 1000);
});
