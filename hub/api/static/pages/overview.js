// The overview: every entity, grouped by device, live over the WebSocket, with the controls its
// capability needs. States are shown only as the hub confirms them (get_states, then its
// state_changed events), batched per animation frame so 1,000 changes a second keep up.
// What it loads is small: the devices (with their entity ids) and the states, once, over the
// socket; an entity's capability is its id's domain ("light.kitchen"), its name the state's
// friendly_name (GET /api/entities, with every command and state, would be half a megabyte for
// 1,000 entities).

import { StateView, callOver, el, entityCard, liveStates } from "../controls.js";

function grouped(devices, states, call, cards) {
  const byId = new Map(states.map((s) => [s.entity_id, s]));
  const listed = new Set();
  const sections = [];
  const section = (device, ids) => {
    const headingId = `dev-${sections.length}`;
    const link = el("a", { href: `#/device/${encodeURIComponent(device.id)}`, textContent: device.name || device.id });
    const meta = [device.manufacturer, device.model].filter(Boolean).join(" ");
    const ul = el("ul", { class: "entities" });
    for (const id of ids) {
      const s = byId.get(id);
      const attrs = (s && s.attributes) || {};
      const card = entityCard({ entity_id: id, capability: id.split(".")[0], name: attrs.friendly_name || id, unit: attrs.unit }, call);
      cards.set(id, card);
      ul.append(card.element);
      listed.add(id);
    }
    const node = el("section", { class: "card device" },
      device.id ? el("h2", { id: headingId }, link) : el("h2", { id: headingId, textContent: device.name }),
      el("p", { class: "muted", textContent: meta }), ul);
    node.setAttribute("aria-labelledby", headingId);
    sections.push(node);
  };
  for (const d of devices) if (d.entities && d.entities.length) section(d, d.entities);
  const rest = states.map((s) => s.entity_id).filter((id) => !listed.has(id));
  if (rest.length) section({ name: "Without a device" }, rest);
  return sections;
}

export async function render(root, ctx) {
  root.append(el("h1", { textContent: "Overview" }));
  const status = el("p", { class: "muted", textContent: "Loading devices…" });
  root.append(status);
  let devices;
  try {
    devices = await ctx.get("/api/devices");
  } catch (err) {
    status.textContent = "The devices could not be loaded.";
    ctx.showError(err);
    return undefined;
  }
  const call = callOver(ctx.ws);
  const cards = new Map();
  const grid = el("div", { class: "devices" });
  root.append(grid);
  const view = new StateView(cards);
  // For the benchmark: how many states were shown, and the newest one's time.
  view.onFlush = (batch) => {
    window.ruffhubShown = (window.ruffhubShown || 0) + batch.size;
    let newest = "";
    for (const s of batch.values()) if (s.last_updated > newest) newest = s.last_updated;
    window.ruffhubNewestShown = newest;
  };
  const first = (states) => {
    const sections = grouped(devices, states, call, cards);
    grid.replaceChildren(...sections);
    status.textContent = `${cards.size} entities on ${sections.length} devices, grouped by device (areas: not yet in the hub).`;
  };
  try {
    return await liveStates(ctx.ws, view, undefined, first);
  } catch (err) {
    ctx.showError(err);
    return () => view.stop();
  }
}
