/** Charts drawn as plain SVG: a time-series line chart and a horizontal bar chart. */
import { formatNumber, h, s } from "./dom.ts";

export interface Series {
  label: string;
  color: string;
  points: { t: number; v: number | null }[];
}

export const palette = [
  "#2563eb",
  "#16a34a",
  "#d97706",
  "#9333ea",
  "#dc2626",
  "#0891b2",
  "#db2777",
  "#65a30d",
];

/** The smallest "nice" number (1, 2, 2.5, 5 x 10^n) at or above `value`. */
function niceCeil(value: number): number {
  if (value <= 0) return 1;
  const exponent = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * exponent) return step * exponent;
  return 10 * exponent;
}

const clock = (t: number) =>
  new Date(t).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

export function lineChart(
  series: Series[],
  options: { title: string; unit: string; tMin: number; tMax: number; testid?: string },
): HTMLElement {
  const width = 560;
  const height = 200;
  const pad = { left: 48, right: 12, top: 10, bottom: 24 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  let max = 0;
  for (const one of series) for (const p of one.points) if (p.v !== null && p.v > max) max = p.v;
  const yMax = niceCeil(max);
  const span = Math.max(1, options.tMax - options.tMin);
  const x = (t: number) => pad.left + ((t - options.tMin) / span) * plotW;
  const y = (v: number) => pad.top + plotH - (v / yMax) * plotH;

  const svg = s("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": options.title,
  });
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    svg.append(
      s("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: "grid" }),
      s("text", { x: pad.left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, formatNumber(v)),
    );
  }
  for (const [i, anchor] of (["start", "middle", "end"] as const).entries()) {
    const t = options.tMin + (span * i) / 2;
    svg.append(s("text", { x: x(t), y: height - 6, class: "axis", "text-anchor": anchor }, clock(t)));
  }
  for (const one of series) {
    // A gap in the data (a failed scrape) breaks the line instead of bridging it.
    let d = "";
    let pen = false;
    for (const p of one.points) {
      if (p.v === null || p.t < options.tMin) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`;
      pen = true;
    }
    if (d !== "") svg.append(s("path", { d, fill: "none", stroke: one.color, "stroke-width": 2 }));
  }
  if (series.every((one) => one.points.every((p) => p.v === null))) {
    svg.append(
      s(
        "text",
        { x: width / 2, y: height / 2, class: "axis", "text-anchor": "middle" },
        "collecting samples...",
      ),
    );
  }
  const last = (one: Series) => [...one.points].reverse().find((p) => p.v !== null)?.v ?? null;
  return h(
    "figure",
    { class: "card chart-card", "data-testid": options.testid },
    h("figcaption", null, options.title, h("span", { class: "unit" }, options.unit)),
    svg,
    h(
      "div",
      { class: "legend" },
      series.map((one) =>
        h(
          "span",
          { class: "legend-item" },
          h("i", { style: `background:${one.color}` }),
          `${one.label} `,
          h("b", null, formatNumber(last(one))),
        ),
      ),
    ),
  );
}

export function barChart(
  rows: { label: string; value: number; color: string }[],
  options: { title: string; testid?: string; note?: string },
): HTMLElement {
  const max = Math.max(1, ...rows.map((r) => r.value));
  return h(
    "figure",
    { class: "card", "data-testid": options.testid },
    h("figcaption", null, options.title, options.note ? h("span", { class: "unit" }, options.note) : null),
    h(
      "div",
      { class: "bars" },
      rows.map((row) =>
        h(
          "div",
          { class: "bar-row" },
          h("span", { class: "bar-label" }, row.label),
          h(
            "span",
            { class: "bar-track" },
            h("span", {
              class: "bar-fill",
              style: `width:${((row.value / max) * 100).toFixed(1)}%;background:${row.color}`,
            }),
          ),
          h("span", { class: "bar-value" }, row.value.toLocaleString()),
        ),
      ),
    ),
  );
}
