/* Tuning page: allowlist entry create/edit with live preview, approval queue, entries, presets, audit log.
 * Values (actor IDs, justifications, names) are shown as text only. */

import {api, clear, debounce, el, formatTime, hasCapability, me, notify, tag} from "./common.js";

const $ = (id) => document.getElementById(id);

// The tuning API (app/tuning/api.py).
const ROUTES = {
  entries: "/api/tuning/entries",
  entry: (id) => `/api/tuning/entries/${id}`,
  approve: (id) => `/api/tuning/entries/${id}/approve`,
  reject: (id) => `/api/tuning/entries/${id}/reject`,
  preview: "/api/tuning/preview",
  presets: "/api/tuning/presets",
  presetEnable: (id) => `/api/tuning/presets/${encodeURIComponent(id)}/enable`,
  presetDisable: (id) => `/api/tuning/presets/${encodeURIComponent(id)}/disable`,
  preset: (id) => `/api/tuning/presets/${encodeURIComponent(id)}`,  // includes "candidates"
  audit: "/api/tuning/audit",
};
const STATUS_COLORS = {pending: "purple", active: "green", rejected: "red", expired: "gray", deleted: "gray"};
const DAY_MS = 86400e3;

const state = {user: null, canTune: false, isAdmin: false, editing: null, previewSeq: 0};

/* ---------- helpers ---------- */

function table(headers, rows, id) {
  const thead = el("thead", {}, el("tr", {}, headers.map((h) => el("th", {scope: "col"}, h))));
  const tbody = el("tbody", {}, rows);
  if (!rows.length) {
    tbody.appendChild(el("tr", {}, el("td", {colspan: headers.length, className: "caw-empty"}, "Nothing here.")));
  }
  return el("table", {className: "cds--data-table cds--data-table--sm caw-small-table", id}, thead, tbody);
}

function button(label, kind, onclick, attrs) {
  return el("button", {type: "button", className: `cds--btn cds--btn--${kind} cds--btn--sm caw-btn-sm`,
    onclick, ...(attrs || {})}, label);
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 16);
}

function entryMatchSummary(entry) {
  const parts = [];
  if (entry.actor_id) parts.push("actor ID = " + entry.actor_id);
  if (entry.actor_pattern) parts.push(`${entry.actor_pattern_field || "actor_id"} ~ ${entry.actor_pattern}`);
  if ((entry.source_cidrs || []).length) parts.push("from " + entry.source_cidrs.join(", "));
  if (entry.ua_pattern) parts.push("UA ~ " + entry.ua_pattern);
  if (entry.target_pattern) parts.push("target ~ " + entry.target_pattern);
  if (entry.target_type) parts.push("type " + entry.target_type);
  if (entry.window) parts.push(`window ${entry.window.start}–${entry.window.end} UTC`);
  return parts.join("; ");
}

// What of the entry is in force until when, text edited since its approval, and whether QRadar's
// reference set mirrors it (narrowed entries are not mirrored: a set holds bare actor IDs).
function entryStanding(e) {
  const parts = [];
  if (e.in_force) {
    parts.push(el("div", {className: "caw-entry-in-force"}, e.in_force.suppressing ?
      `In force until ${formatTime(e.in_force.until, false)}` : "Not in force: " + e.in_force.explanation));
  }
  for (const edit of e.text_edits || []) {
    parts.push(el("div", {}, tag("text edited after approval", "magenta"),
      ` ${(edit.fields || []).join(", ")} by ${edit.by} at ${formatTime(edit.at, false)}`));
  }
  if (e.mirror) {
    parts.push(el("div", {className: "caw-entry-mirror"},
      e.mirror.mirrored ? tag("in QRadar reference set", "teal") : tag("not mirrored", "gray"),
      " " + e.mirror.reason));
  }
  return parts;
}

function wroteConditions(entry) {
  const user = state.user || {};
  return (entry.condition_writers || []).some((w) =>
    w.id !== null && w.id !== undefined ? w.id === user.user_id : w.name === user.name);
}

/* ---------- entry form ---------- */

