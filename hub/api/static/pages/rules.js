// Rules: the list (#/rules) with status, source and problems, enable/disable and run now; one rule
// (#/rules/<id>) with its recent runs step by step and, for a rule made through the API, an editor
// checked by POST /api/rules/check (the validation of `hub rules check`) with each error at its
// line. Rules from files belong to their author: shown read-only with their file and line.

import { formatTime } from "../chart.js";

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const when = (iso) => (iso ? formatTime(Date.parse(iso) / 1000) : "never");
const STATUS = { on: "enabled", off: "disabled", running: "running", error: "has errors" };

/** "/data/automations.yaml:21" -> {file, line}. */
function sourceOf(rule) {
  const m = /^(.*):(\d+)$/.exec(rule.source || "");
  return m ? { file: m[1], line: Number(m[2]) } : { file: rule.source || "", line: null };
}

function sourceText(rule, short = false) {
  if (rule.managed_by === "api") return short ? "made here (automations/api.yaml)" : "made in the dashboard or API (automations/api.yaml)";
  let { file, line } = sourceOf(rule);
  if (short) file = file.split(/[\\/]/).pop();
  return line ? `${file}, line ${line}` : file;
}

/** An issue of the rule's own file, without the file's path the Source column already shows. */
function shortIssue(rule, issue) {
  const { file } = sourceOf(rule);
  return file && issue.startsWith(`${file}:`) ? `line ${issue.slice(file.length + 1)}` : issue;
}

export async function render(root, ctx) {
  const id = ctx.params[0];
  if (id === "new") return editorPage(root, ctx, null);
  if (id) return rulePage(root, ctx, id);
  return listPage(root, ctx);
}

// ---- the list -------------------------------------------------------------------------------

async function listPage(root, ctx) {
  root.append(el("h1", { textContent: "Rules" }));
  const bar = el("p", {}, el("a", { href: "#/rules/new", className: "button", textContent: "New rule" }));
  const body = el("div");
  root.append(bar, body);

  async function load() {
    let data;
    try {
      data = await ctx.get("/api/rules");
    } catch (err) {
      ctx.showError(err);
      body.replaceChildren(el("p", { textContent: err.status === 409 ? "The rule engine is not running on this hub." : "The rules could not be read." }));
      return;
    }
    body.replaceChildren();
    if (data.issues.length) {
      body.append(el("div", { className: "card rules-issues" }, el("h2", { textContent: "Problems in the rule files" }),
        el("ul", {}, ...data.issues.map((i) => el("li", { textContent: i })))));
    }
    if (!data.rules.length) {
      body.append(el("p", { textContent: "No rules yet: write them in automations.yaml beside configuration.yaml, or make one here with New rule." }));
      return;
    }
    const table = el("table", { className: "rules-table" });
    table.append(el("caption", { className: "muted", textContent: `${data.rules.length} rules` }));
    const head = el("tr");
    for (const text of ["Rule", "Status", "Source", "Problems", "Last run", "Actions"]) head.append(el("th", { scope: "col", textContent: text }));
    table.append(el("thead", {}, head));
    const rows = el("tbody");
    for (const rule of data.rules) rows.append(row(rule));
    table.append(rows);
    body.append(el("div", { className: "table-scroll" }, table));
  }

  function row(rule) {
    const tr = el("tr", { className: `rule-row status-${rule.status}` });
    tr.dataset.rule = rule.id;
    const name = el("td", {}, el("a", { href: `#/rules/${encodeURIComponent(rule.id)}`, textContent: rule.alias || rule.id }));
    if (rule.alias) name.append(el("div", { className: "muted", textContent: rule.id }));
    const problems = el("td", { className: rule.issues.length ? "error" : "muted" });
    if (rule.issues.length) problems.append(el("ul", {}, ...rule.issues.map((i) => el("li", { textContent: shortIssue(rule, i) }))));
    else problems.textContent = "none";
    tr.append(name, el("td", { className: "rule-status", textContent: STATUS[rule.status] || rule.status }),
      el("td", { textContent: sourceText(rule, true), title: rule.source || "" }), problems,
      el("td", { textContent: when(rule.last_triggered) }), el("td", {}, el("div", { className: "rule-actions" }, ...controls(ctx, rule, load))));
    return tr;
  }

  await load();
}

