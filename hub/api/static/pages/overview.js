// (Being built: the overview page.)
export async function render(root, ctx) {
  const h = document.createElement("h1");
  h.textContent = "overview";
  root.append(h);
}