function formPayload() {
  const platforms = Array.from(document.querySelectorAll("#e-platforms input:checked")).map((i) => i.value);
  const cidrs = $("e-cidrs").value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
  const body = {
    name: $("e-name").value.trim() || null,
    platforms,
    actor_id: $("e-actor-id").value.trim() || null,
    actor_pattern: $("e-actor-pattern").value.trim() || null,
    actor_pattern_field: $("e-actor-pattern-field").value,
    source_cidrs: cidrs,
    ua_pattern: $("e-ua").value.trim() || null,
    target_pattern: $("e-target").value.trim() || null,
    target_type: $("e-target-type").value || null,
    justification: $("e-justification").value.trim(),
    ticket: $("e-ticket").value.trim() || null,
    expires_at: $("e-expires").value ? new Date($("e-expires").value).toISOString() : null,
    break_glass: $("e-break-glass").checked,
    enabled: $("e-enabled").checked,
  };
  if ($("e-window-start").value && $("e-window-end").value) {
    body.window = {start: $("e-window-start").value, end: $("e-window-end").value};
  } else {
    body.window = null;
  }
  if ($("e-override").value.trim()) body.override_reason = $("e-override").value.trim();
  return body;
}

function fillForm(entry) {
  state.editing = entry && entry.id ? entry : null;
  $("e-id").value = state.editing ? entry.id : "";
  $("e-version").value = state.editing ? entry.version : "";
  $("entry-form-title").textContent = state.editing ? `Edit allowlist entry #${entry.id}` : "New allowlist entry";
  $("e-name").value = entry.name || "";
  for (const box of document.querySelectorAll("#e-platforms input")) {
    box.checked = (entry.platforms || []).includes(box.value);
  }
  $("e-actor-id").value = entry.actor_id || "";
  $("e-actor-pattern").value = entry.actor_pattern || "";
  $("e-actor-pattern-field").value = entry.actor_pattern_field || "actor_id";
  $("e-cidrs").value = (entry.source_cidrs || []).join("\n");
  $("e-ua").value = entry.ua_pattern || "";
  $("e-target").value = entry.target_pattern || "";
  $("e-target-type").value = entry.target_type || "";
  $("e-window-start").value = entry.window ? entry.window.start : "";
  $("e-window-end").value = entry.window ? entry.window.end : "";
  $("e-justification").value = entry.justification || "";
  $("e-ticket").value = entry.ticket || "";
  $("e-expires").value = toLocalInput(entry.expires_at || Date.now() + 30 * DAY_MS);
  $("e-break-glass").checked = Boolean(entry.break_glass);
  $("e-enabled").checked = entry.enabled !== false;
  $("e-confirm-chain").checked = false;
  $("e-override").value = entry.override_reason || "";
  $("entry-save").textContent = state.editing ? "Save changes" : "Submit for approval";
  $("entry-error").textContent = "";
  schedulePreview();
}

const schedulePreview = debounce(runPreview, 300);

async function runPreview() {
  const seq = ++state.previewSeq;
  const body = formPayload();
  const target = $("preview-body");
  if (!body.platforms.length || !(body.actor_id || body.actor_pattern || body.ua_pattern || body.target_pattern ||
      body.source_cidrs.length)) {
    clear(target).appendChild(el("span", {className: "caw-muted"}, "Choose platforms and what to match to see a preview."));
    return;
  }
  // The preview validates like a save; give it a placeholder justification so it can run while typing.
  if (body.justification.length < 10) body.justification = "preview only (not saved)";
  if (!body.expires_at) body.expires_at = new Date(Date.now() + 30 * DAY_MS).toISOString();
  if (state.editing) body.entry_id = state.editing.id;
  let result;
  try {
    result = await api(ROUTES.preview, {method: "POST", body});
  } catch (error) {
    if (seq !== state.previewSeq) return;
    clear(target).appendChild(el("p", {className: "caw-field-error", id: "preview-error"},
      (error.field ? error.field + ": " : "") + error.message));
    return;
  }
  if (seq !== state.previewSeq) return;
  renderPreview(result);
}

function renderPreview(p) {
  const target = clear($("preview-body"));
  target.appendChild(el("div", {className: "caw-preview__numbers"},
    el("div", {}, el("div", {className: "caw-kpi__value", id: "preview-count"}, String(p.would_suppress)),
      el("div", {className: "caw-kpi__label"}, `detections of the last ${p.days || 30} days it would suppress`)),
    el("div", {className: p.chains_touched ? "caw-preview__chains" : ""},
      el("div", {className: "caw-kpi__value", id: "preview-chains"}, String(p.chains_touched)),
      el("div", {className: "caw-kpi__label"}, "attack chains it touches"))));
  if ((p.partial_chains || []).length) {
    target.appendChild(el("p", {className: "caw-preview__chains", role: "alert"},
      `It would hide part of ${p.partial_chains.length} attack chain(s) and leave the rest visible. ` +
      "Tick the confirmation to submit anyway."));
  }
  if (p.already_suppressed_by_other_entries) {
    target.appendChild(el("p", {className: "caw-muted"},
      `${p.already_suppressed_by_other_entries} more match but are already suppressed by other entries.`));
  }
  const rows = (p.examples || []).map((d) => el("tr", {},
    el("td", {}, formatTime(d.event_time)), el("td", {}, d.event_name || ""), el("td", {}, d.actor || ""),
    el("td", {}, d.target_account || ""), el("td", {}, d.chain_id ? tag("chain #" + d.chain_id, "red") : "")));
  if (rows.length) target.appendChild(table(["Time", "Event", "Actor", "Target", "Chain"], rows, "preview-examples"));
}

