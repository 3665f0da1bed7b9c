// The search page: preview the probe, search through POST /api/search, draw the probe's faces over
// the preview (pick one to search again with face=N), and show the matches or "No match"; each
// match is a candidate identification whose verification static/verify.js shows.
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
  const zone = form.querySelector("[data-dropzone]");
  // Formats the service reads that a browser cannot show: no preview, and no error for it.
  const NO_PREVIEW = /\.(pgm|ppm|pnm|tiff?)$/i;
  let previewUrl = null;

  input.addEventListener("change", () => {
    faceField.value = "";
    boxes.replaceChildren();
    results.hidden = true;
    zone.classList.remove("invalid");
    window.Lethe.clearError(form);
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    figure.hidden = true;
    const file = input.files && input.files[0];
    if (!file) return;
    caption.textContent = file.name;
    if (NO_PREVIEW.test(file.name)) return;
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
  });

  // The figure shows only once the browser could draw the photo: never a broken-image icon.
  preview.addEventListener("load", () => {
    figure.hidden = false;
  });
  preview.addEventListener("error", () => {
    if (!preview.getAttribute("src")) return;
    figure.hidden = true;
    zone.classList.add("invalid");
    window.Lethe.showError(
      form,
      new Error("This file is not a photo the page can read: choose a JPEG, PNG, WebP, GIF, BMP, TIFF, PGM or PPM."),
    );
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
      if (error.status === 413 || error.status === 415) {
        zone.classList.add("invalid");
        figure.hidden = true;
      }
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
    document.getElementById("calibration").textContent = faces > 0 ? calibrationLine(answer.calibration, threshold) : "";
    noMatch.hidden = !answer.no_match;
    noMatch.querySelector("span").textContent =
      faces === 0
        ? "There was no face to look for."
        : `No face in the gallery reaches the similarity threshold (${threshold}).`;
    answer.matches.forEach((match, i) => list.append(card(match, i)));
    results.hidden = false;
    // On a phone the results land below the fold: bring their first line into view.
    if (results.getBoundingClientRect().top > window.innerHeight * 0.75) {
      const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      results.scrollIntoView({ block: "start", behavior: still ? "auto" : "smooth" });
    }
  }

  // What the threshold means, from the LFW measurement whose gallery size is nearest this gallery's
  // (on a log scale), naming both sizes and which way the difference goes.
  function calibrationLine(calibration, threshold) {
    const implied = calibration && calibration.implied;
    if (!implied) return "";
    const measured = implied.measured_gallery_faces;
    const ours = calibration.gallery_faces;
    const faces = (count) => `${count.toLocaleString("en")} face${count === 1 ? "" : "s"}`;
    const why =
      ours === measured
        ? "the size of your gallery"
        : ours < measured
          ? `the measured size nearest your gallery of ${faces(ours)}; with fewer faces, false matches are if anything rarer`
          : `the measured size nearest your gallery of ${faces(ours)}; with more faces, false matches can be more frequent`;
    return (
      `What threshold ${threshold} means, measured on LFW with a gallery of ${faces(measured)} (${why}): ` +
      `${(implied.fpir * 100).toFixed(1)}% of searches for someone absent returned a false match; ` +
      `${(implied.fnir * 100).toFixed(1)}% of searches for someone present missed them.`
    );
  }

  function card(match, i) {
    const item = template.content.firstElementChild.cloneNode(true);
    const crop = item.querySelector(".crop");
    crop.src = match.crop_url;
    crop.alt = `Match ${i + 1}: face from ${baseName(match.image)}`;
    item.querySelector(".rank").textContent = `#${i + 1}`;
    item.querySelector(".source").textContent = match.source;
    const image = item.querySelector(".image");
    const uploaded = String(match.image).startsWith("upload:");
    // The whole path as ingested: two people's img1.jpg are told apart, on a phone too.
    image.textContent = uploaded ? `${baseName(match.image)} (uploaded)` : match.image;
    const url = safeUrl(match.source_url);
    if (url) {
      const a = document.createElement("a");
      a.href = url;
      a.textContent = url;
      a.rel = "noopener noreferrer";
      a.target = "_blank";
      item.querySelector(".link").append(a);
      item.querySelector(".link-row").hidden = false;
    }
    const link = item.querySelector(".candidate-link");
    link.href = match.candidate_page;
    link.setAttribute("aria-label", `Candidate page of match ${i + 1}`);
    // Every match is a candidate identification: two verifiers confirm it before its photo opens.
    window.LetheVerify.mount(item.querySelector("[data-candidate]"), {
      key: `${match.face_id}-${i}`,
      candidateUrl: match.candidate_url,
      photoUrl: match.photo_url,
      photoAlt: `The photo of match ${i + 1}, the face boxed`,
      verifier: form.dataset.verifier === "true",
      score: match.score,
      likelihood: match.likelihood,
    });
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
