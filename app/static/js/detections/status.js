/* Detections page: the refresh status poll — last and next refresh, progress and Cancel while a refresh
 * runs, QRadar's problem in words while refreshes fail, and "Refresh now". */

import {api, formatTime, hasCapability, me, notify} from "../common.js";
import {describe, nextPollMs} from "../qradar_health.js";
import {$} from "./model.js";

let timer = null;
let wasRunning = false;
// Cancelling needs the 'tune' permission (the API answers others 403): only they are offered Cancel.
let mayCancel = false;
let dataChanged = () => {};

// onRefreshed(): a refresh this page saw running has ended, so the shown data may be stale.
export function initStatus({onRefreshed}) {
  dataChanged = onRefreshed;
  $("refresh-now").addEventListener("click", refreshNow);
  $("refresh-cancel").addEventListener("click", cancelRefresh);
  me().then((user) => {
    mayCancel = hasCapability(user, "tune");
  });
}

function refreshErrorText(status) {
  const error = status.last_error;
  if (!error) return "";
  return typeof error === "string" ? error : (error.message || JSON.stringify(error));
}

export async function loadStatus() {
  let status;
  try {
    status = await api("/api/status");
  } catch (error) {
    notify($("refresh-notice"), "error", "Could not read the refresh status.", error.message);
    // The app may be restarting behind QRadar's proxy: look again later rather than stop polling.
    clearTimeout(timer);
    timer = setTimeout(loadStatus, nextPollMs(null));
    return;
  }
  $("refresh-last").textContent = status.last_refresh_ms || status.last_refresh ?
    formatTime(status.last_refresh_ms || status.last_refresh) : "never";
  $("refresh-next").textContent = status.next_refresh_ms || status.next_refresh ?
    formatTime(status.next_refresh_ms || status.next_refresh) : "–";
  showLateData(status.late_data);
  const running = Boolean(status.running);
  const progress = Math.max(0, Math.min(100, Number(status.progress || 0)));
  $("refresh-progress").hidden = !running;
  $("refresh-cancel").hidden = !(running && mayCancel);
  $("refresh-now").disabled = running;
  $("refresh-progress-track").setAttribute("aria-valuenow", String(progress));
  $("refresh-progress-bar").style.transform = `scaleX(${progress / 100})`;
  // While refreshes fail: QRadar's problem, since when, and the next (backed-off) attempt (qradar_health.js).
  const health = describe(status);
  const errorText = refreshErrorText(status);
  if (health) notify($("refresh-notice"), "error", health.title, health.text);
  else if (running) notify($("refresh-notice"));
  else if (errorText) notify($("refresh-notice"), "error", "The last refresh failed:", errorText);
  else if (status.last_status === "cancelled") notify($("refresh-notice"), "info", "The last refresh was cancelled.");
  else notify($("refresh-notice"));
  // The coalescing health check: cloud log sources whose repeated events QRadar merges.
  const coalescing = status.coalescing || {};
  if (coalescing.warning) {
    const names = (coalescing.log_sources_on || []).map((s) => s.name).join(", ");
    notify($("coalescing-notice"), "warning", coalescing.warning, names);
  } else notify($("coalescing-notice"));
  clearTimeout(timer);
  // Poll every second while a refresh runs or is queued, else every 30 s.
  if (running || status.refresh_requested) {
    wasRunning = true;
    timer = setTimeout(loadStatus, 1000);
  } else {
    if (wasRunning) {
      wasRunning = false;
      dataChanged();
    }
    timer = setTimeout(loadStatus, nextPollMs(status));
  }
}

// Events QRadar stored late: the largest receipt-to-first-seen lag and the detections only the late-data
// reconciliation found (shown once there is a lag to report).
function showLateData(late) {
  const lag = late && Number.isFinite(late.max_lag_ms) ? late.max_lag_ms : null;
  $("late-data").hidden = lag === null;
  if (lag === null) return;
  $("late-data-lag").textContent = formatLag(lag);
  $("late-data-reconciled").textContent = String(late.reconciled_detections || 0);
}

function formatLag(ms) {
  const minutes = Math.round(ms / 60000);
  if (minutes < 1) return `${Math.max(0, Math.round(ms / 1000))} s`;
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
}

async function refreshNow() {
  try {
    await api("/api/refresh", {method: "POST", body: {}});
    wasRunning = true;
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
