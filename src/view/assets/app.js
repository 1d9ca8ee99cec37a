// nlah view: one page, routed by the URL's hash; every view asks the server for what it shows.
"use strict";

const main = document.getElementById("main");
const banner = document.getElementById("error");
let target = null;
let timer = null; // the matrix page's poll

// Drops what is not to be shown and flattens lists, as h() does for its children.
const kids = (...xs) => xs.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false);

// Builds an element; strings become text nodes (never HTML).
function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids(children)) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

class ApiError extends Error {}

async function api(path) {
  const r = await fetch(path);
  let body;
  try { body = await r.json(); } catch (_) { body = { error: r.status + " " + r.statusText }; }
  if (!r.ok || body.error) throw new ApiError(body.error || r.statusText);
  return body;
}

function showError(e) {
  banner.hidden = false;
  banner.textContent = e instanceof ApiError ? e.message : "error: " + e;
}

function clearError() { banner.hidden = true; banner.textContent = ""; }

const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const secs = (ms) => (ms === null || ms === undefined ? "–" : (ms / 1000).toFixed(1) + " s");
const short = (v) => (v || "").slice(0, 12);
const tokens = (u) => (u ? num((u.input_tokens || 0) + (u.output_tokens || 0)) : "–");
const outcome = (o) => h("span", { class: "outcome o-" + o }, o);

function table(head, rows, cls) {
  return h("table", { class: cls || "" },
    h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows));
}

function kv(pairs) {
  return h("table", { class: "kv" }, h("tbody", {},
    pairs.filter((p) => p[1] !== null && p[1] !== undefined && p[1] !== "")
      .map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))));
}

function pager(total, offset, limit, go) {
  const end = Math.min(offset + limit, total);
  return h("div", { class: "pager" },
    h("button", { class: "prev", disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)) }, "‹ previous"),
    h("span", { class: "range" }, total === 0 ? "none" : `${num(offset + 1)}–${num(end)} of ${num(total)}`),
    h("button", { class: "next", disabled: end >= total, onclick: () => go(offset + limit) }, "next ›"));
}

function page(title, ...parts) {
  main.replaceChildren(h("h1", {}, title), ...kids(parts));
}

// ---------------------------------------------------------------- matrix

