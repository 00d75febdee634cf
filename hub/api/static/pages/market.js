// The market page: this hub's offers and contracts (GET /api/market/contracts), its renters (the
// calls, GET /api/market/calls), what each device earned (GET /api/market/earnings, with a chart)
// and the reviews of each contract from the chain. Market records are not entity states: the page
// reads them again every few seconds while it is open. Without a market it says why, in words.

import { el, ruff, table, when } from "./tablekit.js";

const EVERY_MS = 5000;

function short(hex) {
  return hex && hex.length > 20 ? `${hex.slice(0, 10)}…${hex.slice(-6)}` : hex || "";
}

// Terms as the chain keeps them (base units, ms) in words a person reads.
function terms(t) {
  if (!t || typeof t !== "object") return String(t ?? "");
  const money = new Set(["price", "rate", "deposit"]);
  const span = new Set(["window", "max_duration", "interval"]);
  return Object.entries(t).filter(([, v]) => v !== null && v !== 0 && v !== "")
    .map(([k, v]) => `${k.replace("_", " ")} ${money.has(k) && typeof v === "number" ? ruff(v)
                                           : span.has(k) && typeof v === "number" ? `${v / 1000} s` : v}`).join(", ");
}

function reviewText(r) {
  if (!r) return el("span", { class: "muted", text: "not on the chain yet" });
  if (!r.returned) return el("span", { class: "muted", text: "no returned calls yet" });
  return `${r.negative} negative of ${r.returned} returned calls`;
}

function notRunning(root, plugin) {
  root.append(el("section", { class: "card", id: "no-market" },
    el("p", { text: plugin && plugin.error ? `The ${plugin.name} plugin failed: ${plugin.error}`
                                            : "The market is not running on this hub: it needs a chain." }),
    el("p", { text: "Add `chain:` (the hub's own node) and `market:` to configuration.yaml and restart the hub; then bind a " +
                    "device (`hub device keygen`, `hub device bind`) and offer it with `hub market offer`. The README's " +
                    "Market section walks through the whole flow." })));
}

// rows: [{time (s or ms), device, amount (base units)}]: RUFF earned so far per device, as step
// series for chart.js, from nothing a minute before the first payment to now (one payment is a
// step, not a dot). Floats for drawing only; the table above shows the exact amounts.
function earningsSeries(rows) {
  const seconds = (t) => Math.floor(t > 1e11 ? t / 1000 : t);
  const sorted = [...rows].sort((a, b) => seconds(a.time) - seconds(b.time));
  const start = seconds(sorted[0].time) - 60;
  const now = Math.max(Math.floor(Date.now() / 1000), seconds(sorted[sorted.length - 1].time));
  return [...new Set(sorted.map((r) => r.device))].sort().map((device) => {
    let total = 0;
    const points = [[start, 0]];
    for (const r of sorted) {
      if (r.device !== device) continue;
      total += Number(r.amount) / 1e6;
      points.push([seconds(r.time), total]);
    }
    points.push([now, total, true]); // held to now: drawn, not a reading
    return { label: device, unit: "RUFF", points, step: true };
  });
}

export async function render(root, ctx) {
  root.append(el("h1", { text: "Market" }));
  const plugins = await ctx.get("/api/plugins").catch((err) => { ctx.showError(err); return []; });
  // The market plugin runs without a chain too (with nothing to sell): the chain decides.
  const plugin = plugins.find((p) => p.name === "market");
  const chain = plugins.find((p) => p.name === "chain");
  if (!plugin || plugin.status !== "running") return notRunning(root, plugin);
  if (!chain || chain.status !== "running") return notRunning(root, chain);

  const section = (id, title) => el("section", { class: "card", id, "aria-labelledby": `${id}-title` },
                                    el("h2", { id: `${id}-title`, text: title }), el("div", { class: "body" }));
  const offers = section("market-offers", "Offers and contracts");
  const renters = section("market-renters", "Renters");
  const earnings = section("market-earnings", "Earnings");
  root.append(offers, renters, earnings);
  const chartBox = el("div", { class: "earnings-chart", id: "earnings-chart", role: "img",
                               "aria-label": "Earnings per device over time" });
  let seen = "";
  let dropChart = null;
  let failing = false;

  async function reviews(contracts) {
    const found = {};
    await Promise.all(contracts.map(async (c) => {
      try { found[c.id] = await ctx.get(`/api/plugins/chain/contracts/${c.id}`); } catch { found[c.id] = null; }
    }));
    return found;
  }

  async function refresh() {
    try {
      const [contracts, calls, paid] = await Promise.all([
        ctx.get("/api/market/contracts"), ctx.get("/api/market/calls"), ctx.get("/api/market/earnings")]);
      const onChain = await reviews(contracts);
      const key = JSON.stringify([contracts, calls, paid, onChain]);
      if (failing) { ctx.clearError(); failing = false; }
      if (key === seen) return;
      seen = key;
      offers.querySelector(".body").replaceChildren(contracts.length
        ? table("This hub's contracts", ["Device", "Commands", "Terms", "Status", "Calls (open)", "Earned", "Reviews"],
            contracts.map((c) => [el("strong", { text: c.device_id }), c.commands.join(", "), terms(c.terms),
                                  c.status, `${c.calls} (${c.open_calls})`, ruff(c.earned),
                                  reviewText(onChain[c.id] && onChain[c.id].reviews)]))
        : el("p", { class: "muted", text: "No offers yet: `hub market offer DEVICE --commands ... --price ...` makes one." }));
      renters.querySelector(".body").replaceChildren(calls.length
        ? table("Calls of this hub's contracts, newest first", ["Device", "Renter", "Kind", "Deposit", "Started", "State", "Used"],
            [...calls].sort((a, b) => b.start - a.start).map((c) => ({
              class: ["refunded", "failed"].includes(c.state) ? "problem" : undefined,
              cells: [c.device_id, el("span", { class: "hash", title: c.renter, text: short(c.renter) }), c.kind,
                      ruff(c.deposit), when(c.start), c.state, ruff(c.used)] })))
        : el("p", { class: "muted", text: "Nobody has rented a device yet." }));
      const perDevice = {};
      for (const r of paid) perDevice[r.device] = (perDevice[r.device] || 0n) + BigInt(r.amount);
      const body = earnings.querySelector(".body");
      if (dropChart) { dropChart(); dropChart = null; }
      chartBox.replaceChildren();
      body.replaceChildren(paid.length
        ? table("Earned per device", ["Device", "Earned", "Payments"],
                Object.keys(perDevice).sort().map((d) => [d, ruff(perDevice[d]), String(paid.filter((r) => r.device === d).length)]))
        : el("p", { class: "muted", text: "Nothing earned yet: a payment shows once its block is final." }));
      if (paid.length) {
        body.append(chartBox);
        const { timeChart } = await import("../chart.js");
        const chart = await timeChart(chartBox, { title: "Earned so far (RUFF)", series: earningsSeries(paid), height: 240 });
        dropChart = () => chart.destroy();
      }
    } catch (err) {
      failing = true;
      ctx.showError(err);
    }
  }
  await refresh();
  const timer = setInterval(refresh, EVERY_MS);
  return () => { clearInterval(timer); if (dropChart) dropChart(); };
}
