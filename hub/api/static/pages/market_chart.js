// The market page's earnings chart: cumulative RUFF earned per device over time, with uPlot loaded
// only when a chart is drawn. (Folded into the shared chart.js at the merge.)

let loading = null;

function loadUPlot() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = "/static/vendor/uplot/uPlot.min.css";
      document.head.append(css);
      const script = document.createElement("script");
      script.src = "/static/vendor/uplot/uPlot.iife.min.js";
      script.onload = () => resolve(window.uPlot);
      script.onerror = () => { loading = null; reject(new Error("the chart library could not be loaded")); };
      document.head.append(script);
    });
  }
  return loading;
}

const COLOURS = ["#0b63c5", "#1e7b34", "#b3261e", "#8a5cf6", "#c77700", "#00838f"];

// rows: [{time (ms), device, amount (base units)}], oldest first. Returns the chart's cleanup.
export async function earningsChart(container, rows) {
  const uPlot = await loadUPlot();
  const devices = [...new Set(rows.map((r) => r.device))].sort();
  const times = [...new Set(rows.map((r) => Math.floor((r.time > 1e11 ? r.time : r.time * 1000) / 1000)))].sort((a, b) => a - b);
  const totals = Object.fromEntries(devices.map((d) => [d, 0]));
  const series = devices.map(() => []);
  let i = 0;
  const sorted = [...rows].sort((a, b) => a.time - b.time);
  for (const t of times) {
    while (i < sorted.length && Math.floor((sorted[i].time > 1e11 ? sorted[i].time : sorted[i].time * 1000) / 1000) <= t) {
      totals[sorted[i].device] += Number(sorted[i].amount) / 1e6; // RUFF, for drawing only
      i += 1;
    }
    devices.forEach((d, k) => series[k].push(totals[d]));
  }
  // From nothing, a minute before the first payment, to now: one payment is a step, not a dot.
  const now = Math.floor(Date.now() / 1000);
  times.unshift(times[0] - 60);
  series.forEach((values) => values.unshift(0));
  if (now > times[times.length - 1]) {
    times.push(now);
    series.forEach((values) => values.push(values[values.length - 1]));
  }
  const width = () => Math.max(280, container.clientWidth || 600);
  const chart = new uPlot({
    width: width(), height: 240,
    title: "Earned so far (RUFF)",
    series: [{}, ...devices.map((d, k) => ({ label: d, stroke: COLOURS[k % COLOURS.length], width: 2, paths: uPlot.paths.stepped({ align: 1 }),
                                                 value: (u, v) => (v == null ? "—" : `${v.toFixed(6)} RUFF`) }))],
    axes: [{}, { label: "RUFF", size: 90, values: (u, splits) => splits.map((v) => v.toFixed(6).replace(/\.?0+$/, "")) }],
  }, [times, ...series], container);
  const resize = () => chart.setSize({ width: width(), height: 240 });
  window.addEventListener("resize", resize);
  return () => { window.removeEventListener("resize", resize); chart.destroy(); };
}