async function matrixPage() {
  const m = await api("/api/matrix");
  const state = { offset: 0, limit: 50, filter: {} };
  const counts = h("div", { class: "chips", id: "counts" });
  const cellsBox = h("div", { id: "cells" });
  const chosen = new Set();
  const compare = h("button", { id: "compare", disabled: true, onclick: () => {
    const [a, b] = [...chosen];
    location.hash = `#/diff/${a}/${b}`;
  } }, "Compare two selected runs");
  const report = h("iframe", { class: "report", id: "report", src: "/report.html", title: "report" });

  function drawCounts(m) {
    counts.replaceChildren(
      h("span", { class: "chip" }, `${num(m.finished)} of ${num(m.total)} cells finished`),
      ...Object.entries(m.counts).map(([k, n]) => h("span", { class: "chip" }, outcome(k), " ", num(n))));
  }

  const select = (key, values, label) => h("label", {}, label,
    h("select", { id: "f-" + key, onchange: (ev) => {
      state.filter[key] = ev.target.value; state.offset = 0; loadCells();
    } }, h("option", { value: "" }, "all"), values.map((v) => h("option", { value: String(v) }, String(v)))));

  async function loadCells() {
    const q = new URLSearchParams({ offset: state.offset, limit: state.limit });
    for (const [k, v] of Object.entries(state.filter)) if (v) q.set(k, v);
    const c = await api("/api/cells?" + q);
    const rows = c.cells.map((x) => h("tr", { "data-id": x.id },
      h("td", {}, h("input", { type: "checkbox", class: "pick", checked: chosen.has(x.id), disabled: x.outcome === "not-run",
        onchange: (ev) => {
          if (ev.target.checked) chosen.add(x.id); else chosen.delete(x.id);
          compare.disabled = chosen.size !== 2;
        } })),
      h("td", {}, x.outcome === "not-run" ? x.id : h("a", { class: "cell", "data-cell": x.id, href: "#/run/" + x.id }, x.id)),
      h("td", {}, x.variant), h("td", {}, x.task), h("td", {}, x.model), h("td", { class: "num" }, x.seed),
      h("td", {}, outcome(x.outcome)), h("td", { class: "num" }, num(x.tokens)),
      h("td", { class: "num" }, num(x.tool_calls)), h("td", { class: "num" }, secs(x.wall_ms))));
    cellsBox.replaceChildren(
      pager(c.total, c.offset, state.limit, (o) => { state.offset = o; loadCells().catch(showError); }),
      table(["", "cell", "variant", "task", "model", "seed", "outcome", "tokens", "tool calls", "wall"], rows, "cells"));
  }

  drawCounts(m);
  page(`Matrix: ${m.harness}`,
    kv([["harness", m.harness_path], ["design", m.design], ["baseline", m.baseline],
      ["variants", m.variants.map((v) => v.name).join(", ")], ["models", m.models.join(", ")],
      ["seeds", m.seeds], ["created", m.created]]),
    counts,
    h("h2", {}, "Cells"),
    h("div", { class: "filters" },
      select("variant", m.variants.map((v) => v.name), "variant"),
      select("task", m.tasks, "task"),
      select("model", m.models, "model"),
      select("seed", [...Array(m.seeds).keys()], "seed"),
      select("outcome", ["passed", "failed", "unverified", "error", "running", "unreadable", "not-run"], "outcome"),
      compare),
    cellsBox,
    h("h2", {}, "Report"),
    report);
  await loadCells();

  // While cells are still running, the counts, the listed page and the report follow them.
  let finished = m.finished;
  if (m.finished < m.total) {
    timer = setInterval(async () => {
      try {
        const now = await api("/api/matrix");
        drawCounts(now);
        if (now.finished !== finished) {
          finished = now.finished;
          await loadCells();
          report.src = "/report.html";
        }
        if (now.finished >= now.total) { clearInterval(timer); timer = null; }
      } catch (e) { showError(e); }
    }, 2000);
  }
}

// ---------------------------------------------------------------- run

