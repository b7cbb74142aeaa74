/* Detections page: the detail panel of one detection — its fields, deep links (QRadar Log Activity, its
 * offenses, the playbook), why it is suppressed, triage with history, the attack chain and the raw payload.
 * Every value comes from logs and is written as text. */

import {api, appUrl, clear, el, formatTime, hasCapability, me, notify, tag} from "../common.js";
import {$, PLATFORM_COLORS, TRIAGE_COLORS, TRIAGE_LABELS, chainLabel, state} from "./model.js";

let triaged = async () => {};
let showOffense = () => {};

// onTriaged(): the detection's triage changed (the table re-reads its rows);
// onShowOffense(id): list the detections of one of its offenses.
export function initPanel({onTriaged, onShowOffense}) {
  triaged = onTriaged;
  showOffense = onShowOffense;
  $("panel-close").addEventListener("click", closePanel);
  $("panel").addEventListener("keydown", (event) => {
    if (event.key === "Escape") closePanel();
  });
}

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

export async function openPanel(id) {
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
          id: `filter-offense-${offense.id}`, onclick: () => showOffense(offense.id)},
        `Detections in offense ${offense.id}`));
      }
    }
    if (links.playbook) linkRow.appendChild(linkButton("Playbook for " + d.cloud_platform, links.playbook, "link-playbook"));
    if (links.coalesced_events) {
      linkRow.appendChild(linkButton("Raw events (coalesced)", links.coalesced_events.log_activity, "link-coalesced-events"));
    }
  } else if (links && links.error) {
    linkRow.appendChild(el("span", {className: "caw-muted"}, "Links unavailable: " + links.error));
  }
  const allowlist = el("a", {className: "cds--btn cds--btn--primary cds--btn--sm caw-btn-sm", id: "allowlist-this",
    href: appUrl("/tab/tuning", {from_detection: d.id})}, "Allowlist this…");
  // Only users who may tune get the shortcut (the tuning API refuses the others anyway).
  me().then((user) => {
    if (hasCapability(user, "tune")) linkRow.appendChild(allowlist);
  });
  body.appendChild(linkRow);

  // What QRadar's delivery left of the event: a coalesced record or an unreadable payload is never a
  // certain success.
  if (d.outcome && d.outcome !== "success") {
    body.appendChild(el("div", {className: "cds--inline-notification cds--inline-notification--warning caw-inline-note",
      id: "panel-outcome", role: "status"},
    d.outcome === "possible_success"
      ? `Possible success, ${d.eventcount} coalesced: QRadar stored ${d.eventcount} events as one record and kept only the first payload, which failed. Check the raw events.`
      : `Outcome unknown: the payload is ${d.payload_state}. The fields come from QRadar's normalized fields.`));
  }
  const why = el("p", {id: "panel-suppression"}, suppressionText(d));
  body.appendChild(section("Suppression", why));
  if (d.suppressed_by) explainEntry(d.suppressed_by, why);
  body.appendChild(triageForm(d));

  const list = el("dl", {className: "caw-fields"});
  const fields = [
    ["Time", formatTime(d.device_time || d.event_time)],
    ["Received by QRadar", formatTime(d.event_time)], ["Event", d.event_name], ["Category", d.event_category],
    ["Cloud platform", d.cloud_platform], ["Log source", d.log_source], ["Log source type", d.log_source_type],
    ["QID", d.qid], ["Actor", d.actor], ["Actor immutable ID", d.actor_id], ["Actor type", d.actor_type],
    ["Target account", d.target_account], ["Target ID", d.target_id], ["Target type", d.target_type],
    ["Account kind", d.account_kind], ["Service account", d.is_service_account ? "Yes" : "No"],
    ["Source IP", d.source_ip], ["User agent", d.user_agent], ["Correlation ID", d.correlation_id],
    ["Result", d.result], ["Outcome", d.outcome_label], ["Event count", d.eventcount],
    ["Payload", d.payload_state], ["MFA", d.mfa === null || d.mfa === undefined ? "unknown" : (d.mfa ? "Yes" : "No")],
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

  const context = d.context || [];
  if (context.length) {
    const items = el("ul", {className: "caw-chain", id: "panel-context"});
    for (const ev of context) {
      items.appendChild(el("li", {className: "caw-chain__step"},
        el("span", {className: "caw-chain__time"}, formatTime(ev.device_time || ev.event_time)),
        el("span", {className: "caw-chain__name"}, ev.event_name || ""),
        el("span", {className: "caw-chain__who"},
          (ev.actor || "") + (ev.target_account ? " → " + ev.target_account : ""))));
    }
    body.appendChild(section("Context (recorded, not raised)", items));
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
      await triaged();
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

export function closePanel() {
  const id = state.openId;
  state.openId = null;
  $("panel").hidden = true;
  document.body.classList.remove("caw-panel-open");
  for (const row of document.querySelectorAll("#detections-body tr.caw-row--open")) row.classList.remove("caw-row--open");
  const row = document.querySelector(`#detections-body tr[data-id="${Number(id)}"]`);
  if (row) row.focus();
}

/* ---------- wiring ---------- */
