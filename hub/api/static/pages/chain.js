// The chain page: head (height, hash, time), the last irreversible block, this round's producers
// (who produced, who missed) and the hub's own account and balance, from the chain plugin's routes
// (/api/plugins/chain/...). The chain publishes nothing on the hub's bus, so the head is polled every
// few seconds while the page is open. Without a chain the page says so, and how to enable one.

import { el, ruff, table, when } from "./tablekit.js";

const BASE = "/api/plugins/chain";
const EVERY_MS = 2000;

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
}

function noChain(root, plugin) {
  const why = plugin && plugin.error ? `The chain plugin failed: ${plugin.error}` : "No chain is configured on this hub.";
  root.append(el("section", { class: "card", id: "no-chain" },
    el("p", { text: why }),
    el("p", { text: "To run the hub's own chain node, add a line `chain:` to configuration.yaml and restart the hub: " +
                    "on its first start it writes <data>/chain/genesis.json, a producer key and an owner key holding " +
                    "1,000,000 RUFF, then produces a block every 9 s. To follow another node instead: " +
                    "`chain: {rpc: http://host:port, genesis: genesis.json}`. " +
                    "The README's Chain section has the details." })));
}

export async function render(root, ctx) {
  root.append(el("h1", { text: "Chain" }));
  const plugins = await ctx.get("/api/plugins").catch((err) => { ctx.showError(err); return []; });
  const plugin = plugins.find((p) => p.name === "chain");
  if (!plugin || plugin.status !== "running") return noChain(root, plugin);

  const headCard = el("section", { class: "card", "aria-labelledby": "head-title" }, el("h2", { id: "head-title", text: "Head" }));
  const accountCard = el("section", { class: "card", "aria-labelledby": "account-title" }, el("h2", { id: "account-title", text: "This hub's account" }));
  const producersCard = el("section", { class: "card", "aria-labelledby": "producers-title" }, el("h2", { id: "producers-title", text: "Producers of this round" }));
  root.append(headCard, accountCard, producersCard);
  const headBody = el("div", { id: "chain-head" });
  const accountBody = el("div", { id: "chain-account" });
  const producersBody = el("div", { id: "chain-producers" });
  headCard.append(headBody);
  accountCard.append(accountBody);
  producersCard.append(producersBody);

  let failing = false;
  let lastHeight = null; // what was last drawn: height, final height, connected
  async function refresh() {
    try {
      const head = await ctx.get(`${BASE}/head`);
      const key = `${head.height} ${head.final.height} ${head.connected}`;
      if (key !== lastHeight) {
        const moved = !lastHeight || !lastHeight.startsWith(`${head.height} `);
        lastHeight = key;
        headBody.replaceChildren(facts([
          ["Chain", `${head.chain_id} (${head.mode === "embedded" ? "the hub's own node" : "followed over RPC"})`],
          ["Height", el("span", { id: "head-height", text: String(head.height) })],
          ["Hash", el("span", { class: "hash", text: head.hash })],
          ["Time", when(head.timestamp)],
          ["Last irreversible block", el("span", { id: "lib-height", text: `${head.final.height}` })],
          ["Its hash", el("span", { class: "hash", text: head.final.hash || "—" })],
          ...(head.mempool !== undefined ? [["Waiting transactions", String(head.mempool)]] : []),
          ...(head.rpc ? [["Node", head.connected ? `${head.rpc} (connected)`
                                   : el("span", { class: "error", text: `${head.rpc}: not reachable (${head.last_error || "no answer"})` })]] : []),
        ]));
        if (moved) await Promise.all([account(), producers(head)]);
      }
      if (failing) { ctx.clearError(); failing = false; }
    } catch (err) {
      failing = true;
      ctx.showError(err);
    }
  }
  async function account() {
    try {
      const a = await ctx.get(`${BASE}/account`);
      accountBody.replaceChildren(facts([
        ["Address", el("span", { class: "hash", text: a.address })],
        ["Balance", el("span", { id: "own-balance", text: ruff(a.balance) })],
        ["Transactions sent", String(a.nonce)],
        ["Verified", a.verified ? "yes" : "no (the node's word only)"],
      ]));
    } catch (err) {
      accountBody.replaceChildren(el("p", { class: "muted", text: `The hub's account cannot be read: ${err.message}` }));
    }
  }
  async function producers(head) {
    if (head.mode !== "embedded") {
      producersBody.replaceChildren(el("p", { class: "muted", text: "The round's producers are shown for the hub's own node; `hub chain producers` asks the followed node." }));
      return;
    }
    const s = await ctx.get(`${BASE}/schedule`);
    const rows = s.producers.map((p) => ({
      class: p.missed ? "problem" : undefined,
      cells: [String(p.position + 1), p.name || el("span", { class: "hash", text: p.address }),
              String(p.produced), p.missed ? el("span", { class: "missed", text: String(p.missed) }) : "0",
              p.disqualified ? "disqualified" : p.banned_until ? `banned until ${when(p.banned_until)}` : "ok",
              p.address === s.next_producer ? "next" : ""],
    }));
    producersBody.replaceChildren(
      el("p", { text: `Round ${s.round}; the next slot is at ${when(s.next_slot_time)}.` }),
      table("Producers in this round's order", ["#", "Producer", "Produced", "Missed", "Standing", ""], rows));
  }
  await refresh();
  const timer = setInterval(refresh, EVERY_MS);
  return () => clearInterval(timer);
}
