/* Cloud Account Watch: helpers shared by the app's pages (an ES module, served as written: no build step).
 * Every DOM write goes through createElement/textContent: values from logs are attacker-controlled and must
 * never be parsed as HTML. Pages load it through relative imports, so it resolves under the same QRadar
 * app-proxy prefix as the page's own scripts (q_url_for in the templates). */

export const config = JSON.parse(document.getElementById("caw-config").textContent || "{}");
const SVG_NS = "http://www.w3.org/2000/svg";

/* ---------- DOM ---------- */

// el("td", {className: "x", dataset: {id: 1}}, "text", childNode, ...): text children become text nodes.
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  applyAttrs(node, attrs);
  append(node, children);
  return node;
}

export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function applyAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = String(value);
    // CSSOM, not a style attribute: the Content-Security-Policy allows no inline style attributes.
    else if (key === "style") node.style.cssText = String(value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function tag(text, color, title) {
  return el("span", {className: "cds--tag cds--tag--sm cds--tag--" + (color || "gray"), title: title || null},
    el("span", {className: "cds--tag__label"}, text));
}

/* ---------- HTTP ---------- */

export function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export function appUrl(path, query) {
  const url = new URL(config.app_root.replace(/\/$/, "") + path, window.location.href);
  for (const [key, value] of Object.entries(query || {})) {
    if (value === null || value === undefined || value === "" || value === false) continue;
    url.searchParams.set(key, String(value));
  }
  return url.pathname + url.search;
}

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || ("The app answered HTTP " + status + "."));
    this.status = status;
    this.code = err.code || "";
    this.field = err.field || "";
    this.body = body;
  }
}

// JSON API call. Unsafe methods carry the QRadarCSRF header copied from the QRadarCSRF cookie.
export async function api(path, options) {
  const opts = options || {};
  const method = (opts.method || "GET").toUpperCase();
  const headers = {"Accept": "application/json"};
  const init = {method, headers, credentials: "same-origin"};
  if (!["GET", "HEAD", "OPTIONS"].includes(method)) {
    headers["QRadarCSRF"] = cookie("QRadarCSRF");
  }
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  let response;
  try {
    response = await fetch(appUrl(path, opts.query), init);
  } catch (error) {
    throw new ApiError(0, {error: {message: "The app could not be reached (" + error.message + ")."}});
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (error) {
    body = null;
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/* ---------- notifications ---------- */

// An inline Carbon notification (kind: error|warning|success|info) replacing what the container held.
export function notify(container, kind, title, message) {
  clear(container);
  if (!title) return;
  const close = el("button", {className: "cds--inline-notification__close-button", type: "button",
    "aria-label": "Dismiss notification", onclick: () => clear(container)}, "×");
  container.appendChild(el("div", {
    className: "cds--inline-notification cds--inline-notification--low-contrast cds--inline-notification--" + kind,
    role: kind === "error" ? "alert" : "status"},
  el("div", {className: "cds--inline-notification__details"},
    el("div", {className: "cds--inline-notification__text-wrapper"},
      el("div", {className: "cds--inline-notification__title"}, title),
      message ? el("div", {className: "cds--inline-notification__subtitle"}, " " + message) : null)),
  close));
}

/* ---------- time ---------- */

const TZ_KEY = "caw.timezone";

export function timeZone() {
  return localStorage.getItem(TZ_KEY) === "UTC" ? "UTC" : Intl.DateTimeFormat().resolvedOptions().timeZone;
}

export function setUtc(useUtc) {
  localStorage.setItem(TZ_KEY, useUtc ? "UTC" : "local");
}

export function isUtc() {
  return localStorage.getItem(TZ_KEY) === "UTC";
}

// "2026-11-27 18:35:57 UTC" / "... Europe/Berlin": always with an explicit zone.
export function formatTime(ms, withSeconds) {
  if (ms === null || ms === undefined || ms === "") return "";
  const zone = timeZone();
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: withSeconds === false ? undefined : "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(Number(ms)));
  const get = (type) => (parts.find((p) => p.type === type) || {}).value || "";
  const clock = get("hour") + ":" + get("minute") + (withSeconds === false ? "" : ":" + get("second"));
  return get("year") + "-" + get("month") + "-" + get("day") + " " + clock + " " + zoneLabel();
}

export function zoneLabel() {
  return timeZone() === "UTC" ? "UTC" : timeZone();
}

export function hourLabel(ms) {
  const parts = new Intl.DateTimeFormat("en-CA", {timeZone: timeZone(), hour: "2-digit", hourCycle: "h23"})
    .formatToParts(new Date(Number(ms)));
  return ((parts.find((p) => p.type === "hour") || {}).value || "") + ":00";
}

/* ---------- current user ---------- */

let mePromise = null;

export function me() {
  if (!mePromise) mePromise = api("/api/me").catch(() => null);
  return mePromise;
}

export function hasCapability(user, name) {
  // /api/me: {"name", "role", "capabilities": [...], "permissions": {"view", "tune", "admin"}}
  if (!user) return false;
  if (user.permissions && name in user.permissions) return Boolean(user.permissions[name]);
  return (user.capabilities || []).map((c) => String(c.name || c).toLowerCase()).includes(name);
}

async function revealAdminSections() {
  const user = await me();
  if (hasCapability(user, "admin")) {
    for (const link of document.querySelectorAll("[data-section='settings']")) link.hidden = false;
  }
  const who = document.getElementById("caw-user");
  if (who && user) who.textContent = user.name || user.username || "";
  return user;
}

// Debounce for live previews and search boxes.
export function debounce(fn, ms) {
  let timer = null;
  return function (...args) {
    clearTimeout(timer);
    timer = setTimeout(() => fn.apply(this, args), ms);
  };
}

document.addEventListener("DOMContentLoaded", revealAdminSections);
