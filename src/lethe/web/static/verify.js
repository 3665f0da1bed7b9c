// Two-person verification of a candidate identification (EU AI Act Art. 14(5)), shared by the search
// page and the candidate page: fills a _candidate.html block from the candidate's API view (what
// this viewer may read: "k of N given", never the others' verdicts before their own), offers a
// verifier the verdict form, and once verified the photo and "Mark identified".
"use strict";

(() => {
  const percent = (value) => `${(value * 100).toFixed(1)}%`;

  // The score's plain-language band and the rates measured on LFW at that score.
  function showScore(box, score, likelihood) {
    box.querySelector(".value").textContent = Number(score).toFixed(3);
    box.querySelector(".likelihood").textContent = likelihood ? likelihood.words : "";
    const rates = box.querySelector(".rates");
    if (likelihood && likelihood.fpir !== null) {
      rates.textContent =
        `Measured on LFW at ${Number(likelihood.measured_threshold).toFixed(3)}, the highest measured score ` +
        `not above this one (gallery of ${likelihood.measured_gallery_faces.toLocaleString("en")} faces): ` +
        `${percent(likelihood.fpir)} of searches for someone absent returned a match that strong; ` +
        `${percent(likelihood.fnir)} of searches for someone present scored below it.`;
      rates.hidden = false;
    } else {
      rates.hidden = true;
    }
    box.querySelector(".score").hidden = false;
  }

  function stateText(view, verifier) {
    const n = view.required;
    if (view.state === "verified") return `Verified: ${n} verifier${n === 1 ? "" : "s"} confirmed this identification.`;
    if (view.state === "rejected") return "Rejected: a verifier judged this is not the same person. No action may be taken on it.";
    let text =
      `Candidate identification — needs ${n} verification${n === 1 ? "" : "s"} ` +
      `(${view.given} of ${n} given). No photo until it is verified.`;
    if (view.your_verdict) text += ` You ${view.your_verdict === "confirm" ? "confirmed" : "rejected"} it.`;
    else if (!verifier) text += " A trained verifier must confirm it.";
    return text;
  }

  function render(box, view, options) {
    box.dataset.state = view.state;
    box.dataset.given = String(view.given);
    box.dataset.yourVerdict = view.your_verdict || "";
    box.querySelector(".candidate-state").textContent = stateText(view, options.verifier);
    // Withheld from a verifier until their verdict (LETHE_VERIFY_SCORE_AFTER_JUDGEMENT); a searcher who
    // gives no verdict sees the score their search returned.
    const withheld = view.score_hidden && options.verifier;
    box.querySelector(".score-withheld").hidden = !withheld;
    if (withheld) {
      box.querySelector(".score").hidden = true;
      box.querySelector(".rates").hidden = true;
    } else if (view.score !== null && view.score !== undefined) {
      showScore(box, view.score, view.likelihood);
    } else if (options.score !== undefined) {
      showScore(box, options.score, options.likelihood);
    }
    const open = view.state === "pending" && view.given < view.required;
    box.querySelector(".verdict-form").hidden = !(options.verifier && !view.your_verdict && open);
    // Waiting on the others after one's own verdict: ask again (also when the tab is shown again).
    box.querySelector(".recheck").hidden = !(view.state === "pending" && view.your_verdict);
    const photo = box.querySelector(".photo");
    photo.hidden = !(view.actionable && options.photoUrl);
    box.querySelector(".identify-form").hidden = !view.actionable || box.dataset.identified === "true";
  }

  function mount(box, options) {
    const refresh = async () => render(box, await window.Lethe.api(options.candidateUrl, { method: "GET" }), options);
    const verdictForm = box.querySelector(".verdict-form");
    verdictForm.querySelectorAll("input[type=radio]").forEach((radio) => {
      radio.name = `verdict-${options.key}`;  // one group per card
    });
    verdictForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      window.Lethe.clearError(verdictForm);
      const chosen = verdictForm.querySelector("input[type=radio]:checked");
      const note = verdictForm.querySelector("textarea").value.trim();
      window.Lethe.setBusy(verdictForm, true);
      try {
        const view = await window.Lethe.api(`${options.candidateUrl}/verdict`, {
          json: { verdict: chosen.value, note: note || null },
        });
        render(box, view, options);
      } catch (error) {
        window.Lethe.showError(verdictForm, error);
      } finally {
        window.Lethe.setBusy(verdictForm, false);
      }
    });
    const recheck = box.querySelector(".recheck");
    recheck.querySelector("button").addEventListener("click", () => refresh().catch(() => {}));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && !recheck.hidden) refresh().catch(() => {});
    });
    const photo = box.querySelector(".photo");
    if (options.photoUrl) {
      const img = photo.querySelector(".photo-img");
      img.alt = options.photoAlt || "The matched photo, the face boxed";
      photo.querySelector(".photo-open").href = options.photoUrl;
      // Loaded only when asked for: each view is audited.
      photo.addEventListener("toggle", () => {
        if (photo.open && !img.getAttribute("src")) img.src = options.photoUrl;
      });
    }
    const identify = box.querySelector(".identify-form");
    identify.addEventListener("submit", async (event) => {
      event.preventDefault();
      window.Lethe.clearError(identify);
      window.Lethe.setBusy(identify, true);
      try {
        const done = await window.Lethe.api(`${options.candidateUrl}/identified`, { json: {} });
        box.dataset.identified = "true";
        identify.hidden = true;
        const said = box.querySelector(".identified");
        said.textContent = `Marked identified (audit entry ${done.seq}).`;
        said.hidden = false;
      } catch (error) {
        window.Lethe.showError(identify, error);
      } finally {
        window.Lethe.setBusy(identify, false);
      }
    });
    return refresh().catch((error) => {
      box.dataset.state = "error";
      box.querySelector(".candidate-state").textContent = error.message;
    });
  }

  window.LetheVerify = { mount };
})();
