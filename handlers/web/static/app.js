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

// etaInLocalTime lets a person type the ETA in their own time: on submit,
// the typed "2026-11-22 03:04" (or a datetime-local value) is read in the
// browser's zone and sent as UTC in eta_utc, which the server prefers.
// Without this script the server reads the typed time as UTC, and the
// label says which applies.
function etaInLocalTime(form) {
  var input = form.querySelector("input[name=eta]");
  var utc = form.querySelector("input[name=eta_utc]");
  var label = form.querySelector("label[for=" + (input ? input.id : "none") + "]");
  if (!input || !utc) {
    return;
  }
  if (label) {
    label.textContent = "ETA (your local time, e.g. 2026-11-22 03:04)";
  }
  form.addEventListener("submit", function () {
    utc.value = "";
    var m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})$/.exec(input.value.trim());
    if (m) {
      var d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
      if (!isNaN(d.getTime())) {
        utc.value = d.toISOString().replace(/\.\d{3}Z$/, "Z");
      }
    }
  });
}

// checklistBoxes makes each step's tick box press its form's button:
// ticking marks the step done, unticking opens it again (the form asks
// why). Without this script the buttons beside the box do the same.
function checklistBoxes(root) {
  root.querySelectorAll("form.step-form").forEach(function (form) {
    var box = form.querySelector("input.step-box");
    if (!box) {
      return;
    }
    box.addEventListener("change", function () {
      var button = form.querySelector(box.checked ? "button.step-done" : "button.step-open");
      if (!button) {
        return;
      }
      var reason = form.querySelector("input.step-reason");
      if (!box.checked && reason && reason.value.trim() === "") {
        box.checked = true;
        reason.focus();
        reason.placeholder = "say why, then untick again";
        return;
      }
      form.requestSubmit(button);
    });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  fillLocalTimes(document);
  checklistBoxes(document);
  document.querySelectorAll("form").forEach(etaInLocalTime);
  var list = document.getElementById("incident-list");
  if (list) {
    var seconds = parseInt(list.getAttribute("data-refresh"), 10);
    if (seconds > 0) {
      refreshList(list, seconds);
    }
  }
});
