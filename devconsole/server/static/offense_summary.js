// Offense Summary page: inject the app's fragment html at the top and wire the OffenseSummaryToolbar
// GUI actions, the way QRadar's console does (client-side, through the app proxy, with the user's cookies).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("page-data").textContent);
  var output = document.getElementById("action-output");

  function cookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) { return decodeURIComponent(parts[i].slice(eq + 1)); }
    }
    return "";
  }

  function loadFragment(fragment) {
    var holder = document.createElement("div");
    holder.className = "fragment";
    holder.dataset.state = "loading";
    document.getElementById("fragments").appendChild(holder);
    return fetch(fragment.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (body) {
        holder.innerHTML = (body && typeof body.html === "string") ? body.html : "";  // as QRadar injects it
        holder.dataset.state = "loaded";
      })
      .catch(function (error) {
        holder.textContent = "The app's fragment could not be loaded: " + error.message;
        holder.dataset.state = "error";
      });
  }

  function runAction(action) {
    var call = Promise.resolve(null);
    if (action.url) {
      var headers = { Accept: "application/json" };
      if (action.method !== "GET") { headers.QRadarCSRF = cookie("QRadarCSRF"); }
      var url = action.url + "?context=" + encodeURIComponent(String(data.offenseId));
      call = fetch(url, { method: action.method, credentials: "same-origin", headers: headers })
        .then(function (response) {
          output.dataset.status = String(response.status);
          return response.text();
        })
        .then(function (text) {
          try { return JSON.parse(text); } catch (e) { return text; }
        });
    }
    return call.then(function (result) {
      output.textContent = "Action " + action.id + " ran";
      if (action.javascript) {
        // The manifest's javascript runs with `result` (the REST method's answer) and `context` bound.
        var run = new Function("result", "context", action.javascript);
        run(result, String(data.offenseId));
      }
      output.dataset.state = "done";
    }).catch(function (error) {
      output.textContent = "Action " + action.id + " failed: " + error.message;
      output.dataset.state = "error";
    });
  }

  var buttons = document.querySelectorAll("button.gui-action");
  Array.prototype.forEach.call(buttons, function (button) {
    button.addEventListener("click", function () {
      runAction(data.actions[Number(button.dataset.actionIndex)]);
    });
  });
  Promise.all(data.fragments.map(loadFragment)).then(function () {
    document.body.dataset.fragments = "done";
  });
})();
