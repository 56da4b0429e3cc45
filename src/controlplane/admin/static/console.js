// The dashboard's console: a ticket from /admin/tenants/{id}/console/ticket (session cookie
// and CSRF header), xterm.js (vendored, global `Terminal`), and a WebSocket on this origin.
// Binary frames are keystrokes and output; a text frame {"type": "resize"} resizes.
(function () {
  "use strict";
  var section = document.querySelector("[data-console]");
  if (!section) { return; }
  var openButton = section.querySelector("[data-console-open]");
  var closeButton = section.querySelector("[data-console-close]");
  var box = section.querySelector("[data-console-terminal]");
  var status = document.getElementById("console-status");
  var socket = null;
  var term = null;
  var observer = null;
  var encoder = new TextEncoder();

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function say(text) { status.textContent = text; }

  function ended(event) {
    openButton.hidden = false;
    closeButton.hidden = true;
    openButton.disabled = false;
    if (event.code === 1000 && event.reason) { say("Session ended: " + event.reason + "."); }
    else if (event.code === 1006) { say("The connection was lost, or the console was refused."); }
    else { say("Session ended (" + event.code + (event.reason ? ": " + event.reason : "") + ")."); }
    socket = null;
  }

  function open() {
    openButton.disabled = true;
    say("Opening…");
    fetch(section.getAttribute("data-console"), {
      method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf() }
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { throw new Error(body.error ? body.error.message : "refused"); }
        return body;
      });
    }).then(function (ticket) {
      if (observer) { observer.disconnect(); }
      if (term) { term.dispose(); }
      box.hidden = false;
      term = new window.Terminal({ cursorBlink: true, fontSize: 14, screenReaderMode: true, scrollback: 2000 });
      var fit = new window.FitAddon.FitAddon();
      term.loadAddon(fit);
      term.open(box);
      fit.fit();
      var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      var url = scheme + "//" + window.location.host + ticket.ws_path +
        "&cols=" + term.cols + "&rows=" + term.rows;
      var ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      socket = ws;
      var t = term;
      ws.onopen = function () {
        say("Connected.");
        openButton.hidden = true;
        closeButton.hidden = false;
        t.focus();
      };
      ws.onmessage = function (event) {
        if (event.data instanceof ArrayBuffer) { t.write(new Uint8Array(event.data)); }
      };
      ws.onclose = function (event) { if (socket === ws) { ended(event); } };
      t.onData(function (data) {
        if (ws.readyState === WebSocket.OPEN) { ws.send(encoder.encode(data)); }
      });
      t.onResize(function (size) {
        if (ws.readyState === WebSocket.OPEN) {
          ws.send(JSON.stringify({ type: "resize", cols: size.cols, rows: size.rows }));
        }
      });
      observer = new ResizeObserver(function () { fit.fit(); });
      observer.observe(box);
    }).catch(function (error) {
      openButton.disabled = false;
      say(error.message);
    });
  }

  openButton.addEventListener("click", open);
  closeButton.addEventListener("click", function () {
    if (socket) { socket.close(1000, "closed by the admin"); }
  });
  window.addEventListener("pagehide", function () {
    if (socket) { socket.close(1000, "page left"); }
  });
})();
