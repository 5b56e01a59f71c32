/* The kanban board: drag a card (or pick "Move to…") to move an opportunity to another stage.
   The server applies the stage's rules (crm_sales.stages.move); a refused move puts the card back and says
   exactly which fields are missing. No framework, no CDN. */
(function () {
  "use strict";
  var boardEl = document.getElementById("board");
  if (!boardEl) { return; }
  var message = document.getElementById("board-message");
  var dialog = document.getElementById("board-reason");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var dragged = null;

  function say(text, isError, missing) {
    message.hidden = false;
    message.className = "flash " + (isError ? "flash-error" : "flash-success");
    message.textContent = text;
    if (missing && missing.length) {
      var list = document.createElement("ul");
      list.id = "board-missing";
      missing.forEach(function (m) {
        var item = document.createElement("li");
        item.textContent = m.label;
        item.dataset.code = m.code;
        list.appendChild(item);
      });
      message.appendChild(list);
    }
  }

  function columnOf(stageId) { return boardEl.querySelector('.board-column[data-stage="' + stageId + '"]'); }

  function updateSums(columns) {
    boardEl.querySelectorAll(".board-column").forEach(function (col) {
      var sums = columns[col.dataset.stage] || { count: 0, amount: "0.00", weighted: "0.00" };
      col.querySelector('[data-sum="count"]').textContent = sums.count;
      col.querySelector('[data-sum="amount"]').textContent = sums.amount;
      col.querySelector('[data-sum="weighted"]').textContent = sums.weighted;
    });
  }

  function askReason() {
    return new Promise(function (resolve) {
      if (!dialog || !dialog.showModal) { resolve({ reason: window.prompt("?") || "", note: "" }); return; }
      dialog.querySelector("#board-reason-code").value = "";
      dialog.querySelector("#board-reason-note").value = "";
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        if (dialog.returnValue !== "ok") { resolve(null); return; }
        resolve({ reason: dialog.querySelector("#board-reason-code").value,
                  note: dialog.querySelector("#board-reason-note").value });
      });
      dialog.showModal();
    });
  }

  function move(card, stageId, kind) {
    var origin = card.parentNode, next = card.nextSibling;
    var target = columnOf(stageId);
    if (!target || target.dataset.stage === card.closest(".board-column").dataset.stage) { return; }
    var ask = (kind === "lost" || kind === "abandoned") ? askReason() : Promise.resolve({ reason: null, note: "" });
    ask.then(function (extra) {
      if (extra === null) { return; }
      target.querySelector(".board-cards").prepend(card);  // optimistic; put back if refused
      fetch(boardEl.dataset.moveUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ opportunity_id: Number(card.dataset.id), stage_id: Number(stageId),
                               reason: extra.reason, note: extra.note, scope: boardEl.dataset.scope })
      }).then(function (r) { return r.json().catch(function () { return { ok: false, error: String(r.status) }; }); })
        .then(function (data) {
          if (data.ok) {
            say(data.message, false);
            updateSums(data.columns || {});
            var select = card.querySelector(".board-move");
            if (select) { select.value = ""; }
          } else {
            origin.insertBefore(card, next);
            say(data.error, true, data.missing);
          }
        });
    });
  }

  boardEl.addEventListener("dragstart", function (e) {
    var card = e.target.closest && e.target.closest(".board-card");
    if (!card) { return; }
    dragged = card;
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", card.dataset.id);
  });
  boardEl.addEventListener("dragover", function (e) {
    if (dragged && e.target.closest(".board-column")) { e.preventDefault(); }
  });
  boardEl.addEventListener("drop", function (e) {
    var col = e.target.closest(".board-column");
    if (!dragged || !col) { return; }
    e.preventDefault();
    var card = dragged;
    dragged = null;
    move(card, col.dataset.stage, col.dataset.kind);
  });
  boardEl.addEventListener("change", function (e) {
    if (!e.target.classList.contains("board-move") || !e.target.value) { return; }
    var option = e.target.selectedOptions[0];
    move(e.target.closest(".board-card"), e.target.value, option.dataset.kind);
  });
  boardEl.addEventListener("click", function (e) {
    var more = e.target.closest(".board-more");
    if (!more) { return; }
    fetch(more.dataset.url, { credentials: "same-origin" }).then(function (r) { return r.text(); })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var list = more.parentNode;
        more.remove();
        Array.prototype.slice.call(holder.children).forEach(function (child) { list.appendChild(child); });
      });
  });
})();
