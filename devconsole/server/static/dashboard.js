// Dashboard: call each dashboard item's REST method through the app proxy and render its HTML,
// as QRadar's classic Dashboard tab does with {"id", "title", "HTML"}.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("page-data").textContent);
  var sections = document.querySelectorAll("section.dashboard-item");
  var loads = Array.prototype.map.call(sections, function (section) {
    var item = data.items[Number(section.dataset.itemIndex)];
    var body = section.querySelector(".item-body");
    return fetch(item.url, { method: item.method, credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (json) {
        if (json && typeof json.title === "string") { section.querySelector(".item-title").textContent = json.title; }
        body.innerHTML = (json && typeof json.HTML === "string") ? json.HTML : "";
        section.dataset.state = "loaded";
      })
      .catch(function (error) {
        body.textContent = "The dashboard item could not be loaded: " + error.message;
        section.dataset.state = "error";
      });
  });
  Promise.all(loads).then(function () { document.body.dataset.dashboard = "done"; });
})();
