// The live run page: the run's SSE stream (/api/runs/ID/events, the same stream the API serves)
// appended to the timeline as steps start and finish. Text goes in with textContent only, never as HTML.
// If the stream fails (e.g. the run is not recorded yet), it is reopened after the last event
// received (?after=SEQ), so nothing is missed or shown twice; not once the session has ended (the
// server ends a stream whose credentials were revoked).
(function () {
  "use strict";
  var list = document.getElementById("timeline");
  if (!list) { return; }
  var status = document.getElementById("run-status");
  var note = document.getElementById("stream-note");
  var inbox = document.getElementById("inbox-link");
  var last = 0;
  var done = false;

  function add(kind, text) {
    var li = document.createElement("li");
    li.className = "ev-" + kind;
    li.textContent = text;
    list.appendChild(li);
  }
  function setStatus(text) {
    status.textContent = text;
    status.className = "status s-" + text;
  }
  function tokens(t) {
    return (t && t.input != null ? t.input : 0) + " in / " + (t && t.output != null ? t.output : 0) + " out";
  }
  var show = {
    started: function (d) { setStatus("started"); add("started", "Started " + (d.graph || "") + " by " + (d.started_by || "–")); },
    step_started: function (d) {
      setStatus("running");
      add("step-started", "#" + d.step_no + " " + d.node + " · " + (d.title || "") + " · started · effort " + (d.effort || "–"));
    },
    step_finished: function (d) {
      setStatus("running");
      add("step", "#" + d.step_no + " " + d.node + " · " + d.title + " · " + d.status + " · effort " + (d.effort || "–") +
          " · " + tokens(d.tokens) + " · " + (d.cost_usd == null ? "cost unknown" : d.cost_usd.toFixed(6) + " USD") +
          " · " + d.seconds + " s");
    },
    review: function (d) { add("review", "Review after step " + d.step_no + ": " + d.decision + " (" + d.reason + ")"); },
    paused: function (d) {
      setStatus("paused");
      if (d.why === "approval") {
        inbox.hidden = false;
        (d.requests || []).forEach(function (r) { add("paused", "Waiting for approval: " + (r.question || r.request_id)); });
      } else {
        add("paused", "Paused: " + d.why);
      }
    },
    resumed: function (d) { setStatus("resumed"); inbox.hidden = true; add("resumed", "Resumed" + (d.by ? " by " + d.by : "")); },
    budget_alert: function (d) { add("alert", "Budget alert: " + JSON.stringify(d)); },
    failed: function (d) { setStatus("failed"); add("failed", "Failed: " + (d.error || "")); },
    completed: function () { setStatus("completed"); add("completed", "Completed"); done = true; }
  };

  function open() {
    var source = new EventSource(list.dataset.events + (last ? "?after=" + last : ""));
    Object.keys(show).forEach(function (kind) {
      source.addEventListener(kind, function (e) {
        last = Number(e.lastEventId) || last;
        show[kind](JSON.parse(e.data));
        if (done) {
          source.close();
          note.textContent = document.getElementById("charts") ? "The run is complete." :
            "The run is complete; reload the page for its report's charts, if it drew any.";
        }
      });
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED && !done) {  // refused or ended: reopen after the last event,
        fetch("/api/me", {credentials: "same-origin"}).then(function (r) {  // unless the session is over
          if (r.status === 401) {
            note.textContent = "Your session has ended: sign in again to keep watching this run.";
            return;
          }
          setTimeout(open, 1000);
        }, function () { setTimeout(open, 1000); });
      }
    };
  }
  open();
}());
