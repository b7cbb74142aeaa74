/* Cloud Account Watch playbook page: copy buttons, hunting queries run through the app, coverage check.
 * Every value from QRadar is written with textContent (el): log values are attacker-controlled. */

// This file is served at <app>/playbook/static/, the shared helpers at <app>/static/js/: the relative path
// keeps both under the same QRadar app-proxy prefix.
import {api, clear, config, el} from "../../static/js/common.js";

const subject = config.subject || {};

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (error) {
    const area = el("textarea", {className: "caw-pb-copy-buffer"});
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
}

for (const button of document.querySelectorAll(".caw-pb-copy")) {
  button.addEventListener("click", () => {
    const code = button.parentElement.querySelector("code");
    if (code) copyText(code.textContent, button);
  });
}

function table(columns, items) {
  return el("table", {className: "cds--data-table cds--data-table--sm caw-pb-result-table"},
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, c)))),
    el("tbody", {}, items.map((row) => el("tr", {}, columns.map((c) => el("td", {},
      row[c] === null || row[c] === undefined ? "" : String(row[c])))))));
}

const POLL_MS = 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The app starts the search and answers its handle at once; the page asks for its state about once a
// second (each ask is one short status call to QRadar) until the rows come, QRadar fails, or Cancel.
for (const button of document.querySelectorAll(".caw-pb-run")) {
  button.addEventListener("click", async () => {
    const article = button.closest(".caw-pb-hunt");
    const out = article.querySelector(".caw-pb-results");
    const running = el("span", {className: "caw-pb-running-text"}, "Running in QRadar… 0 s");
    const cancel = el("button", {type: "button", className: "cds--btn cds--btn--ghost cds--btn--sm caw-pb-cancel"},
      "Cancel");
    clear(out).appendChild(el("p", {className: "caw-pb-running"}, running, " ", cancel));
    const started = Date.now();
    const ticker = setInterval(() => {
      running.textContent = "Running in QRadar… " + Math.round((Date.now() - started) / 1000) + " s";
    }, 1000);
    button.disabled = true;
    let handle = null;
    let cancelled = false;
    let cancelSent = false;
    async function cancelSearch() {
      if (!handle || cancelSent) return;
      cancelSent = true;
      try {
        await api(handle.poll_url, {method: "DELETE"});
      } catch (error) {
        // Already finished or gone in QRadar: nothing left to stop.
      }
    }
    cancel.addEventListener("click", () => {
      cancelled = true;
      cancel.disabled = true;
      cancelSearch();
    });
    const body = {query: article.dataset.query};
    if (subject.platform === article.dataset.platform) {
      if (subject.detection) body.detection = subject.detection;
      else {
        body.actor = subject.actor || null;
        body.target = subject.target || null;
        body.around_ms = subject.around_ms || null;
      }
    }
    try {
      handle = await api("/api/hunting/run", {method: "POST", body});
      let result = null;
      while (!cancelled) {
        await sleep(POLL_MS);
        if (cancelled) break;
        const state = await api(handle.poll_url);
        if (state.done) { result = state; break; }
      }
      if (cancelled) {
        await cancelSearch();  // Cancel pressed before the search's handle came
        clear(out).appendChild(el("p", {className: "caw-pb-cancelled"}, "Cancelled."));
        return;
      }
      clear(out);
      out.appendChild(el("p", {className: "caw-pb-count"}, result.total + " event(s)"));
      if (result.total) out.appendChild(table(result.columns, result.items));
    } catch (error) {
      if (cancelled) {
        clear(out).appendChild(el("p", {className: "caw-pb-cancelled"}, "Cancelled."));
        return;
      }
      // The app's JSON error names the problem (QRadar's own message, or that QRadar did not answer);
      // written as text. Gateway-side failures (5xx) are worth another try once QRadar is back.
      const retry = error.status === 0 || error.status >= 500 ? " Try again in a moment." : "";
      clear(out).appendChild(el("p", {className: "caw-pb-error", role: "alert",
        dataset: {status: String(error.status || 0)}}, "The query did not run: " + error.message + retry));
    } finally {
      clearInterval(ticker);
      button.disabled = false;
    }
  });
}

const coverageButton = document.querySelector(".caw-pb-coverage");
if (coverageButton) {
  coverageButton.addEventListener("click", async () => {
    const windowValue = document.querySelector(".caw-pb-window").value;
    coverageButton.disabled = true;
    try {
      const result = await api("/api/validation/coverage", {query: {window: windowValue}});
      for (const item of result.items) {
        const cell = document.querySelector('.caw-pb-test[data-test="' + CSS.escape(item.key) + '"] .caw-pb-seen');
        if (!cell) continue;
        clear(cell);
        const missing = item.signals.filter((s) => !s.seen).map((s) => s.event_name);
        cell.dataset.seen = item.seen ? "true" : "false";
        cell.appendChild(el("span", {className: "cds--tag cds--tag--sm cds--tag--" + (item.seen ? "green" : "red")},
          el("span", {className: "cds--tag__label"}, item.seen ? "seen" : "missing")));
        if (!item.seen) cell.appendChild(el("div", {className: "cds--label"}, "not seen: " + missing.join(", ")));
        if (!item.collected) cell.appendChild(el("div", {className: "cds--label"}, "not in the app's event set"));
      }
    } catch (error) {
      document.querySelector(".caw-pb-coverage-controls").appendChild(el("p", {className: "caw-pb-error"}, error.message));
    } finally {
      coverageButton.disabled = false;
    }
  });
}
