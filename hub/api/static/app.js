// The dashboard's shell: sign-in, the page router (#/page/...), the connection line and the error
// banner. Each page is a module in pages/ exporting `render(root, ctx)`, which may return a
// function the router calls when the user leaves the page (to unsubscribe, stop timers).

import { ApiError, api, get, post, token } from "./api.js";
import { HubSocket } from "./ws.js";

const ROUTES = {
  "": "overview", device: "device", history: "history", rules: "rules",
  plugins: "plugins", chain: "chain", market: "market",
};

const main = document.getElementById("main");
const banner = document.getElementById("banner");
const conn = document.getElementById("conn");
let socket = null;
let leave = null;
let generation = 0;

export function showError(err) {
  const text = err instanceof ApiError || err instanceof Error ? err.message : String(err);
  banner.textContent = text;
  banner.hidden = false;
}

export function clearError() {
  banner.hidden = true;
  banner.textContent = "";
}

function signedIn(yes) {
  document.getElementById("nav").hidden = !yes;
  document.getElementById("signout").hidden = !yes;
  conn.hidden = !yes;
}

function signInPage(message) {
  signedIn(false);
  main.replaceChildren();
  const form = document.createElement("form");
  form.className = "signin card";
  form.innerHTML = `
    <h1>Sign in</h1>
    <p>Paste an API token: the owner token is in the hub's data directory (<code>owner-token</code>),
       or make one with <code>hub token create NAME</code>.</p>
    <label for="token">API token</label>
    <input id="token" name="token" type="password" autocomplete="current-password" required>
    <p class="error" role="alert" id="signin-error"></p>
    <button type="submit">Sign in</button>`;
  form.querySelector("#signin-error").textContent = message || "";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = form.token.value.trim();
    token.set(value);
    try {
      await api("GET", "/api/states", undefined, { signOutOn401: false });
    } catch (err) {
      token.clear();
      form.querySelector("#signin-error").textContent =
        err.status === 401 ? "That token was refused: it is wrong or has been revoked." : err.message;
      return;
    }
    start();
    // The owner token (it alone may list tokens) is offered a token of this browser's own.
    const { isOwner, offerBrowserToken } = await import("./pages/tokens.js");
    if (await isOwner().catch(() => false) && await offerBrowserToken(banner)) {
      socket.close();
      start(); // the same page, now with the browser's token (the WebSocket authenticates again)
    }
  });
  main.append(form);
  form.token.focus();
}

function signOut(message) {
  token.clear();
  document.getElementById("token-offer")?.remove();
  if (socket) socket.close();
  socket = null;
  if (leave) leave();
  leave = null;
  clearError();
  location.hash = "#/";
  signInPage(message);
}

async function route() {
  if (!token.get()) return signInPage();
  const [, page = "", ...rest] = location.hash.replace(/\?.*$/, "").split("/");
  const query = new URLSearchParams(location.hash.includes("?") ? location.hash.slice(location.hash.indexOf("?") + 1) : "");
  const name = ROUTES[page];
  if (leave) { try { leave(); } catch (err) { console.error(err); } }
  leave = null;
  clearError();
  const mine = ++generation;
  main.replaceChildren();
  for (const link of document.querySelectorAll("#nav a")) {
    link.toggleAttribute("aria-current", link.getAttribute("href") === `#/${page}`);
  }
  if (!name) {
    main.textContent = `No page "${page}".`;
    return;
  }
  try {
    const module = await import(`./pages/${name}.js`);
    if (mine !== generation) return; // the user went elsewhere meanwhile
    const ctx = { api, get, post, ws: socket, params: rest.map(decodeURIComponent), query, showError, clearError,
                  navigate: (hash) => { location.hash = hash; } };
    const cleanup = await module.render(main, ctx);
    if (mine === generation) leave = typeof cleanup === "function" ? cleanup : null;
    else if (typeof cleanup === "function") cleanup();
  } catch (err) {
    console.error(err);
    showError(err);
  }
}

function start() {
  signedIn(true);
  socket = new HubSocket();
  socket.addEventListener("status", (event) => {
    const up = event.detail === "connected";
    conn.textContent = up ? "Live" : "Connection lost: reconnecting…";
    conn.classList.toggle("down", !up);
  });
  route();
}

window.addEventListener("hashchange", () => token.get() && route());
window.addEventListener("ruffhub:unauthorized", () => signOut("Your token was refused (revoked?). Sign in again."));
document.getElementById("signout").addEventListener("click", () => signOut());
token.get() ? start() : signInPage();
