// An event's guest page: after POST /api/e/<code>/consent, show the private link it answers (once:
// it is not stored anywhere but in the guest's hands) in place of the form, with a button to copy
// it. The answer is the same whether or not the guest appears in any photo; the photos are on the
// private page.
"use strict";

(() => {
  const form = document.getElementById("guest-form");
  const box = document.getElementById("guest-link");
  if (!form || !box) return;

  form.addEventListener("lethe:done", (event) => {
    const answer = event.detail;
    const url = new URL(answer.link, window.location.origin);
    const link = document.getElementById("guest-link-a");
    link.href = url.pathname;
    link.textContent = url.href;
    document.getElementById("guest-link-message").textContent = answer.message;
    form.reset();
    form.hidden = true;
    box.hidden = false;
    document.getElementById("guest-link-h").focus();
  });

  const copy = document.getElementById("guest-link-copy");
  if (copy) {
    copy.addEventListener("click", async () => {
      const link = document.getElementById("guest-link-a");
      try {
        await navigator.clipboard.writeText(link.textContent);
        copy.textContent = "Copied";
      } catch (_) {
        window.getSelection().selectAllChildren(link);
      }
    });
  }
})();