/** Enable/disable and run now, for the list and the rule's page; `after` reloads what shows them. */
function controls(ctx, rule, after) {
  const toggle = el("button", { type: "button", textContent: rule.enabled ? "Disable" : "Enable" });
  toggle.setAttribute("aria-label", `${rule.enabled ? "Disable" : "Enable"} ${rule.alias || rule.id}`);
  toggle.addEventListener("click", async () => {
    toggle.disabled = true;
    try {
      await ctx.post(`/api/rules/${encodeURIComponent(rule.id)}/${rule.enabled ? "disable" : "enable"}`);
      ctx.clearError();
    } catch (err) {
      ctx.showError(err);
    }
    await after("toggled");
  });
  const run = el("button", { type: "button", textContent: "Run now", disabled: rule.status === "error" });
  run.setAttribute("aria-label", `Run ${rule.alias || rule.id} now`);
  run.title = "Runs the actions now, skipping the triggers and conditions";
  run.addEventListener("click", async () => {
    run.disabled = true;
    try {
      await ctx.post(`/api/rules/${encodeURIComponent(rule.id)}/trigger`);
      ctx.clearError();
    } catch (err) {
      ctx.showError(err);
    }
    await after("ran");
  });
  return [toggle, run];
}

// ---- one rule: its runs, its definition -----------------------------------------------------

async function rulePage(root, ctx, id) {
  const path = `/api/rules/${encodeURIComponent(id)}`;
  let timer = null;
  let rule;
  const heading = el("h1", { textContent: id });
  const info = el("div", { className: "card rule-info" });
  const runs = el("section", { className: "rule-runs" });
  const definition = el("section", { className: "rule-definition" });
  root.append(el("p", {}, el("a", { href: "#/rules", textContent: "← All rules" })), heading, info, runs, definition);

  async function loadInfo() {
    rule = await ctx.get(path);
    heading.textContent = rule.alias || rule.id;
    const dl = el("dl", { className: "rule-facts" });
    const fact = (term, value, className) => dl.append(el("dt", { textContent: term }), el("dd", { textContent: value, className: className || "" }));
    fact("Id", rule.id);
    fact("Status", STATUS[rule.status] || rule.status, "rule-status");
    fact("Mode", rule.mode || "–");
    fact("Source", sourceText(rule));
    fact("Last run", when(rule.last_triggered));
    if (rule.description) fact("Description", rule.description);
    info.replaceChildren(dl);
    if (rule.issues.length) info.append(el("h2", { textContent: "Problems" }), el("ul", { className: "error" }, ...rule.issues.map((i) => el("li", { textContent: i }))));
    info.append(el("div", { className: "rule-actions" }, ...controls(ctx, rule, async (what) => {
      await loadInfo();
      if (what === "ran") await loadRuns(true);
    })));
  }

  async function loadRuns(follow = false) {
    let traces;
    try {
      traces = await ctx.get(`${path}/traces`);
    } catch (err) {
      ctx.showError(err);
      return;
    }
    const refresh = el("button", { type: "button", textContent: "Refresh runs" });
    refresh.addEventListener("click", () => loadRuns());
    runs.replaceChildren(el("h2", { textContent: "Recent runs" }), refresh);
    if (!traces.length) runs.append(el("p", { className: "muted", textContent: "No runs since the hub started." }));
    traces.forEach((trace, i) => runs.append(traceView(trace, i === 0)));
    // A run just started by hand ends within moments: look again until it has, a few times at most.
    clearTimeout(timer);
    if (follow !== false && traces[0] && traces[0].outcome === "running") {
      const left = typeof follow === "number" ? follow : 10;
      if (left > 0) timer = setTimeout(() => loadRuns(left - 1), 300);
    }
  }

  try {
    await loadInfo();
  } catch (err) {
    ctx.showError(err);
    info.replaceChildren(el("p", { textContent: err.status === 404 ? `There is no rule "${id}".` : "The rule could not be read." }));
    return;
  }
  await loadRuns();
  if (!rule.definition) {
    const { file, line } = sourceOf(rule);
    definition.append(el("h2", { textContent: "Definition" }),
      el("p", { textContent: `This rule could not be loaded (its problems are above): fix it in ${file}${line ? ` at line ${line}` : ""}, then reload the rules (hub rules reload).` }));
  } else if (rule.managed_by === "api") {
    await editorPage(definition, ctx, rule, async () => { await loadInfo(); });
  } else {
    const { file, line } = sourceOf(rule);
    definition.append(el("h2", { textContent: "Definition" }),
      el("p", { className: "muted", textContent: `Read-only: defined in ${file}${line ? ` at line ${line}` : ""}. Edit that file, then reload the rules (hub rules reload).` }),
      el("pre", { className: "rule-readonly", textContent: JSON.stringify(rule.definition, null, 2) }));
  }
  return () => clearTimeout(timer);
}

