/* Stacked bar chart of creations per hour by platform, drawn with SVG elements (createElementNS).
 * Labels and tooltips are text nodes / <title> elements: platform names and values are never parsed as markup. */

import {clear, el, svg} from "./common.js";

const PALETTE = ["#0f62fe", "#8a3ffc", "#007d79", "#ee538b", "#b28600", "#1192e8", "#6fdc8c", "#a56eff"];

function colorFor(platforms, platform) {
  const index = platforms.indexOf(platform);
  return PALETTE[(index < 0 ? platforms.length : index) % PALETTE.length];
}

// buckets: [{hour_ms, counts: {platform: n}}]; platforms: ordered names; formatHour(ms) -> short label.
export function stackedBars(container, legend, buckets, platforms, formatHour, formatFull) {
  clear(container);
  clear(legend);
  const width = 640;
  const height = 180;
  const pad = {left: 32, right: 8, top: 8, bottom: 22};
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const totals = buckets.map((b) => platforms.reduce((sum, p) => sum + Number(b.counts[p] || 0), 0));
  const max = Math.max(1, ...totals);
  const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", class: "caw-chart__svg",
    "aria-label": "Creations per hour, stacked by platform"});
  chart.appendChild(svg("title", {}, "Creations per hour, stacked by platform"));

  // y axis: 0 and max
  for (const value of [0, max]) {
    const y = pad.top + innerH - (value / max) * innerH;
    chart.appendChild(svg("line", {x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "caw-chart__grid"}));
    chart.appendChild(svg("text", {x: pad.left - 4, y: y + 4, "text-anchor": "end", class: "caw-chart__axis"},
      String(value)));
  }

  const slot = innerW / Math.max(1, buckets.length);
  const barW = Math.max(1, slot * 0.8);
  const labelEvery = Math.max(1, Math.ceil(buckets.length / 8));
  buckets.forEach((bucket, i) => {
    const x = pad.left + i * slot + (slot - barW) / 2;
    let y = pad.top + innerH;
    const group = svg("g", {class: "caw-chart__bar", "data-hour": bucket.hour_ms});
    for (const platform of platforms) {
      const count = Number(bucket.counts[platform] || 0);
      if (!count) continue;
      const h = (count / max) * innerH;
      y -= h;
      const rect = svg("rect", {x, y, width: barW, height: h, fill: colorFor(platforms, platform)});
      rect.appendChild(svg("title", {}, `${formatFull(bucket.hour_ms)} · ${platform}: ${count}`));
      group.appendChild(rect);
    }
    chart.appendChild(group);
    if (i % labelEvery === 0) {
      chart.appendChild(svg("text", {x: x + barW / 2, y: height - 6, "text-anchor": "middle",
        class: "caw-chart__axis"}, formatHour(bucket.hour_ms)));
    }
  });
  container.appendChild(chart);

  for (const platform of platforms) {
    legend.appendChild(el("span", {className: "caw-legend__item"},
      el("span", {className: "caw-legend__swatch", style: `background:${colorFor(platforms, platform)}`}),
      platform));
  }
}
