// One device: its entities with the same controls as the overview, its driver and connection, its
// chain identity (binding and controller), and its command log. The binding label's QR code is not
// shown: both label forms carry a secret (the private key's seed, or the one-time setup code), and
// a dashboard page can be seen by anyone holding any API token; `hub device label` prints it for
// the owner at the hub itself.

import { StateView, callOver, el, entityCard, liveStates } from "../controls.js";

function facts(rows) {
  const dl = el("dl", { class: "facts" });
  for (const [k, v] of rows) {
    if (v === undefined || v === null || v === "") continue;
    dl.append(el("dt", { textContent: k }), el("dd", { textContent: String(v) }));
  }
  return dl;
}

async function commandLog(ctx, deviceId) {
  const section = el("section", { class: "card" }, el("h2", { textContent: "Command log" }));
  let rows;
  try {
    rows = await ctx.get(`/api/commands?device=${encodeURIComponent(deviceId)}&limit=50`);
  } catch (err) {
    section.append(el("p", { class: "muted", textContent: `No command log: ${err.message}` }));
    return section;
  }
  if (!rows.length) {
    section.append(el("p", { class: "muted", textContent: "No commands logged for this device yet." }));
    return section;
  }
  const table = el("table", {}, el("caption", { class: "muted", textContent: "Newest first; \"logged\" until anchored on chain." }),
    el("thead", {}, el("tr", {},
      ...["Time", "Entity", "Command", "Source", "Result", "Anchor"].map((t) => el("th", { scope: "col", textContent: t })))));
  const body = el("tbody");
  for (const r of rows) {
    body.append(el("tr", {},
      el("td", { textContent: typeof r.ts === "number" ? new Date(r.ts * 1000).toLocaleString() : String(r.ts ?? "") }),
      el("td", { textContent: r.entity_id || "" }),
      el("td", { textContent: r.command || "" }),
      el("td", { textContent: r.source || "" }),
      el("td", { textContent: r.ok ? "ok" : `refused: ${r.error || "error"}` }),
      el("td", { textContent: r.status || "" })));
  }
  table.append(body);
  section.append(table);
  return section;
}

export async function render(root, ctx) {
  const deviceId = ctx.params.join("/");
  let device;
  try {
    device = await ctx.get(`/api/devices/${encodeURIComponent(deviceId)}`);
  } catch (err) {
    root.append(el("h1", { textContent: "Device" }), el("p", { textContent: `No device ${deviceId}.` }));
    ctx.showError(err);
    return undefined;
  }
  root.append(el("h1", { textContent: device.name || device.id }),
    el("p", {}, el("a", { href: "#/", textContent: "← Overview" })));
  const identity = device.identity;
  root.append(el("section", { class: "card" }, el("h2", { textContent: "Device" }), facts([
    ["Id", device.id], ["Driver", device.platform], ["Manufacturer", device.manufacturer], ["Model", device.model],
    ["Firmware", device.sw_version], ["Connection", device.connection],
  ])));
  const idRows = identity
    ? [["Public key", identity.public_key], ["Key held by", identity.holds_key ? "the device" : "the hub"],
       ["Binding", identity.controller ? "bound" : "not bound"], ["Controller", identity.controller],
       ["Bound at", identity.bound_at ? new Date(identity.bound_at).toISOString() : null],
       ["Bindings and hand-overs", identity.seq], ["Grants", (identity.grants || []).length]]
    : [];
  const idSection = el("section", { class: "card" }, el("h2", { textContent: "Identity and binding" }));
  if (identity) idSection.append(facts(idRows));
  else idSection.append(el("p", { class: "muted", textContent: "This device has no chain identity on this hub (no identity gate, or not registered)." }));
  idSection.append(el("p", { class: "muted", textContent:
    "The binding label's QR code is not shown here: it carries a secret (the device's key or its setup code). "
    + "The owner prints it at the hub with `hub device label`." }));
  root.append(idSection);

  const call = callOver(ctx.ws);
  const cards = new Map();
  const ul = el("ul", { class: "entities" });
  for (const e of device.entities) {
    const card = entityCard(e, call);
    cards.set(e.entity_id, card);
    ul.append(card.element);
  }
  root.append(el("section", { class: "card" }, el("h2", { textContent: "Entities" }), ul));
  const view = new StateView(cards);
  for (const e of device.entities) if (e.state) view.offer(e.state);
  root.append(await commandLog(ctx, device.id));
  try {
    return await liveStates(ctx.ws, view, device.entities.map((e) => e.entity_id));
  } catch (err) {
    ctx.showError(err);
    return () => view.stop();
  }
}
