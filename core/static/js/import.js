/* Mosaic CRM: the import's progress bar. Polls the batch's status endpoint until the import has finished,
   then reloads the page to show the result. Vanilla JS, no CDN. */
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box || box.dataset.finished === "true") return;
  var url = box.dataset.statusUrl;
  // counts as the page's language writes them (25,000), as the server rendered them
  var numbers = window.Intl ? new Intl.NumberFormat(document.documentElement.lang || undefined) : null;
  function show(state) {
    box.querySelectorAll("[data-field]").forEach(function (el) {
      var name = el.dataset.field;
      if (!(name in state)) return;
      if (el.tagName === "PROGRESS") { el.value = state[name]; el.textContent = state[name] + "%"; }
      else if (name === "message") { el.textContent = state.message; el.hidden = !state.message; }
      else if (typeof state[name] === "number" && numbers) el.textContent = numbers.format(state[name]);
      else el.textContent = state[name];
    });
    var status = document.getElementById("import-status");
    if (status) status.dataset.status = state.status;
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (!state) { setTimeout(poll, 3000); return; }
        show(state);
        if (state.finished) window.location.reload();
        else setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 500);
})();
