/* Detections page: overview, refresh status, the table (server-side sort/filter/page), triage and the
 * detail panel. Every value shown comes from logs and is written as text. */
"use strict";

(function () {
  const {el, clear, tag, api, appUrl, notify, formatTime, hourLabel, zoneLabel, debounce} = window.CAW;
  const $ = (id) => document.getElementById(id);

  const WINDOW_MS = {"1h": 3600e3, "24h": 24 * 3600e3, "7d": 7 * 24 * 3600e3, "30d": 30 * 24 * 3600e3};
  const TRIAGE_LABELS = {new: "New", investigating: "Investigating", benign: "Benign – expected",
    malicious: "Malicious", escalated: "Escalated"};
  const TRIAGE_COLORS = {new: "blue", investigating: "purple", benign: "green", malicious: "red", escalated: "magenta"};
  const PLATFORM_COLORS = {"AWS": "warm-gray", "Azure AD": "blue", "Office 365": "cyan", "GCP": "teal"};

  // The visible columns: key (API field, and sort key when sortable), header, how to render a cell.
  // Sortable = the detection API's sort whitelist (app/store/detections.py SORT_COLUMNS).
  const SORTABLE = new Set(["event_time", "actor", "target_account", "cloud_platform", "triage_status"]);
  const COLUMNS = [
    {key: "event_time", label: "Time", render: (d) => formatTime(d.event_time)},
    {key: "event_category", label: "Category", render: (d) => d.event_category || d.event_name},
    {key: "log_source", label: "Log source"},
    {key: "actor", label: "Actor"},
    {key: "target_account", label: "Target account"},
    {key: "source_ip", label: "Source IP"},
    {key: "cloud_platform", label: "Cloud platform",
      render: (d) => d.cloud_platform ? tag(d.cloud_platform, PLATFORM_COLORS[d.cloud_platform]) : ""},
    {key: "is_service_account", label: "Service account",
      render: (d) => d.is_service_account ? tag("Service account", "purple") : "No"},
    {key: "chain_id", label: "Chain",
      render: (d) => d.chain_id ? tag(chainLabel(d), "red", "Part of an attack chain") : ""},
    {key: "triage_status", label: "Triage",
      render: (d) => tag(TRIAGE_LABELS[d.triage_status] || d.triage_status || "New",
        TRIAGE_COLORS[d.triage_status] || "gray")},
  ];

  const state = {
    sort: "-event_time", limit: 50, offset: 0, total: 0, items: [], selected: new Set(), openId: null,
    refreshTimer: null,
    offense: null,  // /tab/?offense=<id>: only that QRadar offense's detections (a removable chip)
  };

  function chainLabel(d) {
    return (d.chain_kind ? String(d.chain_kind).replace(/_/g, " ") : "chain") + " #" + d.chain_id;
  }

  /* ---------- filters → query ---------- */

  function windowKey() {
    return $("window").value;
  }

  function windowRange() {
    const end = Date.now();
    return {start: end - WINDOW_MS[windowKey()], end};
  }

  // Query parameters understood by GET /api/detections, /api/detections.csv and /api/overview.
  function filterQuery() {
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

  function updateExportLink() {
    const query = {...filterQuery(), sort: state.sort, tz: window.CAW.timeZone(),
      columns: COLUMNS.map((c) => c.key).join(",")};
    $("export-csv").setAttribute("href", appUrl("/api/detections.csv", query));
  }

  /* ---------- link filter chip (from the Offense Summary widget or the detail panel) ---------- */

  function renderChips() {
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
      "aria-label": `Remove filter: offense ${state.offense}`, title: "Remove filter", onclick: () => setOffense(null)},
    "✕")));
  }

  // Show one offense's detections (or all again): the URL keeps the filter, so reload and sharing work.
  function setOffense(id) {
    state.offense = id === null || id === undefined || id === "" ? null : String(id);
    const url = new URL(window.location.href);
    if (state.offense) url.searchParams.set("offense", state.offense);
    else url.searchParams.delete("offense");
    url.searchParams.delete("detection");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    if (state.offense) $("f-suppressed").value = "";  // suppressed ones are part of the offense too
    state.offset = 0;
    state.selected.clear();
    renderChips();
    loadTable();
  }

  /* ---------- table ---------- */

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
        el("label", {for: "select-all", className: "cds--checkbox-label", "aria-label": "Select all rows"}))));
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

  function renderBody() {
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
      row.addEventListener("click", () => openPanel(d.id));
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
      openPanel(Number(row.dataset.id));
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

  async function loadTable() {
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

  /* ---------- overview ---------- */

  async function loadOverview() {
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
    window.CAWChart.stackedBars($("timeline"), $("timeline-legend"), data.timeline || [], data.platforms || [],
      hourLabel, (ms) => formatTime(ms, false));
    const list = clear($("top-initiators"));
    if (!(data.top_initiators || []).length) list.appendChild(el("li", {className: "caw-muted"}, "None in this window."));
    for (const item of data.top_initiators || []) {
      list.appendChild(el("li", {className: "caw-top__item", title: item.actor_id || item.actor || ""},
        el("span", {className: "caw-top__name"}, item.actor || item.actor_id || "(unknown)"),
        el("span", {className: "caw-top__count"}, String(item.count))));
    }
  }

  /* ---------- refresh status ---------- */

  function refreshErrorText(status) {
    const error = status.last_error;
    if (!error) return "";
    return typeof error === "string" ? error : (error.message || JSON.stringify(error));
  }

  async function loadStatus() {
    let status;
    try {
      status = await api("/api/status");
    } catch (error) {
      notify($("refresh-notice"), "error", "Could not read the refresh status.", error.message);
      // The app may be restarting behind QRadar's proxy: look again later rather than stop polling.
      clearTimeout(state.refreshTimer);
      state.refreshTimer = setTimeout(loadStatus, window.CAWHealth.nextPollMs(null));
      return;
    }
    $("refresh-last").textContent = status.last_refresh_ms || status.last_refresh ?
      formatTime(status.last_refresh_ms || status.last_refresh) : "never";
    $("refresh-next").textContent = status.next_refresh_ms || status.next_refresh ?
      formatTime(status.next_refresh_ms || status.next_refresh) : "–";
    const running = Boolean(status.running);
    const progress = Math.max(0, Math.min(100, Number(status.progress || 0)));
    $("refresh-progress").hidden = !running;
    $("refresh-cancel").hidden = !running;
    $("refresh-now").disabled = running;
    $("refresh-progress-track").setAttribute("aria-valuenow", String(progress));
    $("refresh-progress-bar").style.transform = `scaleX(${progress / 100})`;
    // While refreshes fail: QRadar's problem, since when, and the next (backed-off) attempt (qradar_health.js).
    const health = window.CAWHealth.describe(status);
    const errorText = refreshErrorText(status);
    if (health) notify($("refresh-notice"), "error", health.title, health.text);
    else if (running) notify($("refresh-notice"));
    else if (errorText) notify($("refresh-notice"), "error", "The last refresh failed:", errorText);
    else if (status.last_status === "cancelled") notify($("refresh-notice"), "info", "The last refresh was cancelled.");
    else notify($("refresh-notice"));
    clearTimeout(state.refreshTimer);
    // Poll every second while a refresh runs or is queued, else every 30 s.
    if (running || status.refresh_requested) {
      state.wasRunning = true;
      state.refreshTimer = setTimeout(loadStatus, 1000);
    } else {
      if (state.wasRunning) {
        state.wasRunning = false;
        reloadData();
      }
      state.refreshTimer = setTimeout(loadStatus, window.CAWHealth.nextPollMs(status));
    }
  }

  async function refreshNow() {
    try {
      await api("/api/refresh", {method: "POST", body: {}});
      state.wasRunning = true;
      loadStatus();
    } catch (error) {
      notify($("refresh-notice"), "error", "Could not start a refresh.", error.message);
    }
  }

  async function cancelRefresh() {
    try {
      await api("/api/refresh", {method: "DELETE"});
      loadStatus();
    } catch (error) {
      notify($("refresh-notice"), "error", "Could not cancel the refresh.", error.message);
    }
  }

  /* ---------- triage ---------- */

  function updateBatch() {
    const count = state.selected.size;
    $("batch").hidden = count === 0;
    $("batch-count").textContent = count + (count === 1 ? " detection selected" : " detections selected");
  }

  async function applyBatch() {
    const ids = Array.from(state.selected);
    try {
      await api("/api/detections/triage", {method: "POST",
        body: {ids, status: $("batch-status").value, note: $("batch-note").value}});
      state.selected.clear();
      $("batch-note").value = "";
      notify($("table-notice"), "success", `Triage status set on ${ids.length} detections.`);
      await loadTable();
      if (state.openId && ids.includes(state.openId)) openPanel(state.openId);
    } catch (error) {
      notify($("table-notice"), "error", "Could not update triage status.", error.message);
    }
  }

  /* ---------- detail panel ---------- */

  function field(list, label, value) {
    if (value === null || value === undefined || value === "") value = "–";
    list.appendChild(el("div", {className: "caw-field"},
      el("dt", {className: "caw-field__label"}, label),
      el("dd", {className: "caw-field__value"}, value instanceof Node ? value : String(value))));
  }

  function prettyPayload(payload) {
    if (payload === null || payload === undefined) return "(no payload)";
    if (typeof payload !== "string") return JSON.stringify(payload, null, 2);
    const start = payload.indexOf("{");
    try {
      return JSON.stringify(JSON.parse(payload), null, 2);
    } catch (error) {
      // Syslog-wrapped JSON: keep the header line, pretty-print the JSON after it.
      if (start > 0) {
        try {
          return payload.slice(0, start).trimEnd() + "\n" + JSON.stringify(JSON.parse(payload.slice(start)), null, 2);
        } catch (inner) { /* fall through: show as received */ }
      }
      return payload;
    }
  }

  function section(title, ...children) {
    return el("section", {className: "caw-panel__section"}, el("h3", {className: "caw-panel__heading"}, title), ...children);
  }

  function suppressionText(d) {
    if (d.suppression && typeof d.suppression === "object") {
      const s = d.suppression;
      return s.explanation || s.reason || s.message || JSON.stringify(s);
    }
    if (d.suppressed_by) {
      return `Suppressed by allowlist entry #${d.suppressed_by}` +
        (d.suppressed_by_entry && d.suppressed_by_entry.justification ?
          ": " + d.suppressed_by_entry.justification : ".") +
        " It stays stored and comes back when the entry expires, is disabled or removed.";
    }
    return "Not suppressed: no active, approved allowlist entry matches this detection.";
  }

  // Why it is suppressed: the entry's conditions, justification, approver and expiry (all as text).
  async function explainEntry(entryId, target) {
    let entry;
    try {
      entry = await api(`/api/tuning/entries/${Number(entryId)}`);
    } catch (error) {
      return;  // the generic sentence stays
    }
    const parts = [];
    if (entry.actor_id) parts.push("actor immutable ID is " + entry.actor_id);
    if (entry.actor_pattern) parts.push(`${entry.actor_pattern_field || "actor_id"} matches ${entry.actor_pattern}`);
    if ((entry.source_cidrs || []).length) parts.push("source IP in " + entry.source_cidrs.join(", "));
    if (entry.ua_pattern) parts.push("user agent matches " + entry.ua_pattern);
    if (entry.target_pattern) parts.push("target matches " + entry.target_pattern);
    if (entry.target_type) parts.push("target type is " + entry.target_type);
    clear(target);
    target.appendChild(document.createTextNode(
      `Suppressed by allowlist entry #${entry.id}` + (entry.name ? ` "${entry.name}"` : "") +
      (parts.length ? ": " + parts.join("; ") + "." : ".")));
    target.appendChild(el("br"));
    target.appendChild(document.createTextNode(
      `Justification: ${entry.justification || "–"}` + (entry.ticket ? ` (ticket ${entry.ticket})` : "") +
      `. Approved by ${entry.approved_by || "–"}; expires ${formatTime(entry.expires_at, false)}.` +
      " The detection stays stored and comes back when the entry expires, is disabled or removed."));
  }

  function linkButton(label, href, id) {
    return el("a", {className: "cds--btn cds--btn--tertiary cds--btn--sm caw-btn-sm caw-link-btn", href, id,
      target: "_blank", rel: "noopener noreferrer"}, label);
  }

  async function openPanel(id) {
    state.openId = id;
    const panel = $("panel");
    panel.hidden = false;
    document.body.classList.add("caw-panel-open");
    for (const row of document.querySelectorAll("#detections-body tr.caw-row")) {
      row.classList.toggle("caw-row--open", Number(row.dataset.id) === id);
    }
    const body = clear($("panel-body"));
    body.appendChild(el("p", {className: "caw-muted"}, "Loading…"));
    $("panel-title").textContent = "Detection " + id;
    notify($("panel-notice"));
    panel.focus();
    let d;
    let links = null;
    try {
      [d, links] = await Promise.all([api(`/api/detections/${id}`),
        api(`/api/detections/${id}/links`).catch((error) => ({error: error.message}))]);
    } catch (error) {
      clear(body);
      notify($("panel-notice"), "error", "Could not load this detection.", error.message);
      return;
    }
    if (state.openId !== id) return;
    renderPanel(d, links);
  }

  function renderPanel(d, links) {
    const body = clear($("panel-body"));
    $("panel-title").textContent = (d.event_name || "Detection") + " · " + (d.target_account || "");

    const tags = el("div", {className: "caw-panel__tags"},
      d.cloud_platform ? tag(d.cloud_platform, PLATFORM_COLORS[d.cloud_platform]) : null,
      d.is_service_account ? tag("Service account", "purple") : null,
      d.chain_id ? tag(chainLabel(d), "red") : null,
      d.suppressed_by ? tag("Suppressed", "gray") : null,
      tag(TRIAGE_LABELS[d.triage_status] || "New", TRIAGE_COLORS[d.triage_status] || "gray"));
    body.appendChild(tags);

    // Deep links: console URLs (QRadar Log Activity, offense) and the playbook (an app page).
    const linkRow = el("div", {className: "caw-panel__links"});
    if (links && !links.error) {
      if (links.log_activity) linkRow.appendChild(linkButton("Open in Log Activity", links.log_activity, "link-log-activity"));
      for (const offense of links.offenses || []) {
        linkRow.appendChild(linkButton(`Open offense ${offense.id}`, offense.url, `link-offense-${offense.id}`));
        if (String(offense.id) !== state.offense) {
          linkRow.appendChild(el("button", {type: "button", className: "cds--btn cds--btn--ghost cds--btn--sm caw-btn-sm",
            id: `filter-offense-${offense.id}`, onclick: () => setOffense(offense.id)},
          `Detections in offense ${offense.id}`));
        }
      }
      if (links.playbook) linkRow.appendChild(linkButton("Playbook for " + d.cloud_platform, links.playbook, "link-playbook"));
    } else if (links && links.error) {
      linkRow.appendChild(el("span", {className: "caw-muted"}, "Links unavailable: " + links.error));
    }
    const allowlist = el("a", {className: "cds--btn cds--btn--primary cds--btn--sm caw-btn-sm", id: "allowlist-this",
      href: appUrl("/tab/tuning", {from_detection: d.id})}, "Allowlist this…");
    // Only users who may tune get the shortcut (the tuning API refuses the others anyway).
    window.CAW.me().then((user) => {
      if (window.CAW.hasCapability(user, "tune")) linkRow.appendChild(allowlist);
    });
    body.appendChild(linkRow);

    const why = el("p", {id: "panel-suppression"}, suppressionText(d));
    body.appendChild(section("Suppression", why));
    if (d.suppressed_by) explainEntry(d.suppressed_by, why);
    body.appendChild(triageForm(d));

    const list = el("dl", {className: "caw-fields"});
    const fields = [
      ["Time", formatTime(d.event_time)], ["Event", d.event_name], ["Category", d.event_category],
      ["Cloud platform", d.cloud_platform], ["Log source", d.log_source], ["Log source type", d.log_source_type],
      ["QID", d.qid], ["Actor", d.actor], ["Actor immutable ID", d.actor_id], ["Actor type", d.actor_type],
      ["Target account", d.target_account], ["Target ID", d.target_id], ["Target type", d.target_type],
      ["Account kind", d.account_kind], ["Service account", d.is_service_account ? "Yes" : "No"],
      ["Source IP", d.source_ip], ["User agent", d.user_agent], ["Correlation ID", d.correlation_id],
      ["Result", d.result], ["MFA", d.mfa === null || d.mfa === undefined ? "unknown" : (d.mfa ? "Yes" : "No")],
      ["Magnitude", d.magnitude], ["Severity", d.severity], ["Confidence", d.confidence],
      ["Also seen in", (d.also_seen_in || []).join(", ")], ["Event key", d.event_key], ["Detection ID", d.id],
    ];
    for (const [label, value] of fields) field(list, label, value);
    body.appendChild(section("Fields", list));

    const chain = d.chain;
    if (chain) {
      const events = chain.events || chain.steps || chain.members || [];
      const steps = el("ol", {className: "caw-chain", id: "panel-chain"});
      for (const step of events) {
        steps.appendChild(el("li", {className: "caw-chain__step" + (step.id === d.id ? " caw-chain__step--this" : "")},
          el("span", {className: "caw-chain__time"}, formatTime(step.event_time)),
          el("span", {className: "caw-chain__name"}, step.event_name || step.name || ""),
          el("span", {className: "caw-chain__who"},
            (step.actor || "") + (step.target_account ? " → " + step.target_account : ""))));
      }
      body.appendChild(section("Attack chain: " + String(chain.kind || d.chain_kind || "").replace(/_/g, " "),
        el("p", {className: "caw-muted"}, chain.description || chain.summary || ""), steps));
    }

    body.appendChild(section("Raw payload",
      el("pre", {className: "caw-payload", id: "panel-payload", tabindex: "0", "aria-label": "Raw payload"},
        prettyPayload(d.payload))));
  }

  function triageForm(d) {
    const select = el("select", {id: "triage-status", className: "cds--select-input"});
    for (const [value, label] of Object.entries(TRIAGE_LABELS)) {
      const option = el("option", {value}, label);
      option.selected = (d.triage_status || "new") === value;
      select.appendChild(option);
    }
    const note = el("textarea", {id: "triage-note", className: "cds--text-area", rows: "2"});
    note.value = d.triage_note || "";
    const who = d.triage_by ? `Last set by ${d.triage_by}` + (d.triage_at ? " at " + formatTime(d.triage_at) : "") : "Not triaged yet.";
    const save = el("button", {type: "submit", className: "cds--btn cds--btn--primary cds--btn--sm caw-btn-sm",
      id: "triage-save"}, "Save triage");
    const form = el("form", {className: "caw-triage", id: "triage-form"},
      el("div", {className: "cds--form-item"}, el("label", {className: "cds--label", for: "triage-status"}, "Status"),
        el("div", {className: "cds--select"}, el("div", {className: "cds--select-input__wrapper"}, select))),
      el("div", {className: "cds--form-item"}, el("label", {className: "cds--label", for: "triage-note"}, "Note"), note),
      el("p", {className: "caw-muted", id: "triage-who"}, who), save,
      triageHistory(d.triage_history || []));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      save.disabled = true;
      try {
        await api(`/api/detections/${d.id}/triage`, {method: "POST", body: {status: select.value, note: note.value}});
        notify($("panel-notice"), "success", "Triage saved.");
        await loadTable();
        openPanel(d.id);
      } catch (error) {
        notify($("panel-notice"), "error", "Could not save triage.", error.message);
      } finally {
        save.disabled = false;
      }
    });
    return section("Triage", form);
  }

  function triageHistory(history) {
    if (!history.length) return null;
    const list = el("ol", {className: "caw-history", id: "triage-history", "aria-label": "Triage history"});
    for (const h of history) {
      list.appendChild(el("li", {}, `${formatTime(h.at)} · ${h.by}: ${TRIAGE_LABELS[h.status] || h.status}` +
        (h.note ? ` — ${h.note}` : "")));
    }
    return list;
  }

  function closePanel() {
    const id = state.openId;
    state.openId = null;
    $("panel").hidden = true;
    document.body.classList.remove("caw-panel-open");
    for (const row of document.querySelectorAll("#detections-body tr.caw-row--open")) row.classList.remove("caw-row--open");
    const row = document.querySelector(`#detections-body tr[data-id="${Number(id)}"]`);
    if (row) row.focus();
  }

  /* ---------- wiring ---------- */

  function setZoneButtons() {
    const utc = window.CAW.isUtc();
    for (const [id, on] of [["tz-local", !utc], ["tz-utc", utc]]) {
      $(id).classList.toggle("cds--content-switcher--selected", on);
      $(id).setAttribute("aria-selected", String(on));
    }
  }

  function reloadData() {
    loadOverview();
    loadTable();
  }

  function init() {
    renderHead();
    setZoneButtons();
    const reset = () => {
      state.offset = 0;
      state.selected.clear();
      loadTable();
    };
    for (const id of ["f-platform", "f-triage", "f-suppressed", "f-service", "f-chains"]) $(id).addEventListener("change", reset);
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
        window.CAW.setUtc($(id).dataset.tz === "UTC");
        setZoneButtons();
        reloadData();
        loadStatus();
        if (state.openId) openPanel(state.openId);
      });
    }
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
    $("panel-close").addEventListener("click", closePanel);
    $("panel").addEventListener("keydown", (event) => {
      if (event.key === "Escape") closePanel();
    });
    $("refresh-now").addEventListener("click", refreshNow);
    $("refresh-cancel").addEventListener("click", cancelRefresh);
    // Deep link from the Offense Summary widget: /tab/?offense=<id> (the API checks the id and says so).
    const params = new URLSearchParams(window.location.search);
    const offense = (params.get("offense") || "").trim();
    if (offense) {
      state.offense = offense.slice(0, 40);
      $("f-suppressed").value = "";
    }
    renderChips();
    reloadData();
    loadStatus();
    // Deep link from the Offense Summary widget, the dashboard item and Pulse: /tab/?detection=<id>.
    const linked = params.get("detection");
    if (linked && /^[0-9]{1,15}$/.test(linked)) openPanel(Number(linked));
  }

  document.addEventListener("DOMContentLoaded", init);
})();
