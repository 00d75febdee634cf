// Time-series charts for every page that draws one (history, earnings): uPlot (vendored, MIT),
// loaded only when a chart is first drawn so the first load of the dashboard stays small.
//
//   const chart = await timeChart(container, {
//     title: "Room temperature", series: [{label: "sensor.x", unit: "°C", points: [[unixSeconds, value], ...], step: false}],
//     onRange: (min, max) => ..., });
//   chart.destroy();
//
// Drag across the chart to zoom in, double-click to zoom out again; hovering shows each series'
// value with its unit. Colours follow the stylesheet's light/dark variables, the chart follows its
// container's width, and a summary plus a data table give screen readers what the canvas cannot.

const BASE = "/static/vendor/uplot/";
let loading = null;

/** window.uPlot, loading its script and stylesheet once (the CSP allows only the hub's own files). */
export function loadUPlot() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = BASE + "uPlot.min.css";
      document.head.append(css);
      const script = document.createElement("script");
      script.src = BASE + "uPlot.iife.min.js";
      script.onload = () => resolve(window.uPlot);
      script.onerror = () => { loading = null; reject(new Error("The chart library could not be loaded from the hub.")); };
      document.head.append(script);
    });
  }
  return loading;
}

function colours() {
  const css = getComputedStyle(document.documentElement);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return {
    fg: v("--fg", "#1b1f24"), muted: v("--muted", "#5b6470"), line: v("--line", "#d7dce2"),
    series: [v("--accent", "#0b63c5"), v("--ok", "#1e7b34"), v("--bad", "#b3261e"), "#b26a00", "#7b3fb3", "#00838f"],
  };
}

export function formatValue(value, unit) {
  if (value === null || value === undefined || Number.isNaN(value)) return "no value";
  // Two decimals, except below 1, where three significant digits (0.0001 RUFF is not "0.00").
  const text = Math.abs(value) >= 100 || Number.isInteger(value) ? String(Math.round(value * 100) / 100)
    : Math.abs(value) >= 1 ? value.toFixed(2) : String(Number(value.toPrecision(3)));
  return unit ? `${text} ${unit}` : text;
}

