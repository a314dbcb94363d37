// The Astrid web console: plain JavaScript, no build step, no third-party code. Everything it
// shows goes through textContent (never innerHTML), so message text cannot inject markup.
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("astrid-token") || "";
let current = null;        // the selected thread {id, name}
let turnRunning = false;   // this tab is streaming a turn
const asked = new Set();   // approval ids already on screen
const questioned = new Set(); // question ids already on screen (a turn's stream and the feed both carry them)
const ownTurns = new Map(); // thread id → turns this tab sent whose `end` the feed has not shown

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

async function api(path, opts = {}) {
  const headers = { Authorization: "Bearer " + token };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method: opts.method || "GET",
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  if (!resp.ok) {
    let detail = resp.statusText;
    try { detail = (await resp.json()).detail || detail; } catch (_) { /* not a problem document */ }
    if (resp.status === 401) signOut(detail);
    throw new Error(detail);
  }
  return resp;
}

// Calls onEvent(name, data) for each server-sent event of a fetch response.
async function readEvents(resp, onEvent) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) {
        let parsed = data.join("\n");
        try { parsed = JSON.parse(parsed); } catch (_) { /* plain text */ }
        onEvent(name, parsed);
      }
    }
  }
}

function status(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function signOut(reason) {
  token = "";
  sessionStorage.removeItem("astrid-token");
  $("app").hidden = true;
  $("account").hidden = true;
  $("views").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("who").textContent = "";
  $("signin-error").textContent = reason || "";
}

async function signIn(t) {
  token = t.trim();
  try {
    await loadThreads();
  } catch (e) {
    signOut(e.message);
    return;
  }
  sessionStorage.setItem("astrid-token", token);
  $("signin").hidden = true;
  showView("chat");
  $("views").hidden = false;
  $("signout").hidden = false;
  $("who").textContent = "signed in as " + token.split(".")[1];
  liveFeed();
}

async function loadThreads() {
  const list = await (await api("/v1/threads")).json();
  const ul = $("threads");
  ul.replaceChildren();
  for (const t of list.threads) {
    const li = el("li");
    const b = el("button", "", `${t.name} (${t.messages})`);
    b.type = "button";
    b.addEventListener("click", () => openThread(t.id));
    li.append(b);
    ul.append(li);
  }
}

function showMessage(m) {
  if (m.role === "tool") {
    $("messages").append(el("li", "tool", `${m.name}: ${m.content}`));
    return;
  }
  const text = m.content || "";
  const calls = (m.tool_calls || []).map((c) => `→ ${c.name} ${JSON.stringify(c.arguments)}`);
  $("messages").append(el("li", m.role, [text, ...calls].filter(Boolean).join("\n")));
}

async function openThread(id) {
  const t = await (await api("/v1/threads/" + encodeURIComponent(id))).json();
  current = { id: t.id, name: t.name };
  $("thread-title").textContent = t.name;
  $("messages").replaceChildren();
  t.history.forEach(showMessage);
}

// A capsule's astrid:uplink notice, under the capsule's name as the kernel stamped it. Text
// only (textContent): the capsule's words never become markup.
function showNotice(n) {
  const li = el("li", "notice " + n.level, `◆ ${n.capsule} · ${n.level}\n${n.text}`);
  li.setAttribute("role", "status");
  $("messages").append(li);
}

function showApproval(a) {
  if (asked.has(a.id)) return;
  asked.add(a.id);
  const box = el("div", "approval");
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", "Approval request");
  // The kernel's rendering of what would be touched; a capsule's own words only apart, as its.
  box.append(el("p", "", `${a.capsule} wants to ${a.describe} (${a.action})`));
  if (a.detail) box.append(el("p", "", a.detail));
  if (a.capsule_says) box.append(el("p", "capsule-says", `The capsule says: “${a.capsule_says.reason}”`));
  if (a.allow_always && !a.allow_always.offered) box.append(el("p", "", `Allow always is not offered: ${a.allow_always.why}`));
  if (a.allow_always && a.allow_always.consent) box.append(el("p", "", `Allow always remembers your consent for ${a.allow_always.capsule} to reach ${a.allow_always.consent}.`));
  for (const [decision, label] of [["allow_once", "Allow once"], ["allow_session", "Allow for session"],
                                    ["allow_always", "Allow always"], ["deny", "Deny"]]) {
    const b = el("button", "", label);
    b.type = "button";
    b.addEventListener("click", async () => {
      try {
        await api("/v1/approvals/" + a.id, { method: "POST", body: { decision } });
        box.replaceChildren(el("p", "", `${label}: ${a.resource}`));
      } catch (e) { status(e.message, true); }
    });
    box.append(b);
  }
  $("approvals").append(box);
  box.querySelector("button").focus();
}

// A capsule's question (astrid:elicit): its own words, under the name the kernel stamped. A
// secret goes to the principal's secret store, never to the capsule, and is never shown again.
function showQuestion(q) {
  if (questioned.has(q.id)) return;
  questioned.add(q.id);
  const box = el("form", "question");
  box.setAttribute("aria-label", `Question from ${q.capsule}`);
  box.append(el("p", "", `${q.capsule} asks:`));
  box.append(el("p", "capsule-says", `“${q.prompt}”`));
  let input = null;
  if (q.kind === "choice") {
    const group = el("div", "choices");
    q.options.forEach((option, i) => {
      const label = el("label", "");
      const radio = el("input");
      radio.type = "radio";
      radio.name = `question-${q.id}`;
      radio.value = String(i);
      label.append(radio, document.createTextNode(` ${option}`));
      group.append(label);
    });
    box.append(group);
  } else {
    if (q.kind === "secret") {
      box.append(el("p", "", `It asks for the credential “${q.secret.name}” for ${q.secret.origin}. ` +
        `What you type goes to your secret store, bound to that origin, and never to ${q.capsule}.`));
    }
    input = el("input");
    input.type = q.kind === "secret" ? "password" : "text";
    input.autocomplete = "off";
    input.setAttribute("aria-label", "Your answer");
    box.append(input);
  }
  const submit = el("button", "", q.kind === "secret" ? "Store" : "Answer");
  submit.type = "submit";
  const decline = el("button", "", "Decline");
  decline.type = "button";
  let done = false;
  const reply = async (body, shown) => {
    try {
      await api(`/v1/questions/${q.id}`, { method: "POST", body });
      done = true;
      box.replaceChildren(el("p", "", `${q.capsule}: ${shown}`));
    } catch (e) { status(e.message, true); }
  };
  box.addEventListener("submit", (e) => {
    e.preventDefault();
    if (q.kind === "choice") {
      const picked = box.querySelector("input[type=radio]:checked");
      if (!picked) { status("choose one of the options first", true); return; }
      const i = Number(picked.value);
      reply({ kind: "choice", index: i }, `answered “${q.options[i]}”`);
    } else if (q.kind === "secret") {
      reply({ kind: "text", text: input.value }, "the credential went to your secret store");
    } else {
      reply({ kind: "text", text: input.value }, `answered “${input.value}”`);
    }
  });
  decline.addEventListener("click", () => reply({ kind: "decline" }, "declined"));
  box.append(submit, decline);
  $("approvals").append(box);
  // The capsule stops waiting after its timeout; an answer after that would change nothing.
  if (q.timeout_ms > 0) {
    setTimeout(() => {
      if (!done) box.replaceChildren(el("p", "", `${q.capsule} stopped waiting for an answer.`));
    }, q.timeout_ms);
  }
  (input || box.querySelector("input")).focus();
}

async function send(text) {
  if (!current) {
    const t = await (await api("/v1/threads", { method: "POST", body: {} })).json();
    current = { id: t.id, name: t.name };
    $("thread-title").textContent = t.name;
  }
  showMessage({ role: "user", content: text });
  let answer = el("li", "assistant", "");
  $("messages").append(answer);
  turnRunning = true;
  const thread = current.id;
  ownTurns.set(thread, (ownTurns.get(thread) || 0) + 1);
  // A turn that fails before the agent opens its session publishes no `end`: the feed will
  // never show one for it, so it stops counting as ours when its own stream ends.
  let sawEnd = false;
  $("cancel").disabled = false;
  status("working…");
  try {
    const resp = await api(`/v1/threads/${thread}/turns`, { method: "POST", body: { input: text } });
    await readEvents(resp, (name, ev) => {
      if (name === "end") sawEnd = true;
      else if (name === "delta") answer.textContent += ev.text;
      else if (name === "step" && answer.textContent) {
        answer = el("li", "assistant", "");
        $("messages").append(answer);
      } else if (name === "tool_call") $("messages").append(el("li", "tool", `→ ${ev.name} ${JSON.stringify(ev.arguments)}`));
      else if (name === "tool_result") $("messages").append(el("li", "tool", `${ev.ok ? "✓" : "✗"} ${ev.name}: ${ev.output}`));
      else if (name === "approval") showApproval(ev);
      else if (name === "question") showQuestion(ev);
      else if (name === "done") { answer.textContent = ev.answer; status(`done (${ev.steps} steps)`); }
      else if (name === "error") status(ev.detail, true);
    });
  } catch (e) {
    status(e.message, true);
  } finally {
    turnRunning = false;
    if (!sawEnd) releaseOwnTurn(thread);
    $("cancel").disabled = true;
    loadThreads().catch(() => {});
  }
}

function releaseOwnTurn(thread) {
  const ours = ownTurns.get(thread) || 0;
  if (ours <= 1) ownTurns.delete(thread); else ownTurns.set(thread, ours - 1);
}

// The feed carries this tab's own turns too, and may deliver their last events after the
// turn's own stream has ended: a turn is ours until the feed has seen its `end`.
function feedEvent(thread, event) {
  if (!event) return; // an event that was not JSON: nothing to show
  const ours = ownTurns.get(thread) || 0;
  if (event.kind === "end") {
    if (ours > 0) {
      releaseOwnTurn(thread);
    } else if (current && thread === current.id && !turnRunning) {
      status("a turn elsewhere ended");
      openThread(thread).catch((e) => status(e.message, true));
    }
  } else if (event.kind === "delta" && ours === 0 && !turnRunning && current && thread === current.id) {
    status("a turn is running elsewhere…");
  }
}

// Every thread's events of this principal: approvals asked by turns started elsewhere (the
// CLI, another tab, an OpenAI client) appear here too.
async function liveFeed() {
  while (token) {
    try {
      const resp = await api("/v1/events");
      // A fresh feed sees no event of a turn that already ended: only a running one of ours
      // still owes an `end`.
      ownTurns.clear();
      if (turnRunning && current) ownTurns.set(current.id, 1);
      await readEvents(resp, (name, ev) => {
        if (name === "approval") showApproval(ev);
        else if (name === "question") showQuestion(ev);
        else if (name === "notice") showNotice(ev);
        else if (name === "agent") feedEvent(ev.thread, ev.event);
        else if (name === "error") status(ev.detail, true);
      });
    } catch (e) {
      if (!token) return;
      status(e.message, true);
    }
    await new Promise((r) => setTimeout(r, 3000));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value); });
  $("signout").addEventListener("click", () => signOut(""));
  $("send").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("input").value.trim();
    if (!text || turnRunning) return;
    $("input").value = "";
    send(text);
  });
  $("cancel").addEventListener("click", () => {
    if (current) api(`/v1/threads/${current.id}/cancel`, { method: "POST", body: {} }).catch((e) => status(e.message, true));
  });
  $("new-thread").addEventListener("click", () => {
    current = null;
    $("thread-title").textContent = "New thread";
    $("messages").replaceChildren();
  });
  $("search").addEventListener("submit", async (e) => {
    e.preventDefault();
    const ol = $("hits");
    ol.replaceChildren();
    try {
      const r = await (await api("/v1/search?q=" + encodeURIComponent($("q").value))).json();
      if (!r.hits.length) ol.append(el("li", "", "no matches"));
      for (const h of r.hits) {
        const b = el("button", "", `${h.thread.name}: ${h.snippet}`);
        b.type = "button";
        b.addEventListener("click", () => openThread(h.thread.id));
        const li = el("li");
        li.append(b);
        ol.append(li);
      }
    } catch (err) { status(err.message, true); }
  });
  if (token) signIn(token);
});

