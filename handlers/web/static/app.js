// Responder pages: local times beside the UTC ones, and a list that
// refreshes itself. No inline script, so the page's CSP stays strict.
"use strict";

function fillLocalTimes(root) {
  root.querySelectorAll("time[datetime]").forEach(function (t) {
    var span = t.nextElementSibling;
    if (!span || !span.classList.contains("local")) {
      return;
    }
    var d = new Date(t.getAttribute("datetime"));
    if (isNaN(d.getTime())) {
      return;
    }
    span.textContent = "(" + d.toLocaleString([], {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", timeZoneName: "short"
    }) + " local)";
  });
}

function refreshList(list, seconds) {
  window.setTimeout(function () {
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (resp) {
        if (!resp.ok || resp.redirected) {
          throw new Error("status " + resp.status);
        }
        return resp.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("incident-list");
        if (fresh) {
          list.innerHTML = fresh.innerHTML;
          fillLocalTimes(list);
        }
      })
      .catch(function () { /* keep the list shown; try again next time */ })
      .then(function () { refreshList(list, seconds); });
  }, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", function () {
  fillLocalTimes(document);
  var list = document.getElementById("incident-list");
  if (list) {
    var seconds = parseInt(list.getAttribute("data-refresh"), 10);
    if (seconds > 0) {
      refreshList(list, seconds);
    }
  }
});