export function formatTime(seconds) {
  return new Date(seconds * 1000).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

/** Several series with their own timestamps on one x axis: uPlot wants one (null where absent). */
function align(series) {
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = series.map((s) => {
    const column = new Array(times.length).fill(null);
    for (const [t, v] of s.points) column[index.get(t)] = v;
    return column;
  });
  return [times, ...columns];
}

/** Readings, without a point added only to draw a held state up to the end ([t, v, true]). */
const readings = (s) => s.points.filter((p) => !p[2]);

function summaryOf(s) {
  const values = readings(s).map((p) => p[1]).filter((v) => v !== null && Number.isFinite(v));
  if (!values.length) return `${s.label}: no data in this range.`;
  const last = readings(s)[readings(s).length - 1];
  const n = `${values.length} reading${values.length === 1 ? "" : "s"}`;
  if (s.labels) return `${s.label}: ${n}, last ${s.labels[last[1]] ?? "unavailable"} at ${formatTime(last[0])}.`;
  return `${s.label}: ${n}, lowest ${formatValue(Math.min(...values), s.unit)}, ` +
    `highest ${formatValue(Math.max(...values), s.unit)}, last ${formatValue(last[1], s.unit)} at ${formatTime(last[0])}.`;
}

/** The text alternative: one summary line per series and (folded) the readings as a table. */
function textAlternative(series, maxRows = 200) {
  const box = document.createElement("div");
  box.className = "chart-text";
  const list = document.createElement("ul");
  list.className = "chart-summary";
  for (const s of series) {
    const li = document.createElement("li");
    li.textContent = summaryOf(s);
    list.append(li);
  }
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "Readings as a table";
  details.append(summary);
  for (const s of series) {
    const table = document.createElement("table");
    const caption = document.createElement("caption");
    const all = readings(s);
    const shown = all.slice(-maxRows);
    caption.textContent = shown.length < all.length ? `${s.label} (the last ${shown.length} of ${all.length})` : s.label;
    const head = document.createElement("tr");
    for (const text of ["Time", s.unit ? `Value (${s.unit})` : "Value"]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = text;
      head.append(th);
    }
    table.append(caption, head);
    for (const [t, v] of shown) {
      const tr = document.createElement("tr");
      const a = document.createElement("td");
      a.textContent = formatTime(t);
      const b = document.createElement("td");
      b.textContent = v === null ? "unavailable" : s.labels ? s.labels[v] ?? String(v) : formatValue(v, "");
      tr.append(a, b);
      table.append(tr);
    }
    details.append(table);
  }
  box.append(list, details);
  return box;
}

/**
 * Draw a time-series chart in `container` (emptied first). Series points are [unix seconds, number
 * or null] (a third element true: drawn but not a reading, e.g. a state held up to now); `step: true` draws a step line (on/off states), `labels` names a step series' values.
 * Returns {plot, destroy, setRange(min, max), append(seriesIndex, point)}; `onRange(min, max)` is told whenever the shown range
 * changes (zoom in, zoom out).
 */
export async function timeChart(container, { title, series, height = 300, onRange } = {}) {
  const uPlot = await loadUPlot();
  container.replaceChildren();
  const figure = document.createElement("figure");
  figure.className = "chart";
  const caption = document.createElement("figcaption");
  caption.textContent = title || series.map((s) => s.label).join(", ");
  const plotBox = document.createElement("div");
  plotBox.className = "chart-plot";
  plotBox.setAttribute("aria-hidden", "true"); // the canvas says nothing to a screen reader; the text below does
  const hint = document.createElement("p");
  hint.className = "muted chart-hint";
  hint.textContent = "Drag across the chart to zoom in; double-click to zoom out.";
  let text = textAlternative(series);
  figure.append(caption, plotBox, hint, text);
  container.append(figure);

  let plot = null;
  let data = align(series);
  let zoomed = false;
  const build = () => {
    const c = colours();
    const axis = { stroke: c.muted, grid: { stroke: c.line, width: 1 }, ticks: { stroke: c.line, width: 1 } };
    const opts = {
      width: Math.max(200, plotBox.clientWidth || container.clientWidth || 600),
      height,
      scales: { x: { time: true } },
      cursor: { drag: { x: true, y: false, setScale: true } },
      legend: { live: true },
      axes: [{ ...axis }, ...series.slice(0, 2).map((s, i) => ({
        ...axis, scale: s.unit || "value", side: i === 0 ? 3 : 1,
        label: s.unit || undefined, labelSize: s.unit ? 20 : 0,
        grid: i === 0 ? axis.grid : { show: false },
        values: s.labels ? (u, ticks) => ticks.map((t) => s.labels[t] ?? "") : (u, ticks) => ticks.map((t) => formatValue(t)),
      }))],
      series: [
        { label: "Time", value: (u, v) => (v == null ? "–" : formatTime(v)) },
        ...series.map((s, i) => ({
          label: s.label,
          scale: s.unit || "value",
          stroke: c.series[i % c.series.length],
          width: 2,
          spanGaps: !s.step,
          points: { show: s.points.length < 60 },
          paths: s.step ? uPlot.paths.stepped({ align: 1 }) : undefined,
          value: (u, v) => (v == null ? "–" : s.labels ? s.labels[v] ?? String(v) : formatValue(v, s.unit)),
        })),
      ],
      hooks: {
        setScale: [(u, key) => {
          if (key !== "x") return;
          const times = u.data[0];
          zoomed = times.length > 1 && (u.scales.x.min > times[0] || u.scales.x.max < times[times.length - 1]);
          if (onRange) onRange(u.scales.x.min, u.scales.x.max);
        }],
      },
    };
    // On/off series (labelled steps) get a fixed 0-1 scale; other steps (a running total) their own.
    for (const s of series) if (s.step && s.labels) opts.scales[s.unit || "value"] = { range: [-0.1, 1.1] };
    const times = data[0];
    if (times.length && times[0] === times[times.length - 1]) {  // one instant: uPlot would span years
      opts.scales.x.range = () => [times[0] - 60, times[0] + 60];
    }
    if (plot) plot.destroy();
    plot = new uPlot(opts, data, plotBox);
    handle.plot = plot;
  };

  // New readings (live states) are drawn at most once a second; a zoomed-in view stays where it is.
  let redraw = null;
  const handle = {
    plot: null,
    setRange(min, max) { plot.setScale("x", { min, max }); },
    append(index, point) {
      series[index].points.push(point);
      if (redraw) return;
      redraw = setTimeout(() => {
        redraw = null;
        data = align(series);
        if (!plot) return;
        const keep = zoomed && { min: plot.scales.x.min, max: plot.scales.x.max };
        plot.setData(data, !keep);
        if (keep) plot.setScale("x", keep);
        const open = text.querySelector("details").open;
        const fresh = textAlternative(series);
        fresh.querySelector("details").open = open;
        text.replaceWith(fresh);
        text = fresh;
      }, 1000);
    },
    destroy() {
      clearTimeout(redraw);
      resize.disconnect();
      scheme.removeEventListener("change", build);
      if (plot) plot.destroy();
      plot = null;
    },
  };
  build();
  const resize = new ResizeObserver(() => {
    const width = Math.max(200, plotBox.clientWidth);
    if (plot && Math.abs(width - plot.width) > 1) plot.setSize({ width, height });
  });
  resize.observe(figure);
  const scheme = matchMedia("(prefers-color-scheme: dark)");
  scheme.addEventListener("change", build);
  return handle;
}