// The "Agent & audit" view: the principal's model, capsules, tools, grants and audit chain.
let auditAfter = 0;         // the next audit page starts after this seq
let auditDone = false;      // the last page (with the signed head) has been shown

function showView(name) {
  $("app").hidden = name !== "chat";
  $("account").hidden = name !== "account";
  $("show-chat").setAttribute("aria-pressed", String(name === "chat"));
  $("show-account").setAttribute("aria-pressed", String(name === "account"));
  if (name === "account") loadAccount().catch((e) => accountStatus(e.message, true));
}

function accountStatus(text, isError) {
  $("account-status").textContent = text;
  $("account-status").className = isError ? "error" : "";
}

function showModel(m) {
  const from = { selected: "chosen here", config: "the operator's setting", default: "the provider's default" }[m.source] || m.source;
  $("model-current").textContent = `${m.provider} · ${m.model || "(provider default)"} — ${from}`;
}

async function loadAccount() {
  const [model, caps] = await Promise.all([
    api("/v1/model").then((r) => r.json()),
    api("/v1/capsules").then((r) => r.json()),
  ]);
  showModel(model);
  const ul = $("capsules");
  ul.replaceChildren();
  for (const c of caps.capsules) {
    const li = el("li", "", `${c.name} ${c.version} (${c.state})${c.description ? ": " + c.description : ""}`);
    if (c.tools.length) li.append(el("div", "tools", "tools: " + c.tools.join(", ")));
    if (c.error) li.append(el("div", "error", c.error));
    ul.append(li);
  }
  const grants = $("grants");
  grants.replaceChildren();
  for (const g of caps.grants) grants.append(el("li", "", g.pattern + (g.capsule ? ` (only ${g.capsule})` : "")));
  if (!caps.grants.length) grants.append(el("li", "", "none"));
  $("audit-rows").replaceChildren();
  auditAfter = 0;
  auditDone = false;
  await auditPage();
  // The live list last: it asks the provider, which may be slow or away.
  try {
    const models = await (await api("/v1/models")).json();
    const pick = $("model-pick");
    pick.replaceChildren();
    for (const m of models.data) {
      const o = el("option", "", m.id);
      o.value = m.id;
      o.selected = m.id === model.model;
      pick.append(o);
    }
  } catch (e) { accountStatus("cannot list the provider's models: " + e.message, true); }
}