async function saveEntry(event) {
  event.preventDefault();
  const body = formPayload();
  if ($("e-confirm-chain").checked) body.confirm_partial_chain = true;
  $("entry-error").textContent = "";
  $("entry-save").disabled = true;
  try {
    if (state.editing) {
      body.version = state.editing.version;
      await api(ROUTES.entry(state.editing.id), {method: "PATCH", body});
      notify($("tuning-notice"), "success", `Entry #${state.editing.id} saved.`,
        "Changes that widen it need a fresh approval.");
    } else {
      const created = await api(ROUTES.entries, {method: "POST", body});
      const entry = created.entry || created;
      notify($("tuning-notice"), "success", `Entry #${entry.id} submitted.`,
        entry.status === "active" ? "It is active now." : "It takes effect when another tuner approves it.");
    }
    fillForm({});
    await loadAll();
  } catch (error) {
    $("entry-error").textContent = (error.field ? error.field + ": " : "") + error.message;
  } finally {
    $("entry-save").disabled = false;
  }
}

async function prefillFromDetection(id) {
  try {
    const d = await api(`/api/detections/${Number(id)}`);
    fillForm({
      name: `Allowlist ${d.actor || d.actor_id || "actor"} on ${d.cloud_platform}`,
      platforms: [d.cloud_platform],
      // The immutable ID is preferred; the display name only as a (spoofable) pattern when no ID exists.
      actor_id: d.actor_id || null,
      actor_pattern: d.actor_id ? null : d.actor,
      actor_pattern_field: d.actor_id ? "actor_id" : "actor",
      target_type: null,
      expires_at: Date.now() + 30 * DAY_MS,
    });
    notify($("tuning-notice"), "info", `Prefilled from detection ${d.id}.`,
      "Check the preview, write a justification and submit for approval.");
    $("e-justification").focus();
  } catch (error) {
    notify($("tuning-notice"), "error", "Could not load the detection to allowlist.", error.message);
  }
}

/* ---------- lists ---------- */

async function loadEntries() {
  let body;
  try {
    body = await api(ROUTES.entries, {query: {limit: 200}});
  } catch (error) {
    notify($("tuning-notice"), "error", "Could not load allowlist entries.", error.message);
    return [];
  }
  const entries = (body.items || []).filter((e) => e.status !== "deleted");
  const rows = entries.map((e) => el("tr", {dataset: {id: e.id}},
    el("td", {}, "#" + e.id), el("td", {}, e.name || ""),
    el("td", {}, tag(e.status, STATUS_COLORS[e.status]), e.flagged_spoofable ? tag("spoofable-only", "red") : null,
      e.enabled === false ? tag("disabled", "gray") : null),
    el("td", {}, (e.platforms || []).join(", ")), el("td", {}, entryMatchSummary(e)),
    el("td", {}, e.justification || ""), el("td", {}, formatTime(e.expires_at, false)),
    el("td", {}, e.updated_by || e.created_by || ""),
    el("td", {}, entryStanding(e)),
    el("td", {}, state.canTune && ["pending", "active", "rejected"].includes(e.status) ?
      [button("Edit", "ghost", () => {
        fillForm(e);
        $("entry-editor").scrollIntoView();
        $("e-name").focus();
      }, {"aria-label": `Edit entry ${e.id}`}),
      button("Delete", "danger--ghost", () => deleteEntry(e), {"aria-label": `Delete entry ${e.id}`})] : "")));
  const container = clear($("entries"));
  container.appendChild(table(["ID", "Name", "Status", "Platforms", "Matches", "Justification", "Expires", "Submitted by",
    "In force · QRadar", "Actions"], rows, "entries-table"));
  return entries;
}

async function deleteEntry(entry) {
  try {
    await api(ROUTES.entry(entry.id), {method: "DELETE", body: {version: entry.version}});
    notify($("tuning-notice"), "success", `Entry #${entry.id} deleted.`, "Its detections are visible again.");
    await loadAll();
  } catch (error) {
    notify($("tuning-notice"), "error", `Could not delete entry #${entry.id}.`, error.message);
  }
}

