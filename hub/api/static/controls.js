// One entity's card: its name, its state as the hub last confirmed it, and the controls its
// capability needs. A control sends a command and shows nothing new until the hub's own state event
// arrives (never optimistic); a refusal is said in words beside the entity. Lock codes are read from
// their field at the moment of the call and the field is emptied: never kept, never logged.

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

let serial = 0;
const uid = (prefix) => `${prefix}-${++serial}`;

function labelled(text, input) {
  input.id = input.id || uid("c");
  return el("span", { class: "ctl" }, el("label", { htmlFor: input.id }, text), input);
}

function fmtValue(state, entity) {
  if (!state || state.available === false || state.state === "unavailable") return "unavailable";
  if (entity.capability === "button") {
    return typeof state.value === "number" ? `pressed ${new Date(state.value * 1000).toLocaleString()}` : "never pressed";
  }
  const unit = (state.attributes && state.attributes.unit) || entity.unit;
  const shown = typeof state.value === "number" ? String(state.value) : String(state.state);
  return unit && typeof state.value === "number" ? `${shown} ${unit}` : shown;
}

function detail(state, capability) {
  const a = (state && state.attributes) || {};
  const parts = [];
  if (capability === "light") {
    if (a.brightness != null) parts.push(`brightness ${a.brightness}`);
    if (a.color_temp_kelvin != null) parts.push(`${a.color_temp_kelvin} K`);
    if (Array.isArray(a.rgb_color)) parts.push(`rgb ${a.rgb_color.join(", ")}`);
  } else if (capability === "climate") {
    if (a.current_temperature != null) parts.push(`now ${a.current_temperature}`);
    if (a.target_temperature != null) parts.push(`target ${a.target_temperature}`);
    if (a.hvac_action) parts.push(a.hvac_action);
  } else if (capability === "cover" && a.position != null) {
    parts.push(`position ${a.position}`);
  }
  return parts.join(" · ");
}

const HVAC = ["off", "heat", "cool", "heat_cool", "auto", "dry", "fan_only"];

// Build the card of one entity. `call(entityId, command, args)` returns a promise (the hub's answer).
export function entityCard(entity, call) {
  const value = el("span", { class: "value" });
  const extra = el("span", { class: "detail muted" });
  const error = el("p", { class: "error", role: "alert" });
  const controls = el("div", { class: "controls" });
  const card = el("li", { class: "entity" },
    el("span", { class: "name" }, entity.name || entity.entity_id),
    value, extra, controls, error);
  card.dataset.entityId = entity.entity_id;
  const name = entity.name || entity.entity_id;
  let current = null;
  const inputs = [];
  const add = (...nodes) => { for (const n of nodes) { controls.append(n); } };

  async function send(command, args, button) {
    error.textContent = "";
    if (button) button.disabled = true;
    try {
      await call(entity.entity_id, command, args);
    } catch (err) {
      error.textContent = `${name}: ${command} refused: ${err.message}`;
    } finally {
      if (button) button.disabled = isUnavailable();
    }
  }
  const isUnavailable = () => !current || current.available === false || current.state === "unavailable";
  const button = (text, onClick, label) => {
    const b = el("button", { type: "button", textContent: text });
    if (label) b.setAttribute("aria-label", label);
    b.addEventListener("click", () => onClick(b));
    inputs.push(b);
    return b;
  };
  const input = (props) => { const i = el("input", props); inputs.push(i); return i; };
  const select = (options) => {
    const s = el("select");
    for (const o of options) s.append(el("option", { value: o, textContent: o }));
    inputs.push(s);
    return s;
  };
  // A value control (number, slider, select) applied with its own Set button or Enter.
  const setter = (text, control, apply) => {
    const b = button("Set", () => apply(b), `Set ${text.toLowerCase()} of ${name}`);
    control.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); apply(b); } });
    return el("span", { class: "ctl" }, labelled(text, control), b);
  };
  let sync = () => {};

  switch (entity.capability) {
    case "switch": {
      add(button("Toggle", (b) => send("toggle", undefined, b), `Toggle ${name}`));
      break;
    }
    case "light": {
      const bright = input({ type: "range", min: 0, max: 255, step: 1 });
      const kelvin = input({ type: "number", min: 1000, max: 12000, step: 100 });
      const colour = input({ type: "color" });
      add(button("On", (b) => send("turn_on", {}, b), `Turn ${name} on`),
          button("Off", (b) => send("turn_off", {}, b), `Turn ${name} off`),
          setter("Brightness", bright, (b) => send("turn_on", { brightness: Number(bright.value) }, b)),
          setter("Colour temperature (K)", kelvin, (b) => send("turn_on", { color_temp_kelvin: Number(kelvin.value) }, b)),
          setter("Colour", colour, (b) => {
            const hex = colour.value.slice(1);
            send("turn_on", { rgb_color: [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16)) }, b);
          }));
      sync = (s) => {
        const a = s.attributes || {};
        if (a.brightness != null && document.activeElement !== bright) bright.value = a.brightness;
        if (a.color_temp_kelvin != null && document.activeElement !== kelvin) kelvin.value = a.color_temp_kelvin;
        if (Array.isArray(a.rgb_color) && document.activeElement !== colour) {
          colour.value = `#${a.rgb_color.map((c) => Number(c).toString(16).padStart(2, "0")).join("")}`;
        }
      };
      break;
    }
    case "climate": {
      const target = input({ type: "number", step: 0.5 });
      const mode = select(HVAC);
      add(setter("Set-point", target, (b) => send("set_temperature", { temperature: Number(target.value) }, b)),
          setter("Mode", mode, (b) => send("set_hvac_mode", { hvac_mode: mode.value }, b)));
      sync = (s) => {
        const a = s.attributes || {};
        if (a.min_temp != null) target.min = a.min_temp;
        if (a.max_temp != null) target.max = a.max_temp;
        if (a.target_temperature != null && document.activeElement !== target) target.value = a.target_temperature;
        const modes = Array.isArray(a.hvac_modes) && a.hvac_modes.length ? a.hvac_modes : HVAC;
        if (modes.join() !== [...mode.options].map((o) => o.value).join()) {
          mode.replaceChildren(...modes.map((m) => el("option", { value: m, textContent: m })));
        }
        if (document.activeElement !== mode && modes.includes(s.state)) mode.value = s.state;
      };
      break;
    }
    case "lock": {
      const code = input({ type: "password", autocomplete: "off", maxLength: 32 });
      const withCode = (command) => (b) => {
        const args = code.value ? { code: code.value } : {};
        code.value = ""; // the code is used once and not kept
        send(command, args, b);
      };
      add(labelled("Code", code),
          button("Lock", withCode("lock"), `Lock ${name}`),
          button("Unlock", withCode("unlock"), `Unlock ${name}`));
      break;
    }
    case "cover": {
      const pos = input({ type: "number", min: 0, max: 100, step: 1 });
      add(button("Open", (b) => send("open", {}, b), `Open ${name}`),
          button("Close", (b) => send("close", {}, b), `Close ${name}`),
          button("Stop", (b) => send("stop", {}, b), `Stop ${name}`),
          setter("Position", pos, (b) => send("set_position", { position: Number(pos.value) }, b)));
      sync = (s) => { const p = s.attributes && s.attributes.position; if (p != null && document.activeElement !== pos) pos.value = p; };
      break;
    }
    case "button": {
      add(button("Press", (b) => send("press", {}, b), `Press ${name}`));
      break;
    }
    case "number": {
      const num = input({ type: "number" });
      add(setter("Value", num, (b) => send("set_value", { value: Number(num.value) }, b)));
      sync = (s) => {
        const a = s.attributes || {};
        for (const k of ["min", "max", "step"]) if (a[k] != null) num[k] = a[k];
        if (typeof s.value === "number" && document.activeElement !== num) num.value = s.value;
      };
      break;
    }
    case "select": {
      const sel = select([]);
      let known = "";
      add(setter("Option", sel, (b) => send("select_option", { option: sel.value }, b)));
      sync = (s) => {
        const options = (s.attributes && s.attributes.options) || [];
        if (options.join("\n") !== known) {
          known = options.join("\n");
          sel.replaceChildren(...options.map((o) => el("option", { value: o, textContent: o })));
        }
        if (document.activeElement !== sel) sel.value = s.state;
      };
      break;
    }
    default: break; // sensor, meter, binary_sensor: read-only
  }
  for (const i of inputs) i.disabled = true;

  return {
    element: card,
    // Show a state the hub confirmed. Called at most once per animation frame per entity.
    update(state) {
      current = state;
      const off = isUnavailable();
      value.textContent = fmtValue(state, entity);
      card.classList.toggle("unavailable", off);
      extra.textContent = off ? "" : detail(state, entity.capability);
      for (const i of inputs) i.disabled = off;
      if (!off) sync(state);
    },
  };
}

