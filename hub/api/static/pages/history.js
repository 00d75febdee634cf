// (Being built: the history page.)
export async function render(root, ctx) {
  const h = document.createElement("h1");
  h.textContent = "history";
  root.append(h);
}
