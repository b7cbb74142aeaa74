/* QRadar health on the tab's pages.
 * While the background refresh from QRadar fails, say so: QRadar's problem in words, since when data has
 * not been refreshed, and when the refresher tries again (it backs off: 15 s, 30 s, 60 s … up to the
 * refresh interval). The pages keep working from the app's store meanwhile. From GET /api/status:
 * the Detections page shows it in its refresh notice (describe/nextPollMs, fed by its own status polls);
 * other pages get the banner of tab/_qradar_health.html, polled here. Text only: the error is QRadar's. */

import {api, formatTime, notify} from "./common.js";

const IDLE_POLL_MS = 30000;
const BUSY_POLL_MS = 2000;
let timer = null;

function failing(status) {
  return Boolean(status && status.last_error && Number(status.consecutive_failures || 0) > 0);
}

// {title, text} while refreshes fail, else null.
export function describe(status) {
  if (!failing(status)) return null;
  const failures = Number(status.consecutive_failures);
  const since = status.last_refresh_ms ? " since " + formatTime(status.last_refresh_ms) : "";
  const next = status.running ? "retrying now" :
    status.next_refresh_ms ? "next attempt " + formatTime(status.next_refresh_ms) : "retrying";
  const shown = status.last_refresh_ms ? "the detections shown are those stored until then" :
    "no refresh has succeeded yet";
  return {
    title: "The last refresh failed: QRadar refresh failing" + since + ", retrying.",
    text: `${String(status.last_error)} · ${failures} failed attempt${failures === 1 ? "" : "s"}, ` +
      `${next} · ${shown}.`,
  };
}

// When to read the status again: soon while a refresh runs, just after a due retry, else every 30 s.
export function nextPollMs(status) {
  if (status && (status.running || status.refresh_requested)) return BUSY_POLL_MS;
  if (failing(status) && status.next_refresh_ms) {
    return Math.max(BUSY_POLL_MS, Math.min(IDLE_POLL_MS, Number(status.next_refresh_ms) - Date.now() + 1500));
  }
  return IDLE_POLL_MS;
}

async function poll() {
  const box = document.getElementById("qradar-health");
  let status = null;
  try {
    status = await api("/api/status");
    const health = describe(status);
    if (health) notify(box, "warning", health.title, health.text);
    else notify(box);
    box.dataset.state = health ? "failing" : "ok";
  } catch (error) {
    // The app itself did not answer: keep the last banner and look again.
  }
  clearTimeout(timer);
  timer = setTimeout(poll, nextPollMs(status));
}

document.addEventListener("DOMContentLoaded", () => {
  // The Detections page has its own status poll and shows health in its refresh notice.
  if (document.getElementById("qradar-health") && !document.getElementById("refresh-notice")) poll();
});
