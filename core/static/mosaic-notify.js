// The notification bell: refresh the unread count every minute (while the page is visible).
(function () {
  "use strict";
  var bell = document.getElementById("notification-bell");
  if (!bell) { return; }
  var count = document.getElementById("notification-count");
  function refresh() {
    if (document.hidden) { return; }
    fetch(bell.getAttribute("data-count-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        var n = data.unread || 0;
        count.textContent = n > 99 ? "99+" : String(n);
        count.hidden = n === 0;
        bell.classList.toggle("has-unread", n > 0);
      })
      .catch(function () { /* offline: keep the last count */ });
  }
  setInterval(refresh, 60000);
  document.addEventListener("visibilitychange", refresh);
})();
