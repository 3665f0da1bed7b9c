// The public portal: after POST /api/portal/requests, show the receipt (reference and due date) in
// place of the form, and put the reference in the confirmation form (the code arrives at the
// requester's address). The API answers nothing else, and this page shows nothing else.
"use strict";

(() => {
  const form = document.getElementById("portal-form");
  const receipt = document.getElementById("receipt");
  if (!form || !receipt) return;

  form.addEventListener("lethe:done", (event) => {
    const answer = event.detail;
    document.getElementById("receipt-ref").textContent = answer.reference;
    const due = new Date(answer.due_at);
    document.getElementById("receipt-due").textContent = Number.isNaN(due.getTime())
      ? answer.due_at
      : due.toLocaleDateString(undefined, { year: "numeric", month: "long", day: "numeric" });
    document.getElementById("receipt-message").textContent = answer.message;
    const reference = document.getElementById("confirm-reference");
    if (reference) reference.value = answer.reference;
    form.reset();
    form.hidden = true;
    receipt.hidden = false;
    document.getElementById("receipt-h").focus();
  });
})();