function renderApprovals(entries) {
  const pending = entries.filter((e) => e.status === "pending");
  const rows = pending.map((e) => {
    const note = el("input", {className: "cds--text-input caw-batch__note", id: `approve-note-${e.id}`,
      "aria-label": `Note for entry ${e.id}`, placeholder: "Note (optional)"});
    // Four eyes on every matching condition: whoever wrote one since the last approval may not decide.
    const own = wroteConditions(e);
    const writers = (e.condition_writers || []).map((w) => w.name).join(", ");
    return el("tr", {dataset: {id: e.id}},
      el("td", {}, "#" + e.id), el("td", {}, e.name || ""), el("td", {}, entryMatchSummary(e)),
      el("td", {}, e.justification || ""), el("td", {}, writers || e.updated_by || ""),
      el("td", {}, formatTime(e.expires_at, false)),
      el("td", {}, state.canTune ? [note,
        button("Approve", "primary", () => decide(e, true, note.value),
          {"aria-label": `Approve entry ${e.id}`, disabled: own,
            title: own ? "You wrote a matching condition: someone who wrote none must approve" : null}),
        button("Reject", "danger--tertiary", () => decide(e, false, note.value),
          {"aria-label": `Reject entry ${e.id}`, disabled: own})] : "View only"));
  });
  clear($("approvals")).appendChild(table(["ID", "Name", "Matches", "Justification", "Conditions written by", "Expires",
    "Decision"], rows, "approvals-table"));
}

async function decide(entry, approve, note) {
  const body = {version: entry.version};
  if (note) body.note = note;
  try {
    await api(approve ? ROUTES.approve(entry.id) : ROUTES.reject(entry.id), {method: "POST", body});
    notify($("tuning-notice"), "success", `Entry #${entry.id} ${approve ? "approved" : "rejected"}.`,
      approve ? "Matching detections are now listed under Suppressed." : "");
    await loadAll();
  } catch (error) {
    if (error.code === "confirmation_required" && approve &&
        document.getElementById(`confirm-${entry.id}`) === null) {
      notify($("tuning-notice"), "warning", "This entry would hide part of an attack chain.", error.message);
      return;
    }
    notify($("tuning-notice"), "error", `Could not ${approve ? "approve" : "reject"} entry #${entry.id}.`,
      error.message);
  }
}

async function loadPresets() {
  let body;
  try {
    body = await api(ROUTES.presets);
  } catch (error) {
    clear($("presets")).appendChild(el("p", {className: "caw-field-error"}, "Could not load presets: " + error.message));
    return;
  }
  const container = clear($("presets"));
  for (const preset of body.items || body.presets || []) container.appendChild(presetCard(preset));
}

