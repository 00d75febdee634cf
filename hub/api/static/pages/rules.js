// (Being built: the rules page.)
export async function render(root, ctx) {
  const h = document.createElement("h1");
  h.textContent = "rules";
  root.append(h);
}