function traceView(trace, open) {
  const details = el("details", { className: `trace outcome-${trace.outcome}`, open });
  details.append(el("summary", { textContent: `${when(trace.started)}: ${trace.outcome}${trace.error ? " (error)" : ""}` }));
  const steps = el("ol", { className: "trace-steps" });
  const trig = trace.trigger || {};
  const trigText = trace.trigger_description || [trig.platform, trig.entity_id].filter(Boolean).join(" ");
  steps.append(el("li", { className: "trace-trigger" }, el("strong", { textContent: "Trigger: " }), trigText || "unknown"));
  for (const c of trace.conditions) {
    const passed = c.result === true;
    steps.append(el("li", { className: `trace-condition ${passed ? "ok" : "bad"}` },
      el("strong", { textContent: `Condition ${c.path || ""}${c.condition ? ` (${c.condition})` : ""}: ` }),
      passed ? "true" : "false", c.error ? el("span", { className: "error", textContent: ` – ${c.error}` }) : null));
  }
  if (trace.conditions_dropped) steps.append(el("li", { className: "muted", textContent: `(${trace.conditions_dropped} more condition checks not kept)` }));
  trace.steps.forEach((s, i) => {
    if (trace.steps_dropped && i === trace.steps_dropped_at) {
      steps.append(el("li", { className: "muted", textContent: `(${trace.steps_dropped} steps not kept)` }));
    }
    const li = el("li", { className: `trace-step ${s.error ? "bad" : "ok"}` },
      el("strong", { textContent: `Action ${s.path} (${s.action}): ` }),
      s.error ? "failed" : "done", s.duration_ms !== undefined ? ` in ${s.duration_ms} ms` : "");
    if (s.error) li.append(el("pre", { className: "error", textContent: s.error }));
    else if (s.result !== undefined) li.append(el("pre", { className: "muted", textContent: typeof s.result === "string" ? s.result : JSON.stringify(s.result) }));
    steps.append(li);
  });
  steps.append(el("li", { className: "trace-end" }, el("strong", { textContent: "Ended: " }),
    `${trace.outcome}${trace.finished ? ` at ${when(trace.finished)}` : ""}`));
  details.append(steps);
  if (trace.error) details.append(el("pre", { className: "error", textContent: trace.error }));
  return details;
}

// ---- the editor -----------------------------------------------------------------------------

const TEMPLATE = {
  id: "my_rule",
  alias: "Hallway motion turns the living-room light on",
  trigger: [{ trigger: "state", entity_id: "binary_sensor.hallway_motion", to: "on" }],
  action: [{ call: "light.turn_on", entity_id: "light.living_room" }],
};

