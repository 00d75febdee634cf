// (Being built: the chain page.)
export async function render(root, ctx) {
  const h = document.createElement("h1");
  h.textContent = "chain";
  root.append(h);
}
