// The audit page: a copy button beside each shortened hash copies its full value.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button || !navigator.clipboard) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    button.textContent = "✔";
    button.setAttribute("aria-label", "Copied");
  });
});
