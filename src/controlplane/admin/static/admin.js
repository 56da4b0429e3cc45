// The dashboard's own script (served from /admin/static; the CSP allows no inline script).
// - passkey ceremonies for forms marked data-webauthn="setup" | "login" | "add"
// - an error banner for HTMX requests that fail outside a form
// - live updates: the event stream /admin/events refreshes the fragments that listen for
//   them; their timed polls run only while the stream is down (a fallback)
"use strict";
(function () {
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  async function postJSON(url, body) {
    var response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body || {}),
    });
    var data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      var error = new Error(data && data.error ? data.error.message : "request failed (" + response.status + ")");
      error.fields = data && data.error ? data.error.fields || [] : [];
      throw error;
    }
    return data;
  }

  function webauthnSupported() {
    return window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON &&
      PublicKeyCredential.parseRequestOptionsFromJSON;
  }

  async function register(prefix, body) {
    var start = await postJSON(prefix + "/options", body);
    var options = PublicKeyCredential.parseCreationOptionsFromJSON(start.options);
    var credential = await navigator.credentials.create({ publicKey: options });
    return postJSON(prefix + "/verify", { ticket: start.ticket, credential: credential.toJSON() });
  }

  async function login(next) {
    var start = await postJSON("/admin/login/options", {});
    var options = PublicKeyCredential.parseRequestOptionsFromJSON(start.options);
    var credential = await navigator.credentials.get({ publicKey: options });
    return postJSON("/admin/login/verify", { ticket: start.ticket, credential: credential.toJSON(), next: next });
  }

  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach(function (el) { el.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    var banner = form.querySelector(".form-error");
    if (banner) { banner.hidden = true; banner.textContent = ""; }
  }

  function showErrors(form, error) {
    var placed = false;
    (error.fields || []).forEach(function (problem) {
      var slot = form.querySelector('[data-error-for="' + problem.field + '"]');
      var input = form.querySelector('[name="' + problem.field + '"]');
      if (slot) { slot.textContent = problem.message; placed = true; }
      if (input) { input.setAttribute("aria-invalid", "true"); }
    });
    if (!placed) {
      var banner = form.querySelector(".form-error");
      var message = error.name === "NotAllowedError"
        ? "The passkey request was cancelled or timed out."
        : error.message;
      if (banner) { banner.textContent = message; banner.hidden = false; }
    }
  }

  function fields(form) {
    var values = {};
    new FormData(form).forEach(function (value, key) {
      if (key !== "csrf_token") { values[key] = String(value).trim(); }
    });
    return values;
  }

  document.addEventListener("submit", async function (event) {
    var form = event.target.closest("form[data-webauthn]");
    if (!form) { return; }
    event.preventDefault();
    clearErrors(form);
    if (!webauthnSupported()) {
      showErrors(form, new Error("This browser cannot use passkeys here (WebAuthn JSON API missing)."));
      return;
    }
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    try {
      var kind = form.dataset.webauthn;
      var result;
      if (kind === "setup") { result = await register("/admin/setup", fields(form)); }
      else if (kind === "add") { result = await register("/admin/passkeys", fields(form)); }
      else { result = await login(form.dataset.next || "/admin"); }
      window.location.assign(result.redirect || "/admin");
    } catch (error) {
      showErrors(form, error);
      if (button) { button.disabled = false; }
    }
  });

  function flash(message) {
    var box = document.getElementById("flash");
    if (!box) { return; }
    box.innerHTML = "";
    var div = document.createElement("div");
    div.className = "flash-error";
    div.textContent = message;
    box.appendChild(div);
  }

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var message = "The request failed (" + xhr.status + ").";
    try {
      var data = JSON.parse(xhr.responseText);
      if (data && data.error && data.error.message) { message = data.error.message; }
    } catch (e) { /* not JSON: keep the generic message */ }
    flash(message);
  });
  document.addEventListener("htmx:sendError", function () {
    flash("The server cannot be reached; the page will catch up when it is back.");
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    // A new user action clears an old error; background polls leave it alone.
    if (!event.detail.elt.hasAttribute("data-poll")) {
      var box = document.getElementById("flash");
      if (box) { box.innerHTML = ""; }
    }
  });

  // ---- Live updates -------------------------------------------------------------------
  // Each frame of /admin/events names a tenant or node that changed; fragments listen for
  // `tenants-live`, `tenant-live-<id>`, `nodes-live` and `live-reset` (hx-trigger ... from:body)
  // and fetch themselves again. A burst of frames costs one refresh per quiet period (at
  // most one a second per kind: about what the 1.5 s poll cost, without its delay).
  var QUIET_MS = 1000;  // a lone change shows at once; a burst refreshes once a second
  var RETRY_MS = 15000;
  var live = false;
  var quiet = {};

  function fire(name) {
    var slot = quiet[name];
    if (slot) { slot.again = true; return; }
    slot = quiet[name] = { again: false };
    window.htmx.trigger(document.body, name);
    window.setTimeout(function () {
      delete quiet[name];
      if (slot.again) { fire(name); }
    }, QUIET_MS);
  }

  function catchUp() {
    fire("tenants-live");
    fire("nodes-live");
    fire("live-reset");
  }

  function connect() {
    var source = new EventSource("/admin/events");
    var wasDown = false;
    source.addEventListener("open", function () {
      live = true;
      document.documentElement.dataset.live = "on";
      if (wasDown) { catchUp(); }  // what changed while the stream was down
    });
    source.addEventListener("error", function () {
      live = false;
      wasDown = true;
      document.documentElement.dataset.live = "off";
      if (source.readyState === EventSource.CLOSED) {
        // Refused (logged out, or the server is restarting): the polls take over; try again later.
        window.setTimeout(connect, RETRY_MS);
      }
    });
    source.addEventListener("tenant", function (event) {
      var id = JSON.parse(event.data).id;
      fire("tenants-live");
      fire("tenant-live-" + id);
    });
    source.addEventListener("node", function () { fire("nodes-live"); });
    source.addEventListener("reset", catchUp);
  }

  // While the stream is up, a timed poll (no triggering event) is not sent.
  document.addEventListener("htmx:confirm", function (event) {
    if (live && !event.detail.triggeringEvent && event.detail.elt.hasAttribute("data-poll")) {
      event.preventDefault();
    }
  });

  if (window.EventSource && window.htmx && document.querySelector("[data-poll]")) {
    connect();
  }
})();
