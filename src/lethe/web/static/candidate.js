// The candidate page: a verifier's view of one candidate identification (static/verify.js).
"use strict";

(() => {
  const page = document.getElementById("candidate-page");
  if (!page) return;
  window.LetheVerify.mount(document.querySelector("[data-candidate]"), {
    key: page.dataset.key,
    candidateUrl: page.dataset.candidateUrl,
    photoUrl: page.dataset.photoUrl || null,
    photoAlt: "The photo of the candidate, the face boxed",
    verifier: true,  // the page is only for verifiers
  });
})();
