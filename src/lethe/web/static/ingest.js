// The ingest page: start a job (upload or server folder) through the API, then poll
// GET /api/ingest/{id} and show its progress until it ends. The job id is kept in the address
// (?job=...) so that a reload keeps following it.
"use strict";

(() => {
  const section = document.getElementById("job");
  if (!section) return;
  const bar = document.getElementById("job-progress");
  const status = document.getElementById("job-status");
  const errors = document.getElementById("job-errors");
  const POLL_MS = 500;
  let timer = null;

  document.addEventListener("lethe:done", (event) => {
    if (event.detail && event.detail.id) follow(event.detail.id);
  });

  function follow(id) {
    const url = new URL(window.location.href);
    url.searchParams.set("job", id);
    window.history.replaceState(null, "", url);
    section.hidden = false;
    if (timer) clearTimeout(timer);
    poll(id);
  }

  async function poll(id) {
    let job;
    try {
      job = await window.Lethe.api(`/api/ingest/${encodeURIComponent(id)}`, { method: "GET" });
    } catch (error) {
      status.textContent = error.message;
      section.classList.add("failed");
      return;
    }
    show(job);
    if (job.state === "running") timer = setTimeout(() => poll(id), POLL_MS);
  }

  function show(job) {
    section.hidden = false;
    section.dataset.state = job.state;
    section.classList.toggle("failed", job.state === "failed" || job.state === "cancelled");
    if (job.total > 0) {
      bar.max = job.total;
      bar.value = job.done;
    } else if (job.state === "running") {
      bar.removeAttribute("value"); // indeterminate while the photos are counted
    } else {
      bar.max = 1;
      bar.value = 1;
    }
    const of = job.total ? ` of ${job.total}` : "";
    if (job.state === "running") {
      status.textContent = `Ingesting into “${job.source}”: ${job.done}${of} photos processed…`;
    } else if (job.state === "done") {
      status.textContent =
        `Done: ${job.images} new photo(s), ${job.faces} face(s), ${job.skipped} already present, ` +
        `${job.errors.length} not ingested — in ${job.seconds.toFixed(1)} s.`;
    } else {
      status.textContent = `The ingest ${job.state === "failed" ? "failed" : "was cancelled"}: ${job.error || "no reason given"}.`;
    }
    for (const cell of section.querySelectorAll("[data-count]")) {
      const key = cell.dataset.count;
      const running = job.state === "running" && key !== "done" && key !== "images_per_s";
      cell.textContent = running ? "…" : String(job[key]);
    }
    const items = errors.querySelector("ul");
    items.replaceChildren();
    for (const problem of job.errors || []) {
      const li = document.createElement("li");
      li.textContent = `${problem.path}: ${problem.reason}`;
      items.append(li);
    }
    errors.hidden = !(job.errors && job.errors.length);
  }

  if (section.dataset.job) follow(section.dataset.job);
})();