/** Where each key path ("action[0].call") starts in JSON text, to put an issue at its line. It
 * reads strictly, so on text JSON.parse refused it throws {line, message}: the browser's own
 * message does not always say where. */
export function jsonLines(text) {
  const lines = new Map();
  let i = 0, line = 1;
  const fail = (message) => { throw { line, message }; };
  const space = () => { while (i < text.length && /\s/.test(text[i])) { if (text[i] === "\n") line++; i++; } };
  const string = () => {
    let j = i + 1;
    while (j < text.length && text[j] !== '"' && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
    if (text[j] !== '"') fail("a text in quotes is not closed on its line");
    let s;
    try { s = JSON.parse(text.slice(i, j + 1)); } catch { fail("a text in quotes has a bad escape"); }
    i = j + 1;
    return s;
  };
  const value = (path) => {
    space();
    if (i >= text.length) fail("the text ends where a value was expected");
    if (!lines.has(path)) lines.set(path, line);
    const c = text[i];
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      for (let n = 0; ; n++) {
        space();
        if (n === 0 && text[i] === close) { i++; return; }
        if (c === "{") {
          if (text[i] !== '"') fail(`expected a key in double quotes, found ${text[i] === undefined ? "the end" : `'${text[i]}'`}`);
          const keyLine = line;
          const key = string();
          const sub = path ? `${path}.${key}` : key;
          lines.set(sub, keyLine);
          space();
          if (text[i] !== ":") fail(`expected ':' after the key "${key}"`);
          i++;
          value(sub);
        } else {
          value(`${path}[${n}]`);
        }
        space();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === close) { i++; return; }
        fail(`expected ',' or '${close}', found ${text[i] === undefined ? "the end" : `'${text[i]}'`}`);
      }
    } else if (c === '"') {
      string();
    } else {
      const m = /^(true|false|null|-?\d+(\.\d+)?([eE][+-]?\d+)?)/.exec(text.slice(i, i + 40));
      if (!m) fail(`unexpected '${c}'`);
      i += m[0].length;
    }
  };
  value("");
  space();
  if (i < text.length) fail(`unexpected '${text[i]}' after the end of the rule`);
  return lines;
}

/** An issue of POST /api/rules/check ("request body: action[0].call: message") at its line. */
function locate(issue, lines) {
  const text = issue.replace(/^request body: /, "");
  const m = /^([\w$\-]+(?:\[\d+\]|\.[\w$\-]+)*): (.*)$/s.exec(text);
  if (!m) return { line: 1, message: text };
  let key = m[1];
  while (key && !lines.has(key)) key = key.replace(/(\[\d+\]|\.[^.[\]]+|^[^.[\]]+)$/, "");
  return { line: lines.get(key) || 1, message: `${m[1]}: ${m[2]}` };
}

