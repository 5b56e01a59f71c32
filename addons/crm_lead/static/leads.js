/* Mosaic CRM, Leads: the duplicate check while a lead is typed (leads, customers, contacts). Vanilla JS. */
(function () {
  "use strict";
  document.querySelectorAll(".dedup-box[data-lead-dedup-url]").forEach(function (box) {
    var form = box.closest("form");
    var live = box.querySelector(".dedup-live");
    if (!form || !live) return;
    var names = ["name", "company", "mobile", "phone", "email"];
    var timer = null, last = null, seq = 0;
    function query() {
      var params = new URLSearchParams();
      names.forEach(function (n) {
        var input = form.elements[n];
        if (input && input.value && input.value.trim()) params.set(n, input.value.trim());
      });
      if (!params.toString()) return "";
      if (box.dataset.dedupExclude) params.set("exclude", box.dataset.dedupExclude);
      return params.toString();
    }
    function show(data) {
      live.textContent = "";
      if (!data.matches || !data.matches.length) return;
      var title = document.createElement("p");
      title.textContent = box.dataset.dedupTitle;
      live.appendChild(title);
      var list = document.createElement("ul");
      data.matches.forEach(function (m) {
        var item = document.createElement("li");
        var name;
        if (m.url) { name = document.createElement("a"); name.href = m.url; name.target = "_blank"; }
        else { name = document.createElement("span"); }
        name.textContent = m.label;
        item.appendChild(name);
        var extra = " — " + m.rule_name + " (" + m.score + ")";
        if (!m.url && m.owner) extra += " · " + box.dataset.dedupHidden.replace("{owner}", m.owner);
        if (m.action === "block") extra += " · " + box.dataset.dedupBlocked;
        item.appendChild(document.createTextNode(extra));
        if (m.action === "block") item.className = "error";
        list.appendChild(item);
      });
      live.appendChild(list);
    }
    function run() {
      var q = query();
      if (q === last) return;
      last = q;
      var mine = ++seq;
      if (!q) { live.textContent = ""; return; }
      fetch(box.dataset.leadDedupUrl + "?" + q, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { matches: [] }; })
        .then(function (data) { if (mine === seq) show(data); })
        .catch(function () {});
    }
    names.forEach(function (n) {
      var input = form.elements[n];
      if (!input) return;
      input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(run, 400); });
    });
  });
})();