// Shows states as they arrive, at most once per animation frame, only the newest per entity:
// 1,000 changes a second cost one DOM write per changed entity per frame, not one per change.
export class StateView {
  constructor(cards) {
    this.cards = cards;        // entity_id -> card
    this.pending = new Map();  // entity_id -> newest state not yet shown
    this.shown = new Map();    // entity_id -> last_updated shown
    this.frame = 0;
  }

  offer(state) {
    if (!state) return; // a card may be made for it before the next frame (the overview's first load)
    const queued = this.pending.get(state.entity_id);
    const seen = queued ? queued.last_updated : this.shown.get(state.entity_id);
    if (seen && state.last_updated < seen) return; // an older state (get_states raced an event)
    this.pending.set(state.entity_id, state);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    const batch = this.pending;
    this.pending = new Map();
    for (const [id, state] of batch) {
      const card = this.cards.get(id);
      if (!card) continue; // an entity the page does not show
      card.update(state);
      this.shown.set(id, state.last_updated);
    }
    if (this.onFlush) this.onFlush(batch);
  }

  stop() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
  }
}

// The socket's requests fail before it is connected: wait for it.
export function connected(ws) {
  if (ws.ready) return Promise.resolve();
  return new Promise((resolve) => {
    const on = (event) => { if (event.detail === "connected") { ws.removeEventListener("status", on); resolve(); } };
    ws.addEventListener("status", on);
  });
}

// Subscribe first, then read every state: nothing changes unseen between the two.
// `first(states)`, if given, sees the first answer before it is shown (to make the cards).
export async function liveStates(ws, view, entityIds, first) {
  const message = entityIds ? { type: "subscribe_states", entity_ids: entityIds } : { type: "subscribe_states" };
  const unsubscribe = ws.subscribe(message, (event) => view.offer(event.data && event.data.new_state));
  const load = async () => {
    await connected(ws);
    const states = await ws.request({ type: "get_states" });
    if (first) { first(states); first = null; }
    for (const s of states) view.offer(s);
  };
  const onStatus = (event) => { if (event.detail === "connected") load().catch(() => {}); };
  ws.addEventListener("status", onStatus); // after a reconnection, catch up on what was missed
  await load();
  return () => { ws.removeEventListener("status", onStatus); unsubscribe(); view.stop(); };
}

export const callOver = (ws) => async (entityId, command, args) => {
  await connected(ws);
  return ws.request({ type: "call", entity_id: entityId, command, args: args || {} });
};

export { el };
