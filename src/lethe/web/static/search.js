// The search page: preview the probe, search through POST /api/search, draw the probe's faces over
// the preview (pick one to search again with face=N), and show the matches or "No match".
"use strict";

(() => {
  const form = document.getElementById("search-form");
  if (!form) return;
  const input = document.getElementById("probe");
  const faceField = document.getElementById("face");
  const figure = document.getElementById("probe-figure");
  const preview = document.getElementById("probe-preview");
  const boxes = document.getElementById("boxes");
  const caption = document.getElementById("probe-caption");
  const results = document.getElementById("results");
  const summary = document.getElementById("summary");
  const noMatch = document.getElementById("no-match");
  const picker = document.getElementById("face-picker");
  const pickerButtons = picker.querySelector(".face-buttons");
  const list = document.getElementById("matches");
  const template = document.getElementById("match-template");
  let previewUrl = null;

  input.addEventListener("change", () => {
    faceField.value = "";
    boxes.replaceChildren();
    results.hidden = true;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    const file = input.files && input.files[0];
    if (!file) {
      figure.hidden = true;
      return;
    }
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    caption.textContent = file.name;
    figure.hidden = false;
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });

  async function search() {
    window.Lethe.clearError(form);
    const data = new FormData(form);
    if (!faceField.value) data.delete("face");
    window.Lethe.setBusy(form, true);
    results.setAttribute("aria-busy", "true");
    try {
      show(await window.Lethe.api("/api/search", { form: data }));
    } catch (error) {
      window.Lethe.showError(form, error);
    } finally {
      window.Lethe.setBusy(form, false);
      results.setAttribute("aria-busy", "false");
    }
  }

  function chooseFace(index) {
    faceField.value = String(index);
    search();
  }

  function show(answer) {
    const faces = answer.probe_faces;
    const used = answer.face;
    drawBoxes(answer.probe_boxes || [], used);
    list.replaceChildren();
    pickerButtons.replaceChildren();
    picker.hidden = faces < 2;
    if (faces > 1) {
      answer.probe_boxes.forEach((_, i) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = i === used ? "" : "secondary";
        button.textContent = `Face ${i + 1}`;
        button.setAttribute("aria-pressed", String(i === used));
        button.addEventListener("click", () => chooseFace(i));
        pickerButtons.append(button);
      });
    }
    const threshold = String(Number(Number(answer.threshold).toFixed(3)));  // 0.525, 0.95: as configured
    if (faces === 0) {
      summary.textContent = "No face was found in this photo: try one where the face is larger and clearly visible.";
    } else {
      const which = faces > 1 ? ` Searched for face ${used + 1} of ${faces} (highlighted on the photo).` : "";
      const count = answer.matches.length;
      summary.textContent =
        (count ? `${count} match${count === 1 ? "" : "es"} at similarity ${threshold} or more, best first.` : "") + which;
    }
    const implied = answer.calibration && answer.calibration.implied;
    document.getElementById("calibration").textContent = implied && faces > 0
      ? `What threshold ${threshold} means, measured on LFW with about ${implied.measured_gallery_faces.toLocaleString("en")} faces: ` +
        `${(implied.fpir * 100).toFixed(1)}% of searches for someone absent returned a false match; ` +
        `${(implied.fnir * 100).toFixed(1)}% of searches for someone present missed them.`
      : "";
    noMatch.hidden = !answer.no_match;
    noMatch.querySelector("span").textContent =
      faces === 0
        ? "There was no face to look for."
        : `No face in the gallery reaches the similarity threshold (${threshold}).`;
    answer.matches.forEach((match, i) => list.append(card(match, i)));
    results.hidden = false;
  }

  function card(match, i) {
    const item = template.content.firstElementChild.cloneNode(true);
    const crop = item.querySelector(".crop");
    crop.src = match.crop_url;
    crop.alt = `Match ${i + 1}: face from ${baseName(match.image)}`;
    item.querySelector(".rank").textContent = `#${i + 1}`;
    item.querySelector(".value").textContent = Number(match.score).toFixed(3);
    item.querySelector(".source").textContent = match.source;
    const image = item.querySelector(".image");
    image.textContent = baseName(match.image);
    image.title = match.image;
    const link = item.querySelector(".link");
    const url = safeUrl(match.source_url);
    if (url) {
      const a = document.createElement("a");
      a.href = url;
      a.textContent = "Source page";
      a.rel = "noopener noreferrer";
      a.target = "_blank";
      link.append(a);
    } else {
      link.textContent = "none recorded";
      link.classList.add("muted");
    }
    return item;
  }

  function drawBoxes(found, used) {
    boxes.replaceChildren();
    const place = () => {
      const width = preview.naturalWidth;
      const height = preview.naturalHeight;
      if (!width || !height) return;
      found.forEach(([left, top, right, bottom], i) => {
        const box = document.createElement(found.length > 1 ? "button" : "span");
        box.className = "face-box" + (i === used ? " used" : "");
        box.style.left = `${(100 * left) / width}%`;
        box.style.top = `${(100 * top) / height}%`;
        box.style.width = `${(100 * (right - left)) / width}%`;
        box.style.height = `${(100 * (bottom - top)) / height}%`;
        const label = document.createElement("span");
        label.className = "face-label";
        label.textContent = String(i + 1);
        box.append(label);
        if (found.length > 1) {
          box.type = "button";
          box.setAttribute("aria-label", `Search for face ${i + 1}`);
          box.setAttribute("aria-pressed", String(i === used));
          box.addEventListener("click", () => chooseFace(i));
        } else {
          box.setAttribute("aria-hidden", "true");
        }
        boxes.append(box);
      });
    };
    if (preview.complete && preview.naturalWidth) place();
    else preview.addEventListener("load", place, { once: true });
  }

  function baseName(path) {
    const last = String(path).split("/").pop() || String(path);
    return last.replace(/^upload:/, "");
  }

  function safeUrl(value) {
    if (!value) return null;
    try {
      const url = new URL(value, window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_) {
      return null;
    }
  }
})();
