// The run page's live timeline: poll /runs/ID/events for what happened since, append it as text (never as
// HTML), and reload when the run's status or the gate it waits at changes (unless a reason is being typed).
(function () {
  "use strict";
  var body = document.body;
  if (!body.dataset.run || body.dataset.live !== "1") {
    return;
  }
  var count = Number(body.dataset.count) || 0;
  var list = document.getElementById("timeline");
  function append(entry) {
    var item = document.createElement("li");
    var time = document.createElement("time");
    item.dataset.kind = entry.kind;
    time.textContent = entry.ts.slice(11, 19);
    item.appendChild(time);
    item.appendChild(document.createTextNode(" " + entry.text));
    list.appendChild(item);
  }
  function changed(data) {
    var reason = document.getElementById("reason");
    if (reason && reason.value) {
      document.getElementById("moved").hidden = false;
      return;
    }
    window.location.reload();
  }
  function poll() {
    var url = "/runs/" + encodeURIComponent(body.dataset.run) + "/events?after=" + count;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) {
        if (answer.status === 401) {
          window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
          return null;
        }
        return answer.ok ? answer.json() : null;
      })
      .then(function (data) {
        if (data) {
          data.entries.forEach(append);
          count = data.count;
          if (data.status !== body.dataset.status || data.gate !== body.dataset.gate) {
            changed(data);
            return;
          }
        }
        window.setTimeout(poll, 1500);
      })
      .catch(function () {
        window.setTimeout(poll, 3000);
      });
  }
  window.setTimeout(poll, 1500);
})();
