// (Being built: the device page.)
export async function render(root, ctx) {
  const h = document.createElement("h1");
  h.textContent = "device";
  root.append(h);
}
