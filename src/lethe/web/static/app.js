// Lethe's shared page script: calls to the JSON API with the CSRF token, forms that post to the API,
// confirmation dialogs, drop zones and flash messages. No framework, no build step.
"use strict";

(() => {
  const FLASH_KEY = "lethe.flash";
  const SCROLL_KEY = "lethe.scroll";

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) return meta.content;
    const match = document.cookie.match(/(?:^|;\s*)lethe_csrf=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  class ApiError extends Error {
    constructor(message, code, status) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  // One call to the API. `json` is sent as JSON, `form` (FormData) as multipart. Resolves to the
  // answer's JSON; rejects with an ApiError carrying the API's error message.
  async function api(url, { method = "POST", json, form } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form;
    }
    let response;
    try {
      response = await fetch(url, { method, headers, body, credentials: "same-origin" });
    } catch (_) {
      throw new ApiError("The service cannot be reached. Check your connection and try again.", "network", 0);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const error = data && data.error;
      if (response.status === 401 && error && error.code === "unauthorized") {
        throw new ApiError("Your session has ended: log in again.", error.code, 401);
      }
      const message = error && error.message ? error.message : `${response.status} ${response.statusText}`;
      throw new ApiError(message.charAt(0).toUpperCase() + message.slice(1), error && error.code, response.status);
    }
    return data;
  }

  // A form's fields as a JSON object: numbers from number inputs, booleans from data-type="boolean"
  // (a checkbox is true when checked), empty optional fields left out.
  function formJson(form) {
    const result = {};
    for (const field of form.elements) {
      if (!field.name || field.disabled || field.type === "submit" || field.type === "button") continue;
      if (field.dataset.type === "boolean") {
        result[field.name] = field.type === "checkbox" ? field.checked : field.value === "true";
      } else if (field.type === "checkbox" || field.type === "radio") {
        if (field.checked) result[field.name] = field.value;
      } else if (field.value === "" && !field.required) {
        continue;
      } else if (field.type === "number") {
        result[field.name] = Number(field.value);
      } else {
        result[field.name] = field.value;
      }
    }
    return result;
  }

  function showError(form, error) {
    const box = form.querySelector(".form-error");
    const text = error instanceof Error ? error.message : String(error);
    if (box) {
      box.textContent = text;
      box.hidden = false;
    } else {
      flash(text, true);
    }
  }

  function clearError(form) {
    const box = form.querySelector(".form-error");
    if (box) {
      box.hidden = true;
      box.textContent = "";
    }
  }

  function flash(message, isError = false) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.classList.toggle("error", isError);
    box.hidden = false;
  }

  // "Erased {erased_faces} faces" filled from the answer.
  // "{faces}" is the answer's value; "{faces:face}" is that count with its noun ("1 face", "3 faces").
  function fill(template, data) {
    return template.replace(/\{(\w+)(?::(\w+))?\}/g, (_, key, noun) => {
      if (!data || !(key in data)) return "?";
      const value = data[key];
      return noun ? `${Number(value).toLocaleString("en")} ${noun}${Number(value) === 1 ? "" : "s"}` : String(value);
    });
  }

  function setBusy(form, busy) {
    form.setAttribute("aria-busy", busy ? "true" : "false");
    for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = busy;
  }

  // Forms with data-api post to the API. data-encoding="multipart" sends the form as is (files);
  // otherwise JSON. data-then: "reload", "event" (a lethe:done event for the page's script), or a
  // path of this site to go to (filled from the answer unless data-then-literal). data-done: a message shown after the reload
  // (with the answer's warning, if any). data-omit: fields not to send.
  async function submitApiForm(form, submitter) {
    clearError(form);
    const omit = (form.dataset.omit || "").split(/\s+/).filter(Boolean);
    let options;
    if (form.dataset.encoding === "multipart") {
      const data = new FormData(form, submitter);
      for (const name of omit) data.delete(name);
      data.delete("csrf_token");
      options = { form: data };
    } else {
      const data = formJson(form);
      for (const name of omit) delete data[name];
      options = { json: data };
    }
    options.method = (form.dataset.method || "POST").toUpperCase();
    setBusy(form, true);
    let result;
    try {
      result = await api(form.dataset.api, options);
    } catch (error) {
      setBusy(form, false);
      showError(form, error);
      return;
    }
    const then = form.dataset.then || "reload";
    if (form.dataset.done) {
      // An answer may carry a warning (a stop order on a country with no source) or warnings (a
      // source's declaration): they are shown too.
      const warnings = result && Array.isArray(result.warnings) ? result.warnings : [];
      if (result && typeof result.warning === "string") warnings.unshift(result.warning);
      const warning = warnings.map((w) => ` Warning: ${w}.`).join("");
      sessionStorage.setItem(FLASH_KEY, fill(form.dataset.done, result) + warning);
    }
    if (then === "event") {
      setBusy(form, false);
      form.dispatchEvent(new CustomEvent("lethe:done", { detail: result, bubbles: true }));
    } else if (then === "reload") {
      if (form.hasAttribute("data-keep-scroll")) sessionStorage.setItem(SCROLL_KEY, String(window.scrollY));
      window.location.reload();
    } else {
      // A target written by the page may name fields of the answer ({id}); one that came from the
      // address bar (the login page's next, data-then-literal) never: {csrf_token} would leak.
      const target = form.hasAttribute("data-then-literal") ? then : fill(then, result);
      const url = new URL(target, window.location.origin);
      // Only ever a page of this site, whatever the server let through (an open redirect otherwise).
      window.location.assign(url.origin === window.location.origin ? url.pathname + url.search + url.hash : "/");
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-api]");
    if (!form) return;
    event.preventDefault();
    submitApiForm(form, event.submitter);
  });

  // Confirmation dialogs: a button with data-open-dialog opens the <dialog>; Cancel closes it.
  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog && typeof dialog.showModal === "function") dialog.showModal();
      return;
    }
    const closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      const dialog = closer.closest("dialog");
      if (dialog) dialog.close();
    }
  });

  // Drop zones: dropping files on a [data-dropzone] puts them into its file input.
  function wireDropzone(zone) {
    const input = zone.querySelector("input[type=file]");
    if (!input) return;
    const hint = zone.querySelector(".hint");
    const original = hint ? hint.textContent : "";
    const show = () => {
      const n = input.files ? input.files.length : 0;
      zone.classList.toggle("has-files", n > 0);
      if (hint) hint.textContent = n === 0 ? original : n === 1 ? `Chosen: ${input.files[0].name}` : `${n} files chosen`;
    };
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      if (!event.dataTransfer || event.dataTransfer.files.length === 0) return;
      input.files = input.multiple ? event.dataTransfer.files : single(event.dataTransfer.files[0]);
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
    input.addEventListener("change", show);
  }

  function single(file) {
    const transfer = new DataTransfer();
    transfer.items.add(file);
    return transfer.files;
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const zone of document.querySelectorAll("[data-dropzone]")) wireDropzone(zone);
    const message = sessionStorage.getItem(FLASH_KEY);
    if (message) {
      sessionStorage.removeItem(FLASH_KEY);
      flash(message);
    }
    const scroll = sessionStorage.getItem(SCROLL_KEY);
    if (scroll) {
      sessionStorage.removeItem(SCROLL_KEY);
      window.scrollTo(0, Number(scroll));
    }
  });

  window.Lethe = { api, ApiError, formJson, showError, clearError, flash, setBusy };
})();
