// (Being built: the market page.)
export async function render(root, ctx) {
  const h = document.createElement("h1");
  h.textContent = "market";
  root.append(h);
}
