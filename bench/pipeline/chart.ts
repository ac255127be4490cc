/** A hand-written SVG line chart: a grid of panels, each with a few series over seconds. */

export interface Series {
  label: string;
  color: string;
  /** [x seconds, y] */
  points: [number, number][];
}

export interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
  /** Horizontal reference line, e.g. a target. */
  target?: { y: number; label: string };
}

const panelWidth = 560;
const panelHeight = 260;
const margin = { left: 70, right: 20, top: 34, bottom: 40 };

const escapeXml = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** A round step giving about `count` ticks over [0, max]. */
function tickStep(max: number, count: number): number {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw) ?? raw) as number;
}

function compact(value: number): string {
  if (value >= 1_000_000) return `${+(value / 1_000_000).toFixed(1)}M`;
  if (value >= 1000) return `${+(value / 1000).toFixed(1)}k`;
  return `${+value.toFixed(1)}`;
}

function panelSvg(panel: Panel, offsetX: number, offsetY: number): string {
  const points = panel.series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...points.map(([x]) => x));
  const yMax = Math.max(1, ...points.map(([, y]) => y), panel.target ? panel.target.y * 1.1 : 0) * 1.05;
  const plotW = panelWidth - margin.left - margin.right;
  const plotH = panelHeight - margin.top - margin.bottom;
  const sx = (x: number) => offsetX + margin.left + (x / xMax) * plotW;
  const sy = (y: number) => offsetY + margin.top + plotH - (Math.min(y, yMax) / yMax) * plotH;
  const parts: string[] = [];
  parts.push(
    `<text x="${offsetX + margin.left}" y="${offsetY + 20}" font-size="14" font-weight="bold">${escapeXml(panel.title)}</text>`,
  );
  const yStep = tickStep(yMax, 5);
  for (let y = 0; y <= yMax; y += yStep) {
    parts.push(
      `<line x1="${sx(0)}" x2="${sx(xMax)}" y1="${sy(y)}" y2="${sy(y)}" stroke="#ddd"/>`,
      `<text x="${sx(0) - 6}" y="${sy(y) + 4}" font-size="11" text-anchor="end">${compact(y)}</text>`,
    );
  }
  const xStep = tickStep(xMax, 8);
  for (let x = 0; x <= xMax; x += xStep) {
    parts.push(
      `<line x1="${sx(x)}" x2="${sx(x)}" y1="${sy(0)}" y2="${sy(0) + 4}" stroke="#333"/>`,
      `<text x="${sx(x)}" y="${sy(0) + 16}" font-size="11" text-anchor="middle">${compact(x)}</text>`,
    );
  }
  parts.push(
    `<line x1="${sx(0)}" x2="${sx(xMax)}" y1="${sy(0)}" y2="${sy(0)}" stroke="#333"/>`,
    `<line x1="${sx(0)}" x2="${sx(0)}" y1="${sy(0)}" y2="${sy(yMax)}" stroke="#333"/>`,
    `<text x="${sx(xMax / 2)}" y="${sy(0) + 32}" font-size="11" text-anchor="middle">seconds since the first alert was produced</text>`,
    `<text transform="translate(${offsetX + 14} ${sy(yMax / 2)}) rotate(-90)" font-size="11" text-anchor="middle">${escapeXml(panel.yLabel)}</text>`,
  );
  if (panel.target) {
    parts.push(
      `<line x1="${sx(0)}" x2="${sx(xMax)}" y1="${sy(panel.target.y)}" y2="${sy(panel.target.y)}" stroke="#c00" stroke-dasharray="6 4"/>`,
      `<text x="${sx(xMax) - 4}" y="${sy(panel.target.y) - 4}" font-size="11" fill="#c00" text-anchor="end">${escapeXml(panel.target.label)}</text>`,
    );
  }
  panel.series.forEach((series, i) => {
    if (series.points.length > 0) {
      const d = series.points
        .map(([x, y], j) => `${j === 0 ? "M" : "L"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`)
        .join(" ");
      parts.push(`<path d="${d}" fill="none" stroke="${series.color}" stroke-width="1.6"/>`);
    }
    const legendX = offsetX + margin.left + 10 + i * 150;
    parts.push(
      `<rect x="${legendX}" y="${offsetY + margin.top + 4}" width="12" height="3" fill="${series.color}"/>`,
      `<text x="${legendX + 16}" y="${offsetY + margin.top + 9}" font-size="11">${escapeXml(series.label)}</text>`,
    );
  });
  return parts.join("\n");
}

/** `rows` of panels, laid out left to right, top to bottom, under a title. */
export function chartSvg(title: string, rows: Panel[][]): string {
  const titleHeight = 30;
  const columns = Math.max(...rows.map((row) => row.length));
  const width = columns * panelWidth;
  const height = titleHeight + rows.length * panelHeight;
  const body = rows.flatMap((row, r) =>
    row.map((panel, c) => panelSvg(panel, c * panelWidth, titleHeight + r * panelHeight)),
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}