async function runPage(id) {
  const r = await api(`/api/run/${encodeURIComponent(id)}`);
  const hd = r.header;
  const rec = r.record;
  const state = { offset: 0, limit: 200, kind: "", child: "" };
  const events = h("div", { id: "events" });
  const commits = h("div", { id: "commits" });

  async function loadEvents() {
    const q = new URLSearchParams({ offset: state.offset, limit: state.limit });
    if (state.kind) q.set("kind", state.kind);
    if (state.child) q.set("child", state.child);
    const e = await api(`/api/run/${encodeURIComponent(id)}/events?` + q);
    const rows = e.events.map((x) => h("tr", { class: "ev ev-" + x.event, "data-seq": x.seq },
      h("td", { class: "num" }, x.seq), h("td", { class: "num" }, secs(x.t_ms)),
      h("td", {}, x.event),
      h("td", {}, x.child ? h("a", { class: "child", "data-child": x.child, href: `#/run/${id}/child/${x.child}` }, x.child) : ""),
      h("td", {}, h("details", {}, h("summary", {}, x.text), h("pre", {}, JSON.stringify(x.data, null, 2))))));
    events.replaceChildren(
      pager(e.total, e.offset, state.limit, (o) => { state.offset = o; loadEvents().catch(showError); }),
      table(["#", "at", "event", "child", "what happened"], rows, "events"));
  }

  async function loadCommits(offset) {
    const c = await api(`/api/run/${encodeURIComponent(id)}/commits?offset=${offset}&limit=100`);
    commits.replaceChildren(
      pager(c.total, c.offset, 100, (o) => loadCommits(o).catch(showError)),
      table(["commit", "what"], c.commits.map((x) => h("tr", {},
        h("td", {}, h("a", { class: "commit", "data-commit": x.id, href: `#/run/${id}/commit/${x.id}` }, x.short)),
        h("td", {}, x.summary))), "commits"));
  }

  const u = r.usage;
  const stages = table(["stage", "attempts", "passed", "tokens", "calls", "tool calls"],
    u.stages.map((s) => h("tr", {}, h("td", {}, s.stage), h("td", { class: "num" }, s.attempts),
      h("td", {}, outcome(s.passed ? "passed" : "failed")), h("td", { class: "num" }, tokens(s.usage)),
      h("td", { class: "num" }, num(s.usage.calls)), h("td", { class: "num" }, num(s.tool_calls)))));
  const children = table(["child", "stage", "role", "model", "status", "tokens", "calls", "tool calls"],
    u.children.map((c) => h("tr", {},
      h("td", {}, h("a", { class: "child", "data-child": c.child, href: `#/run/${id}/child/${c.child}` }, c.child)),
      h("td", {}, c.stage), h("td", {}, c.role), h("td", {}, c.model), h("td", {}, outcome(c.status)),
      h("td", { class: "num" }, tokens(c.usage)), h("td", { class: "num" }, num(c.usage.calls)),
      h("td", { class: "num" }, num(c.tool_calls)))), "children");
  const v = rec && rec.verifier;
  const pick = (key, values, label) => h("label", {}, label, h("select", { id: "e-" + key, onchange: (ev) => {
    state[key] = ev.target.value; state.offset = 0; loadEvents().catch(showError);
  } }, h("option", { value: "" }, "all"), values.map((x) => h("option", { value: x }, x))));

  page(`Run ${hd.run_id}`,
    r.note ? h("p", { class: "note", id: "note" }, r.note) : null,
    kv([["outcome", outcome(hd.outcome)], ["reason", hd.reason], ["harness", `${hd.harness} ${short(hd.version)}`],
      ["modules", hd.modules.join(", ") || "none"], ["task", hd.task], ["model", hd.model], ["seed", hd.seed],
      ["sandbox", hd.sandbox], ["started", hd.started], ["wall", secs(hd.wall_ms)],
      ["verifier", v ? h("span", {}, outcome(v.passed ? "passed" : "failed"),
        ` reward ${v.reward ?? "–"}, exit ${v.exit_code ?? "–"}${v.timed_out ? ", timed out" : ""}, ${secs(v.duration_ms)}`) : null],
      ["usage", `${tokens(u.total)} tokens, ${num(u.total.calls)} model calls, ${num(u.tool_calls)} tool calls; runtime's own: ${tokens(u.parent)} tokens`],
      ["path", r.path]]),
    h("h2", {}, "Stages"), stages,
    h("h2", {}, "Children"), children,
    h("h2", {}, `Timeline (${num(r.events)} events)`),
    h("div", { class: "chips" }, Object.entries(r.kinds).map(([k, n]) => h("span", { class: "chip" }, `${k} ${num(n)}`))),
    h("div", { class: "filters" }, pick("kind", Object.keys(r.kinds), "event"),
      pick("child", r.children.map((c) => c.id), "child")),
    events,
    h("h2", {}, "Workspace commits"),
    commits);
  await Promise.all([loadEvents(), loadCommits(0)]);
}

// ---------------------------------------------------------------- child

function callView(c) {
  const f = c.function || c;
  let args = f.arguments;
  try { args = JSON.stringify(typeof args === "string" ? JSON.parse(args) : args, null, 2); } catch (_) { /* raw */ }
  return h("div", { class: "call" }, h("b", {}, f.name || "?"), " ", h("span", { class: "muted" }, c.id || ""),
    h("pre", { class: "args" }, args || ""));
}