/** The editor; `rule` null for a new one. Checks on demand and before saving. */
async function editorPage(root, ctx, rule, saved) {
  const isNew = rule === null;
  if (isNew) root.append(el("p", {}, el("a", { href: "#/rules", textContent: "← All rules" })), el("h1", { textContent: "New rule" }));
  root.append(el("h2", { textContent: "Definition (JSON)" }),
    el("p", { className: "muted", textContent: "Rules made here are kept in automations/api.yaml. The same checks as hub rules check run before saving." }));
  const text = el("textarea", { id: "rule-editor", spellcheck: false, wrap: "off", className: "editor-text" });
  text.setAttribute("aria-label", "Rule definition (JSON)");
  text.setAttribute("aria-describedby", "rule-problems");
  text.value = JSON.stringify(isNew ? TEMPLATE : rule.definition, null, 2);
  const gutter = el("div", { className: "editor-gutter", ariaHidden: "true" });
  const backdrop = el("div", { className: "editor-backdrop", ariaHidden: "true" });
  const editor = el("div", { className: "editor" }, gutter, el("div", { className: "editor-body" }, backdrop, text));
  const problems = el("ul", { id: "rule-problems", className: "editor-problems" });
  const status = el("p", { className: "editor-status", role: "status" });
  const check = el("button", { type: "button", textContent: "Check" });
  const save = el("button", { type: "button", textContent: isNew ? "Create" : "Save" });
  const buttons = el("div", { className: "rule-actions" }, check, save);
  if (!isNew) {
    const remove = el("button", { type: "button", textContent: "Delete", className: "danger" });
    remove.addEventListener("click", async () => {
      if (!confirm(`Delete the rule ${rule.id}?`)) return;
      try {
        await ctx.api("DELETE", `/api/rules/${encodeURIComponent(rule.id)}`);
        ctx.navigate("#/rules");
      } catch (err) {
        ctx.showError(err);
      }
    });
    buttons.append(remove);
  }
  root.append(editor, status, problems, buttons);

  let marks = new Map(); // line -> messages
  function paint() {
    const count = text.value.split("\n").length;
    gutter.replaceChildren(...Array.from({ length: count }, (_, k) => {
      const bad = marks.has(k + 1);
      return el("div", { className: bad ? "editor-line bad" : "editor-line", textContent: String(k + 1) });
    }));
    backdrop.replaceChildren(...Array.from({ length: count }, (_, k) => {
      const messages = marks.get(k + 1);
      return el("div", { className: messages ? "editor-row bad" : "editor-row" },
        messages ? el("span", { className: "editor-message", textContent: messages.join("; ") }) : "\u200b");
    }));
    scroll();
  }
  function scroll() {
    gutter.scrollTop = text.scrollTop;
    backdrop.scrollTop = text.scrollTop;
    backdrop.scrollLeft = 0;
  }
  function show(issues) {
    marks = new Map();
    problems.replaceChildren();
    for (const { line, message } of issues) {
      marks.set(line, [...(marks.get(line) || []), message]);
      const go = el("button", { type: "button", className: "link", textContent: `Line ${line}: ${message}` });
      go.addEventListener("click", () => {
        const lines = text.value.split("\n");
        const at = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
        text.focus();
        text.setSelectionRange(at, at + lines[line - 1].length);
      });
      problems.append(el("li", { className: "error" }, go));
    }
    paint();
  }

  /** Parse and check: the rule as an object when it is valid, else null with the problems shown. */
  async function validate() {
    let body;
    try {
      body = JSON.parse(text.value);
    } catch (err) {
      let where = { line: 1, message: err.message };
      try { jsonLines(text.value); } catch (found) { if (found && found.line) where = found; }
      show([{ line: where.line, message: `not valid JSON: ${where.message}` }]);
      status.textContent = "1 problem.";
      return null;
    }
    if (!isNew) body = { ...body, id: rule.id };
    let answer;
    try {
      answer = await ctx.post("/api/rules/check", body);
    } catch (err) {
      ctx.showError(err);
      return null;
    }
    const lines = jsonLines(text.value);
    show(answer.issues.map((i) => locate(i, lines)));
    status.textContent = answer.ok ? "No problems." : `${answer.issues.length} problem${answer.issues.length > 1 ? "s" : ""}.`;
    return answer.ok ? body : null;
  }

  text.addEventListener("input", () => { if (marks.size) { marks = new Map(); problems.replaceChildren(); status.textContent = ""; } paint(); });
  text.addEventListener("scroll", scroll);
  check.addEventListener("click", () => validate());
  save.addEventListener("click", async () => {
    const body = await validate();
    if (!body) return;
    try {
      const answer = isNew ? await ctx.post("/api/rules", body)
        : await ctx.api("PUT", `/api/rules/${encodeURIComponent(rule.id)}`, body);
      ctx.clearError();
      status.textContent = answer.note ? `Saved. Note: ${answer.note}` : "Saved.";
      if (isNew) ctx.navigate(`#/rules/${encodeURIComponent(answer.id)}`);
      else if (saved) await saved();
    } catch (err) {
      ctx.showError(err);
    }
  });
  paint();
}
