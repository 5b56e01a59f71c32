/* The opportunity form: "add a row" buttons add a blank product line or competitor in place instead of
   submitting the form back (which is what they do without JS), and a product line's total follows its
   quantity and unit price as they are typed. The server checks and computes everything again. */
(function () {
  "use strict";

  function renumber(row, index) {
    row.dataset.row = String(index);
    row.querySelectorAll("[name], [id], label[for]").forEach(function (el) {
      ["name", "id", "for"].forEach(function (attr) {
        var value = el.getAttribute(attr);
        if (value) el.setAttribute(attr, value.replace(/^(products|competitors)-\d+-/, "$1-" + index + "-"));
      });
    });
  }

  function blank(row) {
    row.querySelectorAll("input, select, textarea").forEach(function (el) {
      if (el.type === "checkbox") el.checked = false;
      else if (el.tagName === "SELECT") el.selectedIndex = 0;
      else el.value = "";
    });
    row.querySelectorAll(".error").forEach(function (el) { el.remove(); });
    row.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
    var total = row.querySelector("[data-line-total]");
    if (total) total.textContent = "";
  }

  function number(text) {
    text = (text || "").replace(/[,\s]/g, "");
    return /^\d+(\.\d+)?$/.test(text) ? parseFloat(text) : null;
  }

  function updateTotal(row) {
    var cell = row.querySelector("[data-line-total]");
    var quantity = row.querySelector("[name$='-quantity']");
    var price = row.querySelector("[name$='-unit_price']");
    if (!cell || !quantity || !price) return;
    var q = number(quantity.value), p = number(price.value);
    // shown only; the saved amounts are computed by the server with decimals, to the fen
    cell.textContent = q !== null && p !== null
      ? (Math.round(q * p * 100) / 100).toLocaleString(undefined, {minimumFractionDigits: 2, maximumFractionDigits: 2})
      : "";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("opportunity-form");
    if (!form) return;
    form.querySelectorAll("[data-add-row]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        var body = form.querySelector("[data-rows='" + button.dataset.addRow + "'] tbody");
        var rows = body ? body.querySelectorAll("tr[data-row]") : [];
        if (!rows.length) return; // the server adds the row
        event.preventDefault();
        var copy = rows[rows.length - 1].cloneNode(true);
        renumber(copy, rows.length);
        blank(copy);
        body.appendChild(copy);
        var first = copy.querySelector("input, select, textarea");
        if (first) first.focus();
      });
    });
    form.addEventListener("input", function (event) {
      var row = event.target.closest("[data-rows='products'] tr[data-row]");
      if (row) updateTotal(row);
    });
  });
})();
