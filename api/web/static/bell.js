// The bell's unread count: the page carries it; this refreshes it once a minute while the page is open.
(function () {
  "use strict";
  var bell = document.getElementById("bell-count");
  if (!bell) { return; }
  function refresh() {
    if (document.hidden) { return; }
    fetch("/inbox/count", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        bell.textContent = String(body.unread);
        bell.hidden = body.unread === 0;
      })
      .catch(function () {});
  }
  setInterval(refresh, 60000);
})();
