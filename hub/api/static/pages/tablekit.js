// Small DOM helpers of the plugins, chain and market pages: elements from text (never innerHTML
// with data: names come from plugins, devices and the chain) and a table with a caption.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// headers: column names; rows: arrays of cells (text or nodes), or {cells, class} for a marked row.
export function table(caption, headers, rows) {
  return el("div", { class: "table-wrap" },
    el("table", {},
      el("caption", { class: "muted", text: caption }),
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows.map((row) => {
        const cells = Array.isArray(row) ? row : row.cells;
        return el("tr", { class: Array.isArray(row) ? undefined : row.class }, cells.map((c) => el("td", {}, c ?? "")));
      }))));
}

export function when(iso) {
  if (!iso) return "never";
  const date = typeof iso === "number" ? new Date(iso > 1e11 ? iso : iso * 1000) : new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

// Base units (integers, 6 decimals) as RUFF, without floating point.
export function ruff(units) {
  if (units === null || units === undefined) return "—";
  const n = BigInt(units);
  const sign = n < 0n ? "-" : "";
  const abs = n < 0n ? -n : n;
  const frac = (abs % 1000000n).toString().padStart(6, "0").replace(/0+$/, "");
  return `${sign}${abs / 1000000n}${frac ? "." + frac : ""} RUFF`;
}