async function childPage(id, child) {
  const c = await api(`/api/run/${encodeURIComponent(id)}/child/${encodeURIComponent(child)}`);
  const i = c.info;
  const conv = h("div", { class: "conv", id: "conversation" });
  for (const line of c.transcript) {
    if (line.type === "message") {
      const m = line.message || {};
      const role = m.role || "?";
      conv.append(h("div", { class: "msg msg-" + role },
        h("div", { class: "role" }, role === "tool" ? `tool result ${m.tool_call_id || ""}` : role),
        // The system message is the harness itself: folded, as it is the same for every child.
        m.content ? (role === "system"
          ? h("details", {}, h("summary", {}, `${m.content.split("\n").length} lines`), h("pre", { class: "content" }, m.content))
          : h("pre", { class: "content" }, m.content)) : null,
        (m.tool_calls || []).map(callView)));
    } else if (line.type === "tool-output") {
      conv.append(h("div", { class: "usage-line" },
        `call ${line.call_id}: ${line.is_error ? "error" : "ok"}${line.exit_code !== undefined && line.exit_code !== null ? ", exit " + line.exit_code : ""}${line.truncated ? ", output cut" : ""}`));
    } else if (line.type === "usage") {
      conv.append(h("div", { class: "usage-line" }, `model call: ${tokens(line.usage)} tokens`));
    } else if (line.type === "end") {
      conv.append(h("div", { class: "usage-line" }, `ended: ${line.reason || ""}`));
    }
  }
  if (!c.transcript.length) conv.append(h("p", { class: "muted" }, "No transcript: the child ran on an external agent, or wrote none."));
  page(`Child ${i.id}`,
    h("p", {}, h("a", { href: `#/run/${id}` }, "‹ back to the run")),
    kv([["stage", i.stage], ["role", i.role], ["model", i.model], ["status", outcome(i.status || "running")],
      ["reason", i.reason], ["usage", `${tokens(i.usage)} tokens, ${num(i.usage.calls)} model calls, ${num(i.tool_calls)} tool calls`]]),
    c.task ? h("details", {}, h("summary", {}, "TASK.md"), h("pre", {}, c.task)) : null,
    h("h2", {}, "Conversation"), conv,
    h("h2", {}, "RESPONSE.md"), c.response ? h("pre", { id: "response" }, c.response) : h("p", { class: "muted" }, "none"));
}

// ---------------------------------------------------------------- commit

function patchView(text) {
  return h("div", { class: "diff" }, text.split("\n").map((l) =>
    h("div", { class: l.startsWith("+") && !l.startsWith("+++") ? "add" : l.startsWith("-") && !l.startsWith("---") ? "del" : l.startsWith("@@") ? "hunk" : "" }, l)));
}

async function commitPage(id, oid) {
  const c = await api(`/api/run/${encodeURIComponent(id)}/commit/${encodeURIComponent(oid)}`);
  page(`Commit ${c.id.slice(0, 10)}`,
    h("p", {}, h("a", { href: `#/run/${id}` }, "‹ back to the run")),
    h("pre", { id: "message" }, c.message),
    h("p", { class: "muted" }, c.parent ? `parent ${c.parent.slice(0, 10)}` : "the first commit"),
    c.files.map((f) => h("div", { class: "card file", "data-path": f.path },
      h("b", {}, f.path), ` ${f.status}, +${f.additions} −${f.deletions}${f.binary ? " (binary)" : ""}${f.cut ? " (cut)" : ""}`,
      patchView(f.patch))));
}

// ---------------------------------------------------------------- two runs

function side(s) {
  return kv([["run", s.run_id], ["outcome", outcome(s.outcome)], ["reason", s.reason],
    ["harness", `${s.harness} ${short(s.version)}`], ["modules", s.modules.join(", ") || "none"],
    ["task", s.task], ["model", s.model], ["seed", s.seed], ["tokens", tokens(s.usage)],
    ["model calls", num(s.usage.calls)], ["tool calls", num(s.tool_calls)], ["children", num(s.children)],
    ["wall", secs(s.wall_ms)], ["events", num(s.events)]]);
}

