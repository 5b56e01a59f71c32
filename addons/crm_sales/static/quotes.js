/* The quote form: a product fills the line's description, unit and price; "More lines" adds a row in place;
   the amounts and totals are previewed (the server computes them again, in Decimal, when saving). */
(function () {
  "use strict";
  var form = document.getElementById("quote-form");
  if (!form) { return; }
  var body = form.querySelector("#quote-form-lines tbody");
  var count = document.getElementById("line-count");

  function num(input) {
    var v = parseFloat(String(input && input.value || "").replace(/,/g, ""));
    return isNaN(v) ? 0 : v;
  }
  function fen(v) { return Math.round((v + Number.EPSILON) * 100) / 100; }
  function show(v) { return v.toLocaleString(undefined, {minimumFractionDigits: 2, maximumFractionDigits: 2}); }

  function update() {
    var quoteDisc = num(form.querySelector("[data-quote-discount]"));
    var subtotal = 0, tax = 0;
    body.querySelectorAll("tr.quote-line").forEach(function (row) {
      var qty = num(row.querySelector("[data-qty]")), price = num(row.querySelector("[data-price-input]"));
      var amount = fen(qty * price * (100 - num(row.querySelector("[data-disc]"))) / 100);
      var base = fen(amount * (100 - quoteDisc) / 100);
      subtotal += base;
      tax += fen(base * num(row.querySelector("[data-tax]")) / 100);
      row.querySelector("[data-line-amount]").textContent = qty && price ? show(amount) : "";
    });
    form.querySelector("[data-preview-subtotal]").textContent = show(fen(subtotal));
    form.querySelector("[data-preview-tax]").textContent = show(fen(tax));
    form.querySelector("[data-preview-total]").textContent = show(fen(subtotal + tax));
  }

  function productChosen(select) {
    var option = select.options[select.selectedIndex], row = select.closest("tr");
    if (!option || !option.value) { return; }
    var desc = row.querySelector("input[name$='-description']"), unit = row.querySelector("input[name$='-unit']");
    var price = row.querySelector("[data-price-input]"), qty = row.querySelector("[data-qty]");
    if (!desc.value) { desc.value = option.textContent.replace(/^\S+\s/, ""); }
    if (!unit.value) { unit.value = option.getAttribute("data-unit") || ""; }
    if (!price.value) { price.value = option.getAttribute("data-price") || ""; }
    if (!qty.value) { qty.value = "1"; }
  }

  function addRow() {
    var rows = body.querySelectorAll("tr.quote-line");
    var template = rows[rows.length - 1], index = rows.length;
    var row = template.cloneNode(true);
    row.setAttribute("data-row", index);
    row.querySelectorAll("input, select").forEach(function (el) {
      el.name = el.name.replace(/^line-\d+-/, "line-" + index + "-");
      if (el.tagName === "SELECT") { el.selectedIndex = 0; } else { el.value = ""; }
    });
    row.querySelector("[data-line-amount]").textContent = "";
    body.appendChild(row);
    count.value = String(index + 1);
  }

  form.addEventListener("input", update);
  form.addEventListener("change", function (event) {
    if (event.target.hasAttribute("data-product")) { productChosen(event.target); }
    update();
  });
  var more = document.getElementById("add-lines");
  if (more) {
    more.addEventListener("click", function (event) { event.preventDefault(); addRow(); });
  }
  update();
})();
