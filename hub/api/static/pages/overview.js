// The overview: every entity, grouped by device, live over the WebSocket, with the controls its
// capability needs. States are shown only as the hub confirms them (get_states, then its
// state_changed events), batched per animation frame so 1,000 changes a second keep up.

import { StateView, callOver, el, entityCard, liveStates } from "../controls.js";

export async function render(root, ctx) {
  root.append(el("h1", { textContent: "Overview" }));
  const status = el("p", { class: "muted", textContent: "Loading devices…" });
  root.append(status);
  let devices, entities;
  try {
    [devices, entities] = await Promise.all([ctx.get("/api/devices"), ctx.get("/api/entities")]);
  } catch (err) {
    status.textContent = "The devices could not be loaded.";
    ctx.showError(err);
    return undefined;
  }
  const call = callOver(ctx.ws);
  const cards = new Map();
  const byDevice = new Map();
  for (const e of entities) {
    if (!byDevice.has(e.device_id)) byDevice.set(e.device_id, []);
    byDevice.get(e.device_id).push(e);
  }
  const known = new Map(devices.map((d) => [d.id, d]));
  const sections = [];
  const ids = [...new Set([...devices.map((d) => d.id), ...byDevice.keys()])];
  for (const id of ids) {
    const list = byDevice.get(id) || [];
    if (!list.length) continue;
    const device = known.get(id) || { id, name: id };
    const headingId = `dev-${sections.length}`;
    const link = el("a", { href: `#/device/${encodeURIComponent(id)}`, textContent: device.name || id });
    const meta = [device.manufacturer, device.model].filter(Boolean).join(" ");
    const ul = el("ul", { class: "entities" });
    for (const e of list) {
      const card = entityCard(e, call);
      cards.set(e.entity_id, card);
      ul.append(card.element);
    }
    const section = el("section", { class: "card device" },
      el("h2", { id: headingId }, link), el("p", { class: "muted", textContent: meta }), ul);
    section.setAttribute("aria-labelledby", headingId);
    sections.push(section);
  }
  status.textContent = `${entities.length} entities on ${sections.length} devices, grouped by device.`;
  const grid = el("div", { class: "devices" }, ...sections);
  root.append(grid);
  const view = new StateView(cards);
  // For the benchmark and tests: the newest last_updated shown per entity, readable from outside.
  view.onFlush = (batch) => {
    window.ruffhubShown = (window.ruffhubShown || 0) + batch.size;
    let newest = "";
    for (const s of batch.values()) if (s.last_updated > newest) newest = s.last_updated;
    window.ruffhubNewestShown = newest;
  };
  try {
    return await liveStates(ctx.ws, view);
  } catch (err) {
    ctx.showError(err);
    return () => view.stop();
  }
}
