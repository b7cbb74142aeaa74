/* Detections page (the console tab): wires its parts together — the filters, the table, the overview, the
 * refresh status poll and the detail panel. Each part imports only the shared model and common helpers;
 * what one part asks of another is passed in here, so no module imports a module that imports it back. */

import {debounce, isUtc, setUtc} from "../common.js";
import {filterByOffense, offenseFromUrl, renderChips} from "./filters.js";
import {$, state} from "./model.js";
import {loadOverview} from "./overview.js";
import {initPanel, openPanel} from "./panel.js";
import {initStatus, loadStatus} from "./status.js";
import {applyBatch, initTable, loadTable, renderBody} from "./table.js";

function reloadData() {
  loadOverview();
  loadTable();
}

// Show one offense's detections, or all again with null.
function showOffense(id) {
  filterByOffense(id);
  renderChips(() => showOffense(null));
  loadTable();
}

function setZoneButtons() {
  const utc = isUtc();
  for (const [id, on] of [["tz-local", !utc], ["tz-utc", utc]]) {
    $(id).classList.toggle("cds--content-switcher--selected", on);
    $(id).setAttribute("aria-selected", String(on));
  }
}

function wireFilters() {
  const reset = () => {
    state.offset = 0;
    state.selected.clear();
    loadTable();
  };
  for (const id of ["f-platform", "f-triage", "f-suppressed", "f-service", "f-chains"]) {
    $(id).addEventListener("change", reset);
  }
  $("f-q").addEventListener("input", debounce(reset, 300));
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    reset();
  });
  $("window").addEventListener("change", () => {
    state.offset = 0;
    reloadData();
  });
  for (const id of ["tz-local", "tz-utc"]) {
    $(id).addEventListener("click", () => {
      setUtc($(id).dataset.tz === "UTC");
      setZoneButtons();
      reloadData();
      loadStatus();
      if (state.openId) openPanel(state.openId);
    });
  }
}

function wirePaging() {
  $("page-size").addEventListener("change", () => {
    state.limit = Number($("page-size").value);
    state.offset = 0;
    loadTable();
  });
  $("page-prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - state.limit);
    loadTable();
  });
  $("page-next").addEventListener("click", () => {
    state.offset += state.limit;
    loadTable();
  });
  $("batch-apply").addEventListener("click", applyBatch);
  $("batch-clear").addEventListener("click", () => {
    state.selected.clear();
    renderBody();
  });
}

function init() {
  initTable({onOpen: openPanel});
  initPanel({onTriaged: loadTable, onShowOffense: showOffense});
  initStatus({onRefreshed: reloadData});
  setZoneButtons();
  wireFilters();
  wirePaging();
  const params = new URLSearchParams(window.location.search);
  offenseFromUrl(params);
  renderChips(() => showOffense(null));
  reloadData();
  loadStatus();
  // Deep link from the Offense Summary widget, the dashboard item and Pulse: /tab/?detection=<id>.
  const linked = params.get("detection");
  if (linked && /^[0-9]{1,15}$/.test(linked)) openPanel(Number(linked));
}

document.addEventListener("DOMContentLoaded", init);
