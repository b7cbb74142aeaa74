/* Settings page (admins): one labelled control per setting from GET /api/settings; PUT sends the changes. */

import {api, clear, el, notify} from "./common.js";

const $ = (id) => document.getElementById(id);
const state = {values: {}, settings: []};

function control(setting, value) {
  const id = "s-" + setting.key;
  let input;
  if (setting.kind === "bool") {
    input = el("input", {type: "checkbox", className: "cds--checkbox", id});
    input.checked = Boolean(value);
    return el("div", {className: "cds--form-item"},
      el("div", {className: "cds--checkbox-wrapper"}, input,
        el("label", {for: id, className: "cds--checkbox-label"},
          el("span", {className: "cds--checkbox-label-text"}, setting.key))),
      el("p", {className: "caw-hint"}, setting.description || ""));
  }
  if (setting.kind === "int") {
    input = el("input", {type: "number", className: "cds--text-input", id, step: "1",
      min: setting.minimum ?? null, max: setting.maximum ?? null});
    input.value = value ?? "";
  } else if (setting.kind === "str") {
    input = el("input", {type: "text", className: "cds--text-input", id});
    input.value = value ?? "";
  } else {
    input = el("textarea", {className: "cds--text-area", id, rows: "4", spellcheck: "false"});
    input.value = JSON.stringify(value, null, 2);
  }
  return el("div", {className: "cds--form-item" + (input.tagName === "TEXTAREA" ? " caw-form__wide" : "")},
    el("label", {className: "cds--label", for: id}, setting.key),
    input,
    el("p", {className: "caw-hint"}, setting.description || ""),
    el("p", {className: "caw-field-error", id: id + "-error"}));
}

function read(setting) {
  const input = $("s-" + setting.key);
  if (setting.kind === "bool") return input.checked;
  if (setting.kind === "int") return input.value === "" ? null : Number(input.value);
  if (setting.kind === "str") return input.value;
  return JSON.parse(input.value);
}

function render() {
  const form = clear($("settings-form"));
  for (const setting of state.settings) form.appendChild(control(setting, state.values[setting.key]));
}

async function load() {
  try {
    const body = await api("/api/settings");
    state.values = body.values || {};
    state.settings = body.settings || [];
    render();
  } catch (error) {
    notify($("settings-notice"), "error", "Could not load settings.", error.message);
  }
}

async function save(event) {
  event.preventDefault();
  const changes = {};
  for (const setting of state.settings) {
    let value;
    try {
      value = read(setting);
    } catch (error) {
      $("s-" + setting.key + "-error").textContent = "Not valid JSON: " + error.message;
      return;
    }
    if (JSON.stringify(value) !== JSON.stringify(state.values[setting.key])) changes[setting.key] = value;
  }
  if (!Object.keys(changes).length) {
    notify($("settings-notice"), "info", "Nothing changed.");
    return;
  }
  try {
    const body = await api("/api/settings", {method: "PUT", body: changes});
    state.values = body.values || state.values;
    render();
    notify($("settings-notice"), "success", "Settings saved.", Object.keys(changes).join(", "));
  } catch (error) {
    notify($("settings-notice"), "error", "Could not save settings.",
      (error.field ? error.field + ": " : "") + error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("settings-form").addEventListener("submit", save);
  load();
});
