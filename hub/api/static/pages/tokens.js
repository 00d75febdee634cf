// API tokens in the dashboard (owner only: GET/POST/DELETE /api/tokens). The tokens section lists
// names and dates and revokes; `offerBrowserToken` is what the sign-in shows after the owner token
// was accepted: make a named token for this browser and switch to it, so the owner token need not
// stay in a browser's storage.

import { api, token } from "../api.js";
import { el, table, when } from "./tablekit.js";

// True when the signed-in token is the owner's (the only one allowed to list tokens).
export async function isOwner() {
  try {
    await api("GET", "/api/tokens", undefined, { signOutOn401: false });
    return true;
  } catch (err) {
    if (err.status === 403) return false;
    throw err;
  }
}

function defaultName() {
  const day = new Date().toISOString().slice(0, 10);
  return `browser-${day}-${Math.random().toString(36).slice(2, 6)}`;
}

// Shown after the owner token was accepted, under `anchor` (the page stays usable): resolves true
// when a token for this browser was made and stored, false when the user keeps the owner token.
export function offerBrowserToken(anchor) {
  return new Promise((resolve) => {
    const done = (made) => { form.remove(); resolve(made); };
    const input = el("input", { id: "browser-token-name", name: "name", required: true, value: defaultName() });
    const error = el("p", { class: "error", role: "alert", id: "browser-token-error" });
    const form = el("form", { class: "card token-offer", id: "token-offer", "aria-labelledby": "browser-token-title" },
      // Not a heading: it stands above the page's own h1, and headings stay in order.
      el("strong", { id: "browser-token-title", text: "Signed in with the owner token" }),
      el("p", { text: "The owner token can make and revoke tokens. Keep it out of browsers: create a token " +
                      "for this browser (revocable on its own, on the Plugins page) and use that instead." }),
      el("label", { for: "browser-token-name", text: "Name of this browser's token" }), " ", input, error,
      el("div", { class: "buttons" },
        el("button", { type: "submit", text: "Create a token for this browser" }), " ",
        el("button", { type: "button", text: "Keep the owner token", onclick: () => done(false) })));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const made = await api("POST", "/api/tokens", { name: input.value.trim() }, { signOutOn401: false });
        token.set(made.token);
        done(true);
      } catch (err) {
        error.textContent = err.message;
      }
    });
    anchor.after(form);
  });
}

// The tokens section of the plugins page: for the owner a list with revoke buttons, for anyone
// else a sentence saying who may manage tokens.
export async function renderTokens(section, ctx) {
  section.replaceChildren(el("h2", { text: "API tokens" }));
  let rows;
  try {
    rows = await ctx.get("/api/tokens");
  } catch (err) {
    if (err.status !== 403) return ctx.showError(err);
    section.append(el("p", { class: "muted", text: "Only the owner token lists and revokes tokens; this browser " +
      "uses another one (`hub token list` on the hub shows them all)." }));
    return;
  }
  const body = rows.map((t) => [
    el("strong", { text: t.name }), when(t.created_at), when(t.last_used),
    t.owner ? el("span", { class: "muted", text: "the owner token" })
      : el("button", { type: "button", text: "Revoke", "aria-label": `Revoke token ${t.name}`, onclick: async () => {
          if (!confirm(`Revoke the token "${t.name}"? Whatever uses it is refused from now on.`)) return;
          try {
            await ctx.api("DELETE", `/api/tokens/${encodeURIComponent(t.name)}`);
            await renderTokens(section, ctx);
          } catch (err) { ctx.showError(err); }
        } }),
  ]);
  section.append(table("Tokens (names and dates; a token is shown only when it is made)",
                       ["Name", "Created", "Last used", ""], body));
}