function presetCard(preset) {
  const on = Boolean(preset.enabled);
  const ids = el("textarea", {className: "cds--text-area", rows: "2", id: `preset-ids-${preset.id}`});
  const justification = el("input", {className: "cds--text-input", id: `preset-why-${preset.id}`});
  const suggestions = el("div", {className: "caw-hint"});
  // Break-glass access is time-boxed: at most 24 hours and always tied to a ticket.
  const ticket = preset.break_glass ? el("input", {className: "cds--text-input", id: `preset-ticket-${preset.id}`}) : null;
  const card = el("div", {className: "caw-preset", dataset: {preset: preset.id}},
    el("div", {className: "caw-preset__title"}, preset.name, " ", on ? tag("On", "green") : tag("Off", "gray")),
    el("div", {className: "caw-preset__desc"}, preset.description || ""),
    el("div", {className: "caw-preset__desc"}, "Platforms: " + (preset.platforms || []).join(", ")));
  if (!state.canTune) return card;
  if (on) {
    card.appendChild(button("Turn off", "danger--tertiary", async () => {
      try {
        await api(ROUTES.presetDisable(preset.id), {method: "POST", body: {}});
        await loadAll();
      } catch (error) {
        notify($("tuning-notice"), "error", `Could not turn off ${preset.name}.`, error.message);
      }
    }, {"aria-label": `Turn off ${preset.name}`}));
    return card;
  }
  card.appendChild(el("label", {className: "cds--label", for: ids.id}, preset.identity_label || "Immutable identities (one a line)"));
  card.appendChild(ids);
  card.appendChild(suggestions);
  card.appendChild(el("label", {className: "cds--label", for: justification.id}, "Justification"));
  card.appendChild(justification);
  if (ticket) {
    card.appendChild(el("label", {className: "cds--label", for: ticket.id}, "Ticket reference (break-glass lasts 24 hours)"));
    card.appendChild(ticket);
  }
  card.appendChild(el("div", {className: "caw-form__actions"},
    button("Suggest from detections", "ghost", async () => {
      try {
        const s = await api(ROUTES.preset(preset.id));
        clear(suggestions);
        const items = s.candidates || [];
        if (!items.length) suggestions.appendChild(document.createTextNode(
          "No candidates with immutable evidence in recent detections (user agents and names are not evidence)."));
        for (const c of items) {
          // `identity` is what the preset keys on (an actor ID, or the invoking AWS service).
          const identity = c.identity || c.actor_id || "";
          suggestions.appendChild(el("div", {}, button("Add " + identity, "ghost", () => {
            ids.value = (ids.value ? ids.value + "\n" : "") + identity;
          }), " ", `${c.actor || ""} · ${c.detections} detections · evidence: ${(c.evidence || []).join("; ")}`));
        }
      } catch (error) {
        clear(suggestions).appendChild(document.createTextNode("Suggestions failed: " + error.message));
      }
    }),
    button("Turn on", "primary", async () => {
      const identities = ids.value.split(/[\n,]+/).map((s) => s.trim()).filter(Boolean);
      try {
        const lifetime = preset.break_glass ? DAY_MS - 60 * 1000 : 180 * DAY_MS;
        const body = {identities, justification: justification.value,
          expires_at: new Date(Date.now() + lifetime).toISOString()};
        if (ticket) body.ticket = ticket.value.trim();
        await api(ROUTES.presetEnable(preset.id), {method: "POST", body});
        notify($("tuning-notice"), "success", `${preset.name} submitted for approval.`);
        await loadAll();
      } catch (error) {
        notify($("tuning-notice"), "error", `Could not turn on ${preset.name}.`, error.message);
      }
    }, {"aria-label": `Turn on ${preset.name}`})));
  return card;
}

async function loadAudit() {
  let body;
  try {
    body = await api(ROUTES.audit, {query: {limit: 100}});
  } catch (error) {
    clear($("audit")).appendChild(el("p", {className: "caw-field-error"}, "Could not load the audit log: " + error.message));
    return;
  }
  const rows = (body.items || []).map((a) => el("tr", {},
    el("td", {}, formatTime(a.at_ms)), el("td", {}, a.actor || ""), el("td", {}, a.action || ""),
    el("td", {}, (a.object_type || "") + (a.object_id ? " #" + a.object_id : "")),
    el("td", {}, auditSummary(a))));
  clear($("audit")).appendChild(table(["When", "Who", "Action", "Object", "Change"], rows, "audit-table"));
}

function auditSummary(a) {
  const before = a.before || {};
  const after = a.after || {};
  const changed = Object.keys({...before, ...after})
    .filter((k) => !["updated_at", "version"].includes(k) && JSON.stringify(before[k]) !== JSON.stringify(after[k]));
  if (!a.before) return "created";
  if (!a.after) return "removed";
  const show = (k, v) => (/_at$/.test(k) && typeof v === "number" ? formatTime(v, false) : JSON.stringify(v));
  return changed.map((k) => `${k}: ${show(k, before[k])} → ${show(k, after[k])}`).join("; ").slice(0, 400);
}

async function loadAll() {
  const entries = await loadEntries();
  renderApprovals(entries);
  await Promise.all([loadPresets(), loadAudit()]);
}

async function init() {
  state.user = await me();
  state.canTune = hasCapability(state.user, "tune");
  state.isAdmin = hasCapability(state.user, "admin");
  $("e-override-item").hidden = !state.isAdmin;
  if (!state.canTune) {
    $("entry-editor").hidden = true;
    $("tuning-permission").textContent = "You can view tuning. Creating, editing and approving entries needs a " +
      "tuning capability in your QRadar role.";
  }
  $("entry-form").addEventListener("submit", saveEntry);
  $("entry-form").addEventListener("input", schedulePreview);
  $("entry-form").addEventListener("change", schedulePreview);
  $("entry-reset").addEventListener("click", () => fillForm({}));
  const params = new URLSearchParams(window.location.search);
  if (state.canTune && params.get("from_detection")) await prefillFromDetection(params.get("from_detection"));
  else if (state.canTune) fillForm({});
  await loadAll();
}

document.addEventListener("DOMContentLoaded", init);
