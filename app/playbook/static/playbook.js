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

for (const button of document.querySelectorAll(".caw-pb-run")) {
  button.addEventListener("click", async () => {
    const article = button.closest(".caw-pb-hunt");
    const out = article.querySelector(".caw-pb-results");
    const running = el("p", {className: "caw-pb-running"}, "Running in QRadar…");
    clear(out).appendChild(running);
    // A slow search keeps the query running for a while: show that it is still going.
    const started = Date.now();
    const ticker = setInterval(() => {
      running.textContent = "Running in QRadar… " + Math.round((Date.now() - started) / 1000) + " s";
    }, 1000);
    button.disabled = true;
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
      const result = await api("/api/hunting/run", {method: "POST", body});
      clear(out);
      out.appendChild(el("p", {className: "caw-pb-count"}, result.total + " event(s)"));
      if (result.total) out.appendChild(table(result.columns, result.items));
    } catch (error) {
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
