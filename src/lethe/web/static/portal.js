// The public portal: after POST /api/portal/requests, show the receipt (reference and due date) in
// place of the form, and put the reference in the confirmation form (the code arrives at the
// requester's address) and in the receipt's link to the status page. The API answers nothing else,
// and this page shows nothing else. On the status page, show the stage and due date it answers.
"use strict";

function showDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleDateString(undefined, { year: "numeric", month: "long", day: "numeric" });
}

(() => {
  const form = document.getElementById("status-form");
  const answer = document.getElementById("status-answer");
  if (!form || !answer) return;

  form.addEventListener("submit", () => {
    answer.hidden = true; // an earlier answer never stays beside a new question
  });
  form.addEventListener("lethe:done", (event) => {
    const status = event.detail;
    document.getElementById("status-ref").textContent = status.reference;
    document.getElementById("status-stage").textContent = status.message;
    document.getElementById("status-due").textContent = showDate(status.due_at);
    answer.hidden = false;
    document.getElementById("status-h").focus();
  });
})();

(() => {
  const form = document.getElementById("portal-form");
  const receipt = document.getElementById("receipt");
  if (!form || !receipt) return;

  form.addEventListener("lethe:done", (event) => {
    const answer = event.detail;
    document.getElementById("receipt-ref").textContent = answer.reference;
    document.getElementById("receipt-due").textContent = showDate(answer.due_at);
    document.getElementById("receipt-message").textContent = answer.message;
    const reference = document.getElementById("confirm-reference");
    if (reference) reference.value = answer.reference;
    const statusLink = document.getElementById("receipt-status");
    if (statusLink) statusLink.href = `/portal/status?reference=${encodeURIComponent(answer.reference)}`;
    form.reset();
    form.hidden = true;
    receipt.hidden = false;
    document.getElementById("receipt-h").focus();
  });
})();
