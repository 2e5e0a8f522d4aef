// medialens Operations view (/operations): the same report `medialens report` writes, drawn by the
// server for the chosen window, with the alarms summarised above it (from GET operations/report).
"use strict";

async function showWindow() {
  const hours = $("#window").value;
  const page = `operations/report.html?since_hours=${encodeURIComponent(hours)}`;
  $("#report").src = page;
  $("#report-link").href = page;
  const status = $("#operations-status");
  status.classList.remove("error");
  try {
    const { body } = await api(`operations/report?since_hours=${encodeURIComponent(hours)}`);
    const alarms = body.drift.filter((score) => score.alarm);
    status.classList.toggle("error", alarms.length > 0);
    status.textContent =
      `${body.assets} assets, ${body.media_minutes.toFixed(1)} media minutes.` +
      (alarms.length
        ? ` Drift alarm: ${alarms.map((a) => `${a.signal}${a.model ? ` (${a.model})` : ""} ${a.statistic.toUpperCase()} ${a.score}`).join("; ")}.`
        : " No drift alarm.");
  } catch (error) {
    status.classList.add("error");
    status.textContent = describeError(error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#window").addEventListener("change", showWindow);
  $("#refresh-report").addEventListener("click", showWindow);
  showWindow();
});
