// (Being built: the plugins page.)
export async function render(root, ctx) {
  const h = document.createElement("h1");
  h.textContent = "plugins";
  root.append(h);
}
