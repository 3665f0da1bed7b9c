// The ingest page: start a job (upload or server folder) through the API, then poll
// GET /api/ingest/{id} and show its progress until it ends. The job id is kept in the address
// (?job=...) so that a reload keeps following it. While it runs, "Cancel ingest" asks the API to
// stop it (POST /api/ingest/{id}/cancel, with the CSRF token like every page call); the job stops
// after the file it is reading and what it stored stays.
"use strict";

(() => {
  const section = document.getElementById("job");
  if (!section) return;
  const bar = document.getElementById("job-progress");
  const status = document.getElementById("job-status");
  const errors = document.getElementById("job-errors");
  const actions = document.getElementById("job-actions");
  const cancel = document.getElementById("job-cancel");
  const cancelError = actions.querySelector(".form-error");
  const next = document.getElementById("job-next");
  const POLL_MS = 500;
  let timer = null;
  let current = null;

  document.addEventListener("lethe:done", (event) => {
    if (event.detail && event.detail.id) follow(event.detail.id);
  });

  function follow(id) {
    const url = new URL(window.location.href);
    url.searchParams.set("job", id);
    window.history.replaceState(null, "", url);
    section.hidden = false;
    current = id;
    cancel.disabled = false;
    cancelError.hidden = true;
    if (timer) clearTimeout(timer);
    poll(id);
  }

  cancel.addEventListener("click", async () => {
    if (!current) return;
    cancel.disabled = true;
    cancelError.hidden = true;
    try {
      show(await window.Lethe.api(`/api/ingest/${encodeURIComponent(current)}/cancel`));
    } catch (error) {
      cancel.disabled = false;
      cancelError.textContent = error.message;
      cancelError.hidden = false;
    }
  });

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

  // "1 photo", "3 photos": no "(s)".
  function n(count, one, many) {
    return `${count} ${count === 1 ? one : many}`;
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
    const stopping = job.state === "running" && job.cancelled_by;
    actions.hidden = job.state !== "running";
    if (stopping) cancel.disabled = true;
    const noFace = job.no_face
      ? ` ${job.no_face} of the new photos ${job.no_face === 1 ? "holds" : "hold"} no face: only their hash is kept.`
      : "";
    const erased = job.erased ? `, ${job.erased} previously erased (blocked)` : "";
    const failed = job.errors.length + (job.errors_omitted || 0);
    if (stopping) {
      status.textContent = `Cancelling (asked by ${job.cancelled_by}): the ingest stops after the photo it is reading…`;
    } else if (job.state === "running") {
      status.textContent = job.total
        ? `Ingesting into “${job.source}”: ${job.done}${of} photos processed…`
        : `Ingesting into “${job.source}”: counting the photos and starting the workers…`;
    } else if (job.state === "done") {
      status.textContent =
        `Done: ${n(job.images, "new photo", "new photos")}, ${n(job.faces, "face", "faces")}, ` +
        `${job.already_present} already present${erased}, ${failed} not ingested — in ${job.seconds.toFixed(1)} s.${noFace}`;
    } else if (job.state === "cancelled") {
      status.textContent =
        `Stopped: ${job.error || "cancelled"}, after ${job.done}${of} photos. What it stored stays: ` +
        `${n(job.images, "new photo", "new photos")}, ${n(job.faces, "face", "faces")}. ` +
        "Start it again to go on: photos already present are skipped.";
    } else {
      status.textContent = `The ingest failed: ${job.error || "no reason given"}.`;
    }
    for (const cell of section.querySelectorAll("[data-count]")) {
      const key = cell.dataset.count;
      const running = job.state === "running" && key !== "done" && key !== "images_per_s";
      // A run that only skipped known photos did no work: no speed to show.
      const idle = key === "images_per_s" && !job.images_per_s && job.state !== "running";
      cell.textContent = running ? "…" : idle ? "—" : String(job[key]);
    }
    const items = errors.querySelector("ul");
    items.replaceChildren();
    for (const problem of job.errors || []) {
      const li = document.createElement("li");
      li.textContent = `${problem.path}: ${problem.reason}`;
      items.append(li);
    }
    errors.hidden = !(job.errors && job.errors.length);
    next.hidden = job.state !== "done" || !job.faces;
  }

  if (section.dataset.job) follow(section.dataset.job);
})();
