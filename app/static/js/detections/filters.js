/* Detections page: the filters → the query of GET /api/detections, /api/detections.csv and /api/overview,
 * the CSV link, and the offense filter chip (from the Offense Summary widget or the detail panel). */

import {appUrl, clear, el, timeZone} from "../common.js";
import {$, COLUMNS, WINDOW_MS, state} from "./model.js";

export function windowKey() {
  return $("window").value;
}

function windowRange() {
  const end = Date.now();
  return {start: end - WINDOW_MS[windowKey()], end};
}

export function filterQuery() {
  const range = windowRange();
  return {
    // An offense's detections are shown whatever their age (the chip says "any time").
    start: state.offense ? 0 : range.start,
    end: range.end,
    offense: state.offense,
    platform: $("f-platform").value,
    triage_status: $("f-triage").value,
    suppressed: $("f-suppressed").value,
    service_accounts: $("f-service").checked ? "true" : "",
    chains_only: $("f-chains").checked ? "true" : "",
    q: $("f-q").value.trim(),
  };
}

export function updateExportLink() {
  const query = {...filterQuery(), sort: state.sort, tz: timeZone(), columns: COLUMNS.map((c) => c.key).join(",")};
  $("export-csv").setAttribute("href", appUrl("/api/detections.csv", query));
}

// The chip for the offense filter; onRemove runs when the user removes it.
export function renderChips(onRemove) {
  const box = clear($("filter-chips"));
  box.hidden = !state.offense;
  $("table-description").textContent = state.offense ?
    `Cloud accounts created in QRadar offense ${state.offense}, any time, newest first.` :
    "Cloud accounts created in the window, newest first.";
  if (!state.offense) return;
  box.appendChild(el("div", {className: "cds--tag cds--tag--filter cds--tag--blue caw-chip", id: "chip-offense",
    title: "Only detections known to be in this QRadar offense"},
  el("span", {className: "cds--tag__label"}, `Offense ${state.offense} · any time`),
  el("button", {type: "button", className: "cds--tag__close-icon", id: "chip-offense-remove",
    "aria-label": `Remove filter: offense ${state.offense}`, title: "Remove filter", onclick: onRemove},
  "✕")));
}

// One offense's detections (or all again, with null): the URL keeps the filter, so reload and sharing work.
export function filterByOffense(id) {
  state.offense = id === null || id === undefined || id === "" ? null : String(id);
  const url = new URL(window.location.href);
  if (state.offense) url.searchParams.set("offense", state.offense);
  else url.searchParams.delete("offense");
  url.searchParams.delete("detection");
  window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  if (state.offense) $("f-suppressed").value = "";  // suppressed ones are part of the offense too
  state.offset = 0;
  state.selected.clear();
}

// The deep link from the Offense Summary widget: /tab/?offense=<id> (the API checks the id and says so).
export function offenseFromUrl(params) {
  const offense = (params.get("offense") || "").trim();
  if (!offense) return;
  state.offense = offense.slice(0, 40);
  $("f-suppressed").value = "";
}
