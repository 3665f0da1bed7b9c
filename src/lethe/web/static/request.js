// The request and review pages: Run shows what it will act on before anything happens (the preview
// API), the answer's readiness is followed while candidates may still arrive, the answer draft and
// the messages' drafts are copied, and a reviewer decides with the keys y and n.
"use strict";

(() => {
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many || `${one}s`}`;

  function photoCard(photo) {
    const card = document.createElement("figure");
    card.className = "preview-photo";
    const faces = document.createElement("div");
    faces.className = "preview-faces";
    for (const face of photo.faces) {
      const item = document.createElement("div");
      item.className = "preview-face";
      const img = document.createElement("img");
      img.src = face.crop_url;
      img.alt = `Face ${face.face_id} in ${photo.photo}`;
      img.width = 96;
      img.height = 96;
      const score = document.createElement("span");
      score.textContent = `similarity ${face.score.toFixed(3)}`;
      item.append(img, score);
      faces.append(item);
    }
    const caption = document.createElement("figcaption");
    const name = document.createElement("strong");
    name.textContent = photo.photo;
    caption.append(name, ` · ${photo.source}`);
    card.append(faces, caption);
    return card;
  }

  async function openRun(button) {
    const dialog = document.getElementById("run-dialog");
    const summary = document.getElementById("run-summary");
    const list = document.getElementById("run-preview");
    const title = document.getElementById("run-dialog-title");
    const confirm = document.getElementById("run-confirm");
    button.disabled = true;
    let found;
    try {
      found = await window.Lethe.api(button.dataset.preview, { method: "GET" });
    } catch (error) {
      window.Lethe.flash(error.message, true);
      button.disabled = false;
      return;
    }
    button.disabled = false;
    const verb = button.dataset.verb;
    const what = `${plural(found.faces, "face")} in ${plural(found.photos, "photo")}`;
    const waiting = `${plural(found.review_candidates, "face")} will wait for review.`;
    if (found.faces > 0) {
      title.textContent = `${verb} ${what}?`;
      confirm.textContent = `Yes, ${verb.toLowerCase()} ${plural(found.faces, "face")}`;
      summary.textContent = found.review_candidates ? waiting : "No face waits for review.";
    } else {
      title.textContent = "No certain match to act on";
      confirm.textContent = "Run it: send the uncertain faces to review";
      summary.textContent = `Nothing is acted on now. ${waiting}`;
    }
    list.replaceChildren(...found.by_photo.map(photoCard));
    dialog.dataset.faces = String(found.faces);
    dialog.showModal();
  }

  // While candidates may still arrive (a search of this request or an ingest job is running), ask
  // the API until they cannot, then show the page as it now is.
  function follow(status) {
    if (status.dataset.mayArrive !== "true") return;
    const tick = async () => {
      try {
        const detail = await window.Lethe.api(status.dataset.poll, { method: "GET" });
        const ready = detail.answer_readiness;
        if (!ready.may_arrive) {
          window.location.reload();
          return;
        }
      } catch (_) {
        // the next tick tries again
      }
      window.setTimeout(tick, 1500);
    };
    window.setTimeout(tick, 1500);
  }

  // y / n: "same person" / "not the same" for the face the reviewer is on (the one holding the
  // focus, else the first undecided one).
  function decideByKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    const key = event.key.toLowerCase();
    if (key !== "y" && key !== "n") return;
    if (event.target.closest && event.target.closest("input, textarea, select, dialog")) return;
    const current =
      (document.activeElement && document.activeElement.closest(".review-item")) ||
      document.querySelector(".review-item:not(.decided-confirmed):not(.decided-rejected)");
    const button = current && current.querySelector(`button[data-key="${key}"]`);
    if (!button || button.disabled) return;
    event.preventDefault();
    button.form.requestSubmit(button);
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.querySelector(".review-item")) document.addEventListener("keydown", decideByKey);
    const review = document.getElementById("review-status");
    if (review) follow(review);
    const run = document.getElementById("run-open");
    if (run) run.addEventListener("click", () => openRun(run));
    const status = document.getElementById("answer-why");
    if (status) follow(status);
    // The answer draft, and each message draft (data-copied: what to say once copied).
    for (const copy of document.querySelectorAll("button[data-copy]")) {
      copy.addEventListener("click", async () => {
        const text = document.getElementById(copy.dataset.copy);
        if (!text) return;
        try {
          await navigator.clipboard.writeText(text.value);
        } catch (_) {
          text.select();
          document.execCommand("copy");
        }
        window.Lethe.flash(copy.dataset.copied || "Answer copied: paste it into your letter or e-mail.");
      });
    }
  });
})();
