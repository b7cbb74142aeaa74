/* Detections page: the table — server-side sort, filter and paging, row selection with keyboard moves, and
 * bulk triage of the selected rows. Every cell is written as text. */

import {api, clear, el, notify} from "../common.js";
import {filterQuery, updateExportLink} from "./filters.js";
import {$, COLUMNS, SORTABLE, state} from "./model.js";

let openDetection = () => {};

// onOpen(id): show a detection's details (a row clicked, or the open one re-read after bulk triage).
export function initTable({onOpen}) {
  openDetection = onOpen;
  renderHead();
}

function renderHead() {
  const row = clear($("detections-head"));
  const all = el("input", {type: "checkbox", className: "cds--checkbox", id: "select-all",
    "aria-label": "Select all rows on this page"});
  all.addEventListener("change", () => {
    for (const d of state.items) all.checked ? state.selected.add(d.id) : state.selected.delete(d.id);
    renderBody();
  });
  row.appendChild(el("th", {className: "cds--table-column-checkbox", scope: "col"},
    el("div", {className: "cds--checkbox--inline caw-check"}, all,
      el("label", {for: "select-all", className: "cds--checkbox-label"}))));
  for (const column of COLUMNS) {
    if (!SORTABLE.has(column.key)) {
      row.appendChild(el("th", {scope: "col", dataset: {column: column.key}},
        el("div", {className: "cds--table-header-label"}, column.label)));
      continue;
    }
    const active = state.sort.replace(/^-/, "") === column.key;
    const descending = state.sort.startsWith("-");
    const ariaSort = active ? (descending ? "descending" : "ascending") : "none";
    const button = el("button", {type: "button",
      className: "cds--table-sort" + (active ? " cds--table-sort--active" : "") +
        (active && !descending ? " cds--table-sort--descending" : ""),
      dataset: {sort: column.key}, onclick: () => sortBy(column.key)},
    el("span", {className: "cds--table-sort__flex"},
      el("div", {className: "cds--table-header-label"}, column.label),
      el("span", {className: "caw-sort-mark", "aria-hidden": "true"},
        active ? (descending ? " ▼" : " ▲") : "")));
    row.appendChild(el("th", {scope: "col", "aria-sort": ariaSort, dataset: {column: column.key}}, button));
  }
}

function sortBy(key) {
  state.sort = state.sort === "-" + key ? key : "-" + key;
  state.offset = 0;
  renderHead();
  loadTable();
}

export function renderBody() {
  const body = clear($("detections-body"));
  if (!state.items.length) {
    body.appendChild(el("tr", {}, el("td", {colspan: COLUMNS.length + 1, className: "caw-empty"},
      "No detections match these filters in this window.")));
  }
  for (const d of state.items) {
    const box = el("input", {type: "checkbox", className: "cds--checkbox", id: "select-" + d.id,
      "aria-label": "Select detection " + d.id});
    box.checked = state.selected.has(d.id);
    box.addEventListener("change", () => {
      box.checked ? state.selected.add(d.id) : state.selected.delete(d.id);
      updateBatch();
    });
    box.addEventListener("click", (event) => event.stopPropagation());
    // Roving tabindex: one row is in the tab order; arrow keys move between rows.
    const row = el("tr", {tabindex: d === state.items[0] ? "0" : "-1", dataset: {id: d.id},
      className: "caw-row" + (state.openId === d.id ? " caw-row--open" : "") +
        (d.suppressed_by ? " caw-row--suppressed" : ""),
      "aria-label": "Detection " + d.id + ": " + (d.target_account || "") + " by " + (d.actor || "")},
    el("td", {className: "cds--table-column-checkbox"},
      el("div", {className: "cds--checkbox--inline caw-check"}, box,
        el("label", {for: "select-" + d.id, className: "cds--checkbox-label"}))));
    for (const column of COLUMNS) {
      const value = column.render ? column.render(d) : d[column.key];
      // Cells clamp to a few lines (app.css .caw-cell): log values can be kilobytes long.
      const long = typeof value === "string" && value.length > 60 ? value.slice(0, 1000) : null;
      row.appendChild(el("td", {dataset: {column: column.key}, title: long},
        el("div", {className: "caw-cell"}, value === null || value === undefined ? "" : value)));
    }
    row.addEventListener("click", () => openDetection(d.id));
    row.addEventListener("keydown", rowKeys);
    row.addEventListener("focus", () => {
      for (const other of document.querySelectorAll("#detections-body tr.caw-row")) {
        other.tabIndex = other === row ? 0 : -1;
      }
    });
    body.appendChild(row);
  }
  const all = $("select-all");
  if (all) all.checked = state.items.length > 0 && state.items.every((d) => state.selected.has(d.id));
  updateBatch();
}

// Arrow keys move between rows, Enter/Space opens the detail panel, Home/End jump.
function rowKeys(event) {
  const row = event.currentTarget;
  const rows = Array.from(document.querySelectorAll("#detections-body tr.caw-row"));
  const index = rows.indexOf(row);
  let target = null;
  if (event.key === "ArrowDown") target = rows[index + 1];
  else if (event.key === "ArrowUp") target = rows[index - 1];
  else if (event.key === "Home") target = rows[0];
  else if (event.key === "End") target = rows[rows.length - 1];
  else if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    openDetection(Number(row.dataset.id));
    return;
  }
  if (target) {
    event.preventDefault();
    target.focus();
  }
}

function renderPagination() {
  const first = state.total ? state.offset + 1 : 0;
  const last = Math.min(state.offset + state.limit, state.total);
  $("page-range").textContent = `${first}–${last} of ${state.total} detections`;
  const pages = Math.max(1, Math.ceil(state.total / state.limit));
  $("page-of").textContent = `Page ${Math.floor(state.offset / state.limit) + 1} of ${pages}`;
  $("page-prev").disabled = state.offset === 0;
  $("page-next").disabled = state.offset + state.limit >= state.total;
}

export async function loadTable() {
  updateExportLink();
  $("detections").setAttribute("aria-busy", "true");
  try {
    const body = await api("/api/detections",
      {query: {...filterQuery(), sort: state.sort, limit: state.limit, offset: state.offset}});
    state.items = body.items || [];
    state.total = Number(body.total || 0);
    notify($("table-notice"));
    renderBody();
    renderPagination();
  } catch (error) {
    notify($("table-notice"), "error", "Could not load detections.", error.message);
  } finally {
    $("detections").setAttribute("aria-busy", "false");
  }
}

/* ---------- bulk triage ---------- */

function updateBatch() {
  const count = state.selected.size;
  $("batch").hidden = count === 0;
  $("batch-count").textContent = count + (count === 1 ? " detection selected" : " detections selected");
}

export async function applyBatch() {
  const ids = Array.from(state.selected);
  try {
    await api("/api/detections/triage", {method: "POST",
      body: {ids, status: $("batch-status").value, note: $("batch-note").value}});
    state.selected.clear();
    $("batch-note").value = "";
    notify($("table-notice"), "success", `Triage status set on ${ids.length} detections.`);
    await loadTable();
    if (state.openId && ids.includes(state.openId)) openDetection(state.openId);
  } catch (error) {
    notify($("table-notice"), "error", "Could not update triage status.", error.message);
  }
}