async function auditPage() {
  if (auditDone) return;
  const page = await (await api(`/v1/audit?after=${auditAfter}&limit=100`)).json();
  const rows = $("audit-rows");
  for (const e of page.entries) {
    const tr = el("tr", e.decision);
    for (const v of [e.seq, new Date(e.time_ms).toISOString().replace("T", " ").slice(0, 19),
                     e.decision, e.capsule, e.action, e.resource, e.outcome]) tr.append(el("td", "", String(v)));
    rows.append(tr);
  }
  if (page.next_after === null) {
    auditDone = true;
    $("audit-more").disabled = true;
  } else {
    auditAfter = page.next_after;
    $("audit-more").disabled = false;
  }
}

async function auditVerify() {
  const v = await (await api("/v1/audit/verify")).json();
  $("audit-verdict").textContent = v.intact
    ? `intact: ${v.entries} entries, last ${v.last_seq}, signed by key ${v.key_id}; witness ${v.witness}`
    : `NOT intact: ${v.problem}`;
  $("audit-verdict").className = v.intact ? "ok" : "error";
}

async function auditExport() {
  const text = await (await api("/v1/audit/export")).text();
  const a = el("a");
  a.href = URL.createObjectURL(new Blob([text], { type: "application/x-ndjson" }));
  a.download = `audit-${token.split(".")[1]}.jsonl`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

async function selectModel(model) {
  const m = await (await api("/v1/model", { method: "PUT", body: { model } })).json();
  showModel(m);
  accountStatus(model === null ? "back to the configured model" : `now using ${m.model}`);
}

document.addEventListener("DOMContentLoaded", () => {
  $("show-chat").addEventListener("click", () => showView("chat"));
  $("show-account").addEventListener("click", () => showView("account"));
  const failed = (e) => accountStatus(e.message, true);
  $("audit-more").addEventListener("click", () => auditPage().catch(failed));
  $("audit-verify").addEventListener("click", () => auditVerify().catch(failed));
  $("audit-export").addEventListener("click", () => auditExport().catch(failed));
  $("model-form").addEventListener("submit", (e) => { e.preventDefault(); selectModel($("model-pick").value).catch(failed); });
  $("model-reset").addEventListener("click", () => selectModel(null).catch(failed));
});
