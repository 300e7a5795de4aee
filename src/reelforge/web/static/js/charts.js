// Small SVG charts drawn by hand: stacked bars and an area line, scaled to their data.
const NS = "http://www.w3.org/2000/svg";
const WIDTH = 460;
const HEIGHT = 230;
const PAD = { top: 12, right: 10, bottom: 26, left: 46 };

function node(tag, attrs = {}, text = "") {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text) n.textContent = text;
  return n;
}

// The top of the scale: four equal steps of a round size (1, 2, 2.5 or 5 times a power of ten).
function niceMax(value, whole = false) {
  const raw = Math.max(value, whole ? 4 : 0.04) / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((s) => s * power).find((s) => s >= raw);
  return (whole ? Math.max(1, Math.ceil(step)) : step) * 4;
}

function frame(days, max, formatY) {
  const svg = node("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, "aria-hidden": "true" });
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  for (let i = 0; i <= 4; i += 1) {
    const y = PAD.top + plotH - (plotH * i) / 4;
    svg.append(node("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y, class: i ? "grid-line" : "axis" }));
    svg.append(node("text", { x: PAD.left - 6, y: y + 4, "text-anchor": "end" }, formatY((max * i) / 4)));
  }
  const step = (WIDTH - PAD.left - PAD.right) / days.length;
  // A phone shows the chart at about 340 px with larger text: half as many date labels.
  const labels = window.matchMedia("(max-width: 640px)").matches ? 3 : 6;
  const every = Math.max(1, Math.ceil(days.length / labels));
  const last = days.length - 1;
  days.forEach((day, i) => {
    // The last day is labelled too, unless that would crowd the label before it.
    const lastFits = i === last && last % every >= every / 2;
    if (i % every !== 0 && !lastFits) return;
    const label = new Date(`${day.day}T00:00:00Z`).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
    // The last label ends at the plot's edge rather than running past the chart.
    const at = i === last ? { x: WIDTH - PAD.right, "text-anchor": "end" } : { x: PAD.left + step * i + step / 2, "text-anchor": "middle" };
    svg.append(node("text", { ...at, y: HEIGHT - 8 }, label));
  });
  return { svg, plotH, step };
}

export function videosChart(target, days) {
  const totals = days.map((d) => d.completed + d.failed + d.running + d.cancelled);
  const max = niceMax(Math.max(...totals, 1), true);
  const { svg, plotH, step } = frame(days, max, (v) => String(Math.round(v)));
  const barW = Math.max(2, step * 0.64);
  days.forEach((day, i) => {
    let y = PAD.top + plotH;
    const x = PAD.left + step * i + (step - barW) / 2;
    for (const [count, cls] of [[day.completed, "bar-completed"], [day.failed, "bar-failed"], [day.running + day.cancelled, "bar-other"]]) {
      if (!count) continue;
      const h = (count / max) * plotH;
      y -= h;
      const rect = node("rect", { x, y, width: barW, height: h, rx: 2, class: cls });
      rect.append(node("title", {}, `${day.day}: ${count}`));
      svg.append(rect);
    }
  });
  target.replaceChildren(svg);
}

export function spendChart(target, days) {
  const values = days.map((d) => Number(d.spend));
  const max = niceMax(Math.max(...values, 0));
  const { svg, plotH, step } = frame(days, max, (v) => `$${max < 4 ? v.toFixed(2) : v.toFixed(0)}`);
  const points = values.map((v, i) => [PAD.left + step * i + step / 2, PAD.top + plotH - (Math.max(v, 0) / max) * plotH]);
  const line = points.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
  const base = PAD.top + plotH;
  svg.append(node("path", { d: `${line} L${points[points.length - 1][0].toFixed(1)},${base} L${points[0][0].toFixed(1)},${base} Z`, class: "spend-area" }));
  svg.append(node("path", { d: line, class: "spend-line" }));
  points.forEach(([x, y], i) => {
    if (!values[i]) return;
    const dot = node("circle", { cx: x, cy: y, r: 3, class: "dot" });
    dot.append(node("title", {}, `${days[i].day}: $${values[i].toFixed(2)}`));
    svg.append(dot);
  });
  target.replaceChildren(svg);
}
