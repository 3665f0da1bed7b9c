// The users page: shows a password or token once, from the API's answer, and creates users with
// several roles. Other forms on the page are the shared data-api forms (app.js).
"use strict";

(() => {
  const box = () => document.getElementById("secret");

  function showSecret(what, value) {
    const panel = box();
    if (!panel) return;
    panel.querySelector("[data-secret-what]").textContent = what;
    panel.querySelector("[data-secret-value]").textContent = value;
    panel.hidden = false;
    panel.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("lethe:done", (event) => {
    const form = event.target.closest("form[data-secret]");
    if (!form || !event.detail) return;
    const value = event.detail[form.dataset.secret];
    if (typeof value === "string") showSecret(form.dataset.secretWhat, value);
    form.reset();
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy-secret]");
    if (!button) return;
    const value = box().querySelector("[data-secret-value]").textContent;
    if (navigator.clipboard) navigator.clipboard.writeText(value).then(() => (button.textContent = "Copied"));
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-users-create]");
    if (!form) return;
    event.preventDefault();
    const { api, clearError, showError, setBusy } = window.Lethe;
    clearError(form);
    const roles = [...form.querySelectorAll("input[name=roles]:checked")].map((input) => input.value);
    if (roles.length === 0) {
      showError(form, "Choose at least one role.");
      return;
    }
    setBusy(form, true);
    try {
      const user = await api("/api/users", { json: { name: form.elements.name.value, roles } });
      showSecret(`Password of the new user ${user.name} (${user.roles.join(", ")})`, user.password);
      form.reset();
    } catch (error) {
      showError(form, error);
    } finally {
      setBusy(form, false);
    }
  });
})();
