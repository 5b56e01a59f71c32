/* Mosaic CRM: lists and reference fields. Vanilla JS, no CDN. */
(function () {
  "use strict";
  function debounce(fn, ms) {
    var t;
    return function () { var a = arguments, self = this; clearTimeout(t); t = setTimeout(function () { fn.apply(self, a); }, ms); };
  }
  // reference fields: <input data-suggest="/customers/suggest" list="dl-x"> gets server-side suggestions
  document.querySelectorAll("input[data-suggest]").forEach(function (input) {
    var list = document.getElementById(input.getAttribute("list"));
    if (!list) return;
    var last = null;
    input.addEventListener("input", debounce(function () {
      var q = input.value.trim();
      if (q === last || /#\d+$/.test(q)) return;
      last = q;
      fetch(input.dataset.suggest + "?q=" + encodeURIComponent(q), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (items) {
          list.textContent = "";
          items.forEach(function (item) {
            var option = document.createElement("option");
            option.value = item.value;
            option.label = item.label;
            list.appendChild(option);
          });
        })
        .catch(function () {});
    }, 200));
  });
  // select all rows
  document.querySelectorAll("input[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      box.form.querySelectorAll("input[name=ids]").forEach(function (row) { row.checked = box.checked; });
    });
  });
  // a saved view opens when picked
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  // confirmations
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  document.querySelectorAll("button[data-confirm-delete]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      var action = button.form.querySelector("select[name=action]");
      if (action && action.value === "delete" && !window.confirm(button.dataset.confirmDelete)) event.preventDefault();
    });
  });
})();