async function diffPage(a, b) {
  const r = await api(`/api/diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
  const d = r.diff;
  const ev = (x) => x ? h("div", {}, h("b", {}, `#${x.seq} ${x.event}`), " ", x.text, h("pre", {}, JSON.stringify(x.key, null, 2))) : h("span", { class: "muted" }, "(history ended)");
  page("Two runs",
    h("div", { class: "cols" },
      h("div", {}, h("h2", {}, h("a", { href: `#/run/${a}` }, d.a.path)), side(d.a)),
      h("div", {}, h("h2", {}, h("a", { href: `#/run/${b}` }, d.b.path)), side(d.b))),
    h("h2", {}, "Where the histories part"),
    d.divergence
      ? h("div", { id: "divergence" }, h("p", {}, `${num(d.common)} events agree; event ${d.divergence.index} differs:`),
        h("div", { class: "cols" }, ev(d.divergence.a), ev(d.divergence.b)))
      : h("p", { id: "divergence" }, `The histories agree throughout (${num(d.common)} events).`),
    h("h2", {}, "Artifacts"),
    table(["path", "status", "a", "b"], d.artifacts.map((x) => h("tr", {}, h("td", {}, x.path), h("td", {}, x.status),
      h("td", {}, x.a ? `${num(x.a.size)} B ${x.a.sha256.slice(0, 8)}` : "–"),
      h("td", {}, x.b ? `${num(x.b.size)} B ${x.b.sha256.slice(0, 8)}` : "–"))), "artifacts"));
}

// ---------------------------------------------------------------- harness

function fieldChange(f) {
  if (f.kind === "value") return h("li", {}, `${f.field}: ${f.old} → ${f.new}`);
  if (f.kind === "list") return h("li", {}, `${f.field}: ${f.added.map((x) => "+" + x).concat(f.removed.map((x) => "−" + x)).join(", ")}`);
  return h("li", {}, `${f.field}: text changed`);
}

function harnessDiffView(diffs) {
  if (!diffs.length) return h("p", {}, "No change to this harness between these versions.");
  return diffs.map((d) => h("div", { class: "card hdiff" },
    h("p", {}, `${d.name}: ${d.old ? short(d.old.version) : "(absent)"} → ${d.new ? short(d.new.version) : "(absent)"}`),
    [["modules", d.modules], ["stages", d.stages], ["roles", d.roles]].map(([label, items]) => items.length ? h("div", {},
      h("b", {}, label), h("ul", {}, items.map((it) => h("li", {}, `${it.status} ${it.name}${it.detail ? " (" + it.detail + ")" : ""}`,
        it.fields.length ? h("ul", {}, it.fields.map(fieldChange)) : null)))) : null),
    [["contract", d.contract], ["flow", d.flow], ["other", d.other]].map(([label, fs]) => fs.length ? h("div", {}, h("b", {}, label), h("ul", {}, fs.map(fieldChange))) : null),
    d.files.length ? h("div", {}, h("b", {}, "files"), h("ul", {}, d.files.map((f) => h("li", {}, `${f.status} ${f.path}`)))) : null,
    d.sections.map((s) => h("div", { class: "section" }, h("b", {}, `${s.file} § ${s.section} (${s.status})`),
      h("div", { class: "diff" }, s.hunks.map((hk) => [h("div", { class: "hunk" }, hk.header),
        hk.lines.map((l) => h("div", { class: l.tag === "+" ? "add" : l.tag === "-" ? "del" : "" }, l.tag + l.text))]))))));
}

async function harnessPage() {
  const first = await api("/api/harness");
  const defaults = new Map(first.modules.map((m) => [m.name, m.default]));
  const on = new Set(first.enabled);
  const text = h("pre", { class: "skill", id: "skill" });
  const info = h("div", { id: "composed" });
  const versions = h("div", { id: "versions" });
  const hdiff = h("div", { id: "harness-diff" });

  const query = () => {
    const w = [], wo = [];
    for (const [name, def] of defaults) {
      if (on.has(name) && !def) w.push(name);
      if (!on.has(name) && def) wo.push(name);
    }
    return new URLSearchParams({ with: w.join(","), without: wo.join(",") }).toString();
  };

  function drawComposed(c) {
    text.textContent = c.text;
    info.replaceChildren(...kids(kv([["version", h("code", { id: "version" }, c.version)], ["modules on", c.enabled.join(", ") || "none"]]),
      c.problems.length ? h("pre", { class: "error" }, c.problems.join("\n")) : null));
  }

  async function recompose() {
    drawComposed(await api("/api/harness?" + query()));
    await loadVersions();
  }

  async function loadVersions() {
    let l;
    try { l = await api("/api/harness/log?" + query()); } catch (e) {
      versions.replaceChildren(h("p", { class: "error" }, e.message)); return;
    }
    const rows = l.entries.map((e, i) => h("tr", { "data-commit": e.commit },
      h("td", {}, h("input", { type: "radio", name: "va", value: e.commit, checked: i === 1 || (l.entries.length === 1 && i === 0) })),
      h("td", {}, h("input", { type: "radio", name: "vb", value: e.commit, checked: i === 0 })),
      h("td", {}, e.short), h("td", {}, e.time), h("td", {}, e.summary), h("td", {}, e.version ? short(e.version) : "(absent)"),
      h("td", {}, e.scores.map((s) => `${s.model}: ${s.passed}/${s.passed + s.failed + s.unverified} passed`).join("; ") || "–")));
    versions.replaceChildren(
      table(["old", "new", "commit", "time", "summary", "version", "scores"], rows, "versions"),
      h("button", { id: "diff-versions", onclick: async () => {
        const a = versions.querySelector("input[name=va]:checked");
        const b = versions.querySelector("input[name=vb]:checked");
        if (!a || !b) return;
        try {
          const d = await api(`/api/harness/diff?a=${a.value}&b=${b.value}&` + query());
          hdiff.replaceChildren(...kids(harnessDiffView(d.harnesses)));
        } catch (e) { hdiff.replaceChildren(h("p", { class: "error" }, e.message)); }
      } }, "Compare the two versions"));
  }

  page(`Harness: ${first.name || first.path}`,
    h("p", { class: "muted" }, first.path),
    h("h2", {}, "Modules"),
    h("div", { class: "toggles" }, first.modules.length ? first.modules.map((m) => h("label", { title: m.description },
      h("input", { type: "checkbox", id: "m-" + m.name, checked: on.has(m.name), onchange: (ev) => {
        if (ev.target.checked) on.add(m.name); else on.delete(m.name);
        recompose().catch(showError);
      } }), m.name)) : h("span", { class: "muted" }, "no modules")),
    info,
    h("h2", {}, "Versions"), versions, hdiff,
    h("h2", {}, "Composed SKILL.md"), text);
  drawComposed(first);
  await loadVersions();
}

// ---------------------------------------------------------------- routing

let routes = 0; // which route is current: a slow earlier one must not mark the page ready

async function route() {
  const mine = ++routes;
  const hash = location.hash || "#/";
  if (timer) { clearInterval(timer); timer = null; }
  clearError();
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (!target) target = await api("/api/target");
    document.getElementById("where").textContent = target.path;
    if (parts[0] === "run" && parts[2] === "child") await childPage(parts[1], parts[3]);
    else if (parts[0] === "run" && parts[2] === "commit") await commitPage(parts[1], parts[3]);
    else if (parts[0] === "run") await runPage(parts[1]);
    else if (parts[0] === "diff") await diffPage(parts[1], parts[2]);
    else if (target.kind === "matrix") await matrixPage();
    else if (target.kind === "harness") await harnessPage();
    else if (target.runs.length > 1) await diffPage("0", "1");
    else await runPage("0");
    if (mine === routes) document.body.dataset.ready = hash;
  } catch (e) {
    if (mine !== routes) return;
    showError(e);
    main.replaceChildren(h("p", { class: "error", id: "problem" }, e instanceof ApiError ? e.message : String(e)));
    document.body.dataset.ready = "error";
  }
}

window.addEventListener("hashchange", route);
route();
