// History: recorded states of sensors and meters (and on/off entities) over a chosen range, as
// time-series charts. The choice lives in the address (#/history?entity=ID&entity=ID&hours=N, or
// &start=ISO&end=ISO) so a chart can be bookmarked, shared and reloaded.

import { formatTime, timeChart } from "../chart.js";

const CHARTED = new Set(["sensor", "meter", "binary_sensor", "switch"]);
const ON_OFF = new Set(["binary_sensor", "switch"]);
const RANGES = [["1", "Last hour"], ["24", "Last day"], ["168", "Last week"], ["custom", "From – to"]];

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** datetime-local wants local time without an offset. */
function localInput(seconds) {
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The range the address asks for, or an error in words naming the parameter. */
function rangeOf(query) {
  const now = Date.now() / 1000;
  if (query.get("start") || query.get("end")) {
    const start = Date.parse(query.get("start") || "") / 1000;
    const end = query.get("end") ? Date.parse(query.get("end")) / 1000 : now;
    if (!Number.isFinite(start)) throw new Error(`start: "${query.get("start") || ""}" is not a date and time`);
    if (!Number.isFinite(end)) throw new Error(`end: "${query.get("end")}" is not a date and time`);
    if (end <= start) throw new Error("end: must be after start");
    return { start, end, hours: "custom" };
  }
  const raw = query.get("hours") || "24";
  const hours = Number(raw);
  if (!(hours > 0 && hours <= 24 * 366)) throw new Error(`hours: expected a number of hours between 0 and 8784, got "${raw}"`);
  return { start: now - hours * 3600, end: now, hours: raw };
}

function pointsOf(entity, states) {
  const onOff = ON_OFF.has(entity.capability);
  return states.map((s) => {
    const t = Date.parse(s.last_updated) / 1000;
    if (!s.available) return [t, null];
    if (onOff) return [t, s.state === "on" || s.value === true ? 1 : 0];
    const v = typeof s.value === "number" ? s.value : parseFloat(s.value);
    return [t, Number.isFinite(v) ? v : null];
  });
}

// GET /api/history keeps the *oldest* rows of a range up to its limit: page forward, up to a cap.
const PAGE = 10000;
const MAX_POINTS = 50000;

/** Every recorded state of the range, or the first MAX_POINTS of them ({states, truncated}). */
export async function readHistory(ctx, entityId, start, end, pageSize = PAGE) {
  const states = [];
  let from = start;
  for (;;) {
    const page = (await ctx.get(`/api/history/${encodeURIComponent(entityId)}?start=${encodeURIComponent(from)}` +
      `&end=${encodeURIComponent(end)}&limit=${pageSize}`)).states;
    // The next page starts at the last row's time, so the rows at exactly that time usually come
    // again; not always, as that time went through ISO text (microseconds) and back to a float.
    const last = states.length ? states[states.length - 1].last_updated : null;
    let repeat = 0;
    if (last !== null) for (let k = states.length - 1; k >= 0 && states[k].last_updated === last; k--) repeat++;
    let skip = 0;
    while (skip < repeat && skip < page.length && page[skip].last_updated === last) skip++;
    states.push(...page.slice(skip));
    if (page.length < pageSize) return { states, truncated: false };
    if (states.length >= MAX_POINTS || page.length === skip) return { states, truncated: true };
    from = page[page.length - 1].last_updated;
  }
}

export async function render(root, ctx) {
  const charts = [];
  root.append(el("h1", { textContent: "History" }));
  let entities;
  try {
    entities = (await ctx.get("/api/entities")).filter((e) => CHARTED.has(e.capability));
  } catch (err) {
    ctx.showError(err);
    root.append(el("p", { textContent: "The entities could not be read, so there is nothing to chart." }));
    return;
  }
  const chosen = ctx.query.getAll("entity");
  let range;
  try {
    range = rangeOf(ctx.query);
  } catch (err) {
    ctx.showError(err);
    range = rangeOf(new URLSearchParams());
  }

  // The form: which entities, which range.
  const form = el("form", { className: "card history-form" });
  const pick = el("select", { id: "history-entities", multiple: true, size: Math.min(8, Math.max(3, entities.length)) });
  for (const e of entities) {
    const unit = e.unit ? ` (${e.unit})` : "";
    pick.append(el("option", { value: e.entity_id, textContent: `${e.name || e.entity_id} – ${e.entity_id}${unit}`, selected: chosen.includes(e.entity_id) }));
  }
  const period = el("select", { id: "history-range" });
  for (const [value, text] of RANGES) period.append(el("option", { value, textContent: text, selected: value === range.hours }));
  if (!RANGES.some(([v]) => v === range.hours)) period.prepend(el("option", { value: range.hours, textContent: `Last ${range.hours} h`, selected: true }));
  const from = el("input", { id: "history-from", type: "datetime-local", value: localInput(range.start) });
  const to = el("input", { id: "history-to", type: "datetime-local", value: localInput(range.end) });
  const custom = el("div", { className: "history-custom" },
    el("label", { htmlFor: "history-from", textContent: "From" }), from,
    el("label", { htmlFor: "history-to", textContent: "To" }), to);
  custom.hidden = period.value !== "custom";
  period.addEventListener("change", () => { custom.hidden = period.value !== "custom"; });
  form.append(
    el("div", { className: "history-field" }, el("label", { htmlFor: "history-entities", textContent: "Entities (sensors, meters, on/off)" }), pick),
    el("div", { className: "history-field" }, el("label", { htmlFor: "history-range", textContent: "Range" }), period, custom),
    el("button", { type: "submit", textContent: "Show" }),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const option of pick.selectedOptions) q.append("entity", option.value);
    if (period.value === "custom") {
      const start = new Date(from.value), end = new Date(to.value);
      if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) return ctx.showError("From and To: choose both a start and an end.");
      if (end <= start) return ctx.showError("To: must be after From.");
      q.set("start", start.toISOString());
      q.set("end", end.toISOString());
    } else {
      q.set("hours", period.value);
    }
    ctx.navigate(`#/history?${q}`);
  });
  root.append(form);

  const results = el("section", { className: "history-results", ariaLabel: "Charts" });
  root.append(results);
  if (!entities.length) {
    results.append(el("p", { textContent: "This hub has no sensors or meters to chart yet." }));
    return;
  }
  if (!chosen.length) {
    results.append(el("p", { className: "muted", textContent: "Choose one or more entities and a range, then Show." }));
    return;
  }
  const byId = new Map(entities.map((e) => [e.entity_id, e]));
  const unknown = chosen.filter((id) => !byId.has(id));
  if (unknown.length) ctx.showError(`entity: ${unknown.join(", ")} ${unknown.length > 1 ? "are not sensors or meters" : "is not a sensor or meter"} of this hub`);
  const wanted = chosen.filter((id) => byId.has(id)).map((id) => byId.get(id));
  const status = el("p", { className: "muted", role: "status", textContent: "Reading the history…" });
  results.append(status);

  const start = new Date(range.start * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  const end = new Date(range.end * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  let answers;
  try {
    answers = await Promise.all(wanted.map((e) => readHistory(ctx, e.entity_id, start, end)));
  } catch (err) {
    ctx.showError(err);
    status.textContent = "The history could not be read.";
    return;
  }
  status.textContent = `From ${formatTime(range.start)} to ${formatTime(range.end)}.`;

  // Numbers of one unit share a chart (comparable); each on/off entity gets a step chart of its own.
  const groups = new Map();
  const empty = [];
  wanted.forEach((e, i) => {
    const states = answers[i].states;
    if (!states.length) return empty.push(e);
    const onOff = ON_OFF.has(e.capability);
    const key = onOff ? `onoff:${e.entity_id}` : `unit:${e.unit || ""}`;
    if (!groups.has(key)) groups.set(key, []);
    const points = pointsOf(e, states);
    // An on/off state holds until it changes: draw it up to the end of the range (or now).
    const until = Math.min(range.end, Date.now() / 1000);
    if (onOff && points[points.length - 1][0] < until) points.push([until, points[points.length - 1][1], true]);
    groups.get(key).push({
      entity: e, label: e.name || e.entity_id, unit: onOff ? "" : e.unit || "", points,
      step: onOff, labels: onOff ? { 0: "off", 1: "on" } : undefined,
    });
  });
  wanted.forEach((e, i) => {
    if (answers[i].truncated) {
      results.append(el("p", { className: "history-truncated", textContent: `${e.name || e.entity_id}: only the first ${answers[i].states.length} readings of this range are drawn; choose a shorter range to see the rest.` }));
    }
  });
  for (const e of empty) {
    results.append(el("p", { className: "history-empty", textContent: `${e.name || e.entity_id} (${e.entity_id}): no recorded states in this range.` }));
  }
  const live = new Map(); // entity id -> (point) => void, for a range that ends now
  for (const series of groups.values()) {
    const box = el("div", { className: "card history-chart" });
    const shown = el("p", { className: "muted chart-range" });
    results.append(box);
    const chart = await timeChart(box, {
      series,
      title: series.map((s) => s.label).join(", ") + (series[0].unit ? ` (${series[0].unit})` : ""),
      onRange: (min, max) => { if (min != null && max != null) shown.textContent = `Shown: ${formatTime(min)} – ${formatTime(max)}`; },
    });
    box.querySelector("figure").after(shown);
    shown.textContent ||= `Shown: ${formatTime(chart.plot.scales.x.min)} – ${formatTime(chart.plot.scales.x.max)}`;
    charts.push(chart);
    series.forEach((s, index) => live.set(s.entity.entity_id, (point) => chart.append(index, point)));
  }
  // "Last N hours" goes on growing with the states the WebSocket brings (never polled).
  let unsubscribe = null;
  if (range.hours !== "custom" && live.size && ctx.ws) {
    unsubscribe = ctx.ws.subscribe({ type: "subscribe_states", entity_ids: [...live.keys()] }, (event) => {
      const state = event.data && event.data.new_state;
      const add = state && live.get(state.entity_id);
      if (add) add(pointsOf(byId.get(state.entity_id), [state])[0]);
    });
  }
  return () => {
    if (unsubscribe) unsubscribe();
    charts.forEach((c) => c.destroy());
  };
}
