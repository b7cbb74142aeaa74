/* Detections page: the overview of the window — counts, creations per hour by platform, top initiators. */

import {api, clear, el, formatTime, hourLabel, notify, zoneLabel} from "../common.js";
import {stackedBars} from "../chart.js";
import {windowKey} from "./filters.js";
import {$} from "./model.js";

export async function loadOverview() {
  $("overview-window").textContent = "· " + $("window").selectedOptions[0].textContent + " · times in " + zoneLabel();
  try {
    const data = await api("/api/overview", {query: {window: windowKey()}});
    notify($("overview-notice"));
    renderOverview(data);
  } catch (error) {
    notify($("overview-notice"), "error", "Could not load the overview.", error.message);
  }
}

function tile(label, value, hint) {
  return el("div", {className: "cds--tile caw-kpi"},
    el("div", {className: "caw-kpi__value"}, String(value)),
    el("div", {className: "caw-kpi__label"}, label),
    hint ? el("div", {className: "caw-kpi__hint"}, hint) : null);
}

function renderOverview(data) {
  const tiles = clear($("overview-tiles"));
  tiles.appendChild(tile("Cloud accounts created", data.total || 0));
  for (const item of data.by_platform || []) tiles.appendChild(tile(item.platform, item.count));
  tiles.appendChild(tile("Service accounts", data.service_accounts || 0));
  tiles.appendChild(tile("Attack chains", data.chains || 0));
  tiles.appendChild(tile("Suppressed", data.suppressed || 0, "kept, hidden by allowlist entries"));
  stackedBars($("timeline"), $("timeline-legend"), data.timeline || [], data.platforms || [],
    hourLabel, (ms) => formatTime(ms, false));
  const list = clear($("top-initiators"));
  if (!(data.top_initiators || []).length) list.appendChild(el("li", {className: "caw-muted"}, "None in this window."));
  for (const item of data.top_initiators || []) {
    list.appendChild(el("li", {className: "caw-top__item", title: item.actor_id || item.actor || ""},
      el("span", {className: "caw-top__name"}, item.actor || item.actor_id || "(unknown)"),
      el("span", {className: "caw-top__count"}, String(item.count))));
  }
}
