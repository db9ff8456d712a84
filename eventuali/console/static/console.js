// Live tail of the global feed: each server-sent event is one record view.
// Every value is set with textContent, never as HTML: payloads are untrusted.
(function () {
  "use strict";
  var table = document.getElementById("feed");
  if (!table) { return; }
  var body = table.tBodies[0];
  var status = document.getElementById("status");
  var source = new EventSource("/feed/events?after=" + encodeURIComponent(table.dataset.after));

  function cell(row, text) {
    var td = row.insertCell(-1);
    td.textContent = text;
    return td;
  }

  source.onmessage = function (msg) {
    var v = JSON.parse(msg.data);
    var row = body.insertRow(0);
    row.className = "new";
    cell(row, String(v.position));
    cell(row, v.timestamp);
    var link = document.createElement("a");
    link.href = "/streams/" + encodeURIComponent(v.stream_id);
    link.textContent = v.stream_id;
    row.insertCell(-1).appendChild(link);
    cell(row, String(v.version));
    cell(row, v.event_type);
    var code = document.createElement("code");
    code.textContent = ("data" in v) ? JSON.stringify(v.data) : "(undecoded) " + v.payload_b64;
    row.insertCell(-1).appendChild(code);
    table.dataset.after = String(v.position);
  };
  source.onopen = function () { status.textContent = "live"; };
  source.onerror = function () { status.textContent = "reconnecting…"; };
}());
