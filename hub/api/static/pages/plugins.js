// The plugins page: every plugin's status, source, error, restarts and stalls (GET /api/plugins),
// refreshed on each `plugin_status` event over the WebSocket. Problems stand out: a failed or
// stalled plugin is marked in words and colour, and counted at the top.

import { el, table, when } from "./tablekit.js";

// Statuses that are not a problem by themselves (hub/runtime.py); anything else (failed,
// import_failed, ...) or an error is.
const FINE = new Set(["running", "setting_up", "not_configured", "loaded", "stopped"]);

function problem(p) {
  return !FINE.has(p.status) || Boolean(p.error);
}

function view(plugins) {
  const bad = plugins.filter(problem);
  const summary = el("p", { id: "plugins-summary", role: "status" },
    bad.length ? `${bad.length} of ${plugins.length} plugins need attention: ${bad.map((p) => p.name).join(", ")}.`
               : `No plugin reports a problem (${plugins.length} installed).`);
  summary.classList.toggle("error", bad.length > 0);
  // Problems first, so they are seen without scrolling.
  const ordered = [...bad, ...plugins.filter((p) => !problem(p))];
  const rows = ordered.map((p) => ({
    class: problem(p) ? "problem" : undefined,
    cells: [
      el("strong", { text: p.name }),
      el("span", { class: "status", text: problem(p) ? `⚠ ${p.status}` : p.status }),
      p.source || "",
      p.error ? el("span", { class: "error", text: p.error }) : el("span", { class: "muted", text: "none" }),
      String(p.restarts ?? 0),
      p.stalls ? `${p.stalls} (last ${when(p.last_stall)})` : "0",
      p.note || "",
    ],
  }));
  return [summary, table("Plugins, their status and errors", ["Plugin", "Status", "Source", "Error", "Restarts", "Stalls", "Note"], rows)];
}

export async function render(root, ctx) {
  const body = el("section", { class: "card", "aria-labelledby": "plugins-title" });
  root.append(el("h1", { id: "plugins-title", text: "Plugins" }), body,
              el("section", { class: "card", id: "tokens-section" }));
  let stale = false;
  async function refresh() {
    try {
      body.replaceChildren(...view(await ctx.get("/api/plugins")));
      if (stale) { ctx.clearError(); stale = false; }
    } catch (err) {
      stale = true;
      ctx.showError(err);
    }
  }
  await refresh();
  const { renderTokens } = await import("./tokens.js");
  await renderTokens(root.querySelector("#tokens-section"), ctx);
  return ctx.ws ? ctx.ws.subscribe({ type: "subscribe_events", event_type: "plugin_status" }, refresh) : undefined;
}
