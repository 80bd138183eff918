// The Greenroom admin console: plain JavaScript over the admin API
// (/api/v1, schemas/api/openapi.yaml), no framework and no build step. The
// page (console.html, rendered by the config service) holds every view and
// form; this script shows one at a time by the address after #/, fills
// tables from the API a page at a time, submits forms as JSON and shows a
// refused field's problem next to it, and keeps the page live from the
// bus's events (GET /api/v1/events, Server-Sent Events).
"use strict";

// PAGE_SIZE is the rows of a table page: 50, or ?page_size= (1 to 1000)
// of the console's address.
const PAGE_SIZE = Math.min(1000, Math.max(1, Number(new URLSearchParams(location.search).get("page_size")) || 50));
const TOKEN_KEY = "greenroom-admin-token";

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  page: null, // the <section> shown
  cursor: "", // the ?cursor= of the list page shown ("" the first)
  refresh: null, // re-renders the page shown (for live updates)
  events: null, // AbortController of the event stream
  pendingEvent: null, // the event a scheduled refresh is for
  refreshTimer: 0,
  rendered: 0, // live refreshes done
  renders: 0, // renders started: a response older than the latest is dropped
  armed: null, // the confirm button armed: {id, timer}
};

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// ------------------------------------------------------------------ API

class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) {
    signOut("Your token is no longer accepted; sign in again.");
    throw new Problem(401, { detail: "signed out" });
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { detail: text }; }
  }
  if (!res.ok) throw new Problem(res.status, data);
  return data;
}

// all reads every page of a collection (for the choices of a form).
async function all(collection, query = "") {
  const items = [];
  let cursor = "";
  for (;;) {
    const q = new URLSearchParams(query);
    q.set("limit", "1000");
    if (cursor) q.set("cursor", cursor);
    const page = await api("GET", `/api/v1/${collection}?${q}`);
    items.push(...page.items);
    if (!page.next_cursor) return items;
    cursor = page.next_cursor;
  }
}

// ------------------------------------------------------------------ sign-in

function signOut(message) {
  state.token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  if (state.events) state.events.abort();
  state.events = null;
  location.hash = "#/sign-in";
  route();
  if (message) $('#sign-in [data-error-for="token"]').textContent = message;
}

async function signIn(ev) {
  ev.preventDefault();
  const input = $("#sign-in-token");
  const error = $('#sign-in [data-error-for="token"]');
  error.textContent = "";
  const token = input.value.trim();
  if (!token) {
    error.textContent = "Enter the admin token.";
    return;
  }
  const res = await fetch("/api/v1/zones?limit=1", { headers: { Authorization: `Bearer ${token}` } });
  if (res.status === 401 || res.status === 403) {
    error.textContent = res.status === 401 ? "This token is not accepted." : "This key may not administer Greenroom (it lacks the admin scope).";
    return;
  }
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  input.value = "";
  listen();
  location.hash = "#/staging";
}

// ------------------------------------------------------------------ routing

function show(section) {
  for (const s of $$(".page")) s.hidden = s !== section;
  state.page = section;
  state.refresh = null;
  const signedIn = Boolean(state.token);
  $("#nav").hidden = !signedIn;
  $("#sign-out").hidden = !signedIn;
  const current = section.dataset.route || (section.id === "pool" ? "pools" : "");
  for (const a of $$("#nav a")) {
    if (a.dataset.route === current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  for (const d of $$("#nav details")) d.open = false;
}

async function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (!state.token) {
    show($("#sign-in"));
    $("#sign-in-token").focus();
    return;
  }
  const [name, action, key] = parts;
  if (name === "pool" && action) return showPool(action);
  const view = $(`#view-${CSS.escape(name || "")}`);
  if (!view) {
    location.hash = "#/staging";
    return;
  }
  if (action === "new") return showForm($(`#form-${CSS.escape(name)}`), null);
  if (action === "edit" && key) return showForm($(`#form-${CSS.escape(name)}`), key);
  state.cursor = "";
  return showList(view);
}

// ------------------------------------------------------------------ tables

function cell(value, format, item, view) {
  const td = document.createElement("td");
  if (value === null || value === undefined || value === "") {
    td.textContent = "—";
    td.className = "none";
    return td;
  }
  switch (format) {
    case "time":
      td.textContent = new Date(value).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
      td.title = value;
      break;
    case "bool":
      td.textContent = value ? "Yes" : "No";
      break;
    case "list":
      td.textContent = Array.isArray(value) ? value.join(", ") : JSON.stringify(value);
      if (Array.isArray(value) && value.length === 0) { td.textContent = "—"; td.className = "none"; }
      break;
    case "count":
      td.textContent = String(Array.isArray(value) ? value.length : Object.keys(value).length);
      break;
    case "status": {
      const span = document.createElement("span");
      span.className = `status status-${value}`;
      span.textContent = value;
      td.append(span);
      break;
    }
    case "link": {
      const a = document.createElement("a");
      a.href = `#/pool/${encodeURIComponent(item[view.dataset.key])}`;
      a.textContent = value;
      td.append(a);
      break;
    }
    default:
      td.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  return td;
}

// confirmButton is a button that acts on its second click (the first
// asks), so that nothing is deleted by one slip. id names the row and
// action: a button redrawn by a live refresh stays armed.
function confirmButton(label, id, act) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "danger";
  b.dataset.confirm = id;
  const armed = () => state.armed !== null && state.armed.id === id;
  b.textContent = armed() ? `Confirm ${label}` : label;
  b.addEventListener("click", async () => {
    if (!armed()) {
      if (state.armed) clearTimeout(state.armed.timer);
      state.armed = {
        id,
        timer: setTimeout(() => {
          state.armed = null;
          for (const x of $$(`[data-confirm="${CSS.escape(id)}"]`)) x.textContent = label;
        }, 5000),
      };
      b.textContent = `Confirm ${label}`;
      return;
    }
    clearTimeout(state.armed.timer);
    state.armed = null;
    b.disabled = true;
    await act();
  });
  return b;
}

async function showList(view) {
  if (state.page !== view) show(view);
  const render = async () => {
    const seq = ++state.renders;
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (state.cursor) q.set("cursor", state.cursor);
    if (view.dataset.collection === "sessions" && $("#hide-ended").checked) q.set("ended", "false");
    const error = $(".page-error", view);
    let page;
    try {
      page = await api("GET", `/api/v1/${view.dataset.collection}?${q}`);
      error.textContent = "";
    } catch (e) {
      error.textContent = e.message;
      return;
    }
    if (state.page !== view || seq !== state.renders) return; // a later render is under way
    const cols = $$("thead th[data-col]", view);
    const rows = page.items.map((item) => {
      const tr = document.createElement("tr");
      const key = item[view.dataset.key];
      tr.dataset.key = key;
      for (const th of cols) tr.append(cell(item[th.dataset.col], th.dataset.format, item, view));
      tr.append(actions(view, item, key));
      return tr;
    });
    $("tbody", view).replaceChildren(...rows);
    $(".empty", view).hidden = rows.length > 0;
    const next = $('[data-page="next"]', view);
    next.disabled = !page.next_cursor;
    next.dataset.cursor = page.next_cursor || "";
    $('[data-page="first"]', view).disabled = !state.cursor;
    $(".count", view).textContent = rows.length ? `${rows.length} shown${page.next_cursor ? ", more on the next page" : ""}` : "";
    painted();
  };
  state.refresh = render;
  await render();
}

function actions(view, item, key) {
  const td = document.createElement("td");
  td.className = "actions";
  if ("edit" in view.dataset) {
    const a = document.createElement("a");
    a.className = "button secondary";
    a.href = `#/${view.dataset.route}/edit/${encodeURIComponent(key)}`;
    a.textContent = "Edit";
    td.append(a);
  }
  const path = `/api/v1/${view.dataset.collection}/${encodeURIComponent(key)}`;
  const remove = async () => {
    try {
      await api("DELETE", path);
    } catch (e) {
      $(".page-error", view).textContent = e.message;
    }
    if (state.refresh) await state.refresh();
  };
  if ("delete" in view.dataset) td.append(confirmButton("Delete", `${view.dataset.route}/${key}/delete`, remove));
  const live = item.status !== "destroyed" && item.status !== "failed" && item.status !== "destroying";
  if (view.dataset.destroy && live) td.append(confirmButton(view.dataset.destroy, `${view.dataset.route}/${key}/destroy`, remove));
  return td;
}

// painted marks the page as drawn: the first time (with the time since
// the page started loading), and after each live refresh (with how long
// after the event's own time), for the console's measurements.
function painted() {
  const body = document.body.dataset;
  if (!body.firstPaintMs) body.firstPaintMs = String(Math.round(performance.now()));
  const ev = state.pendingEvent;
  if (ev) {
    state.pendingEvent = null;
    state.rendered++;
    body.liveRefreshes = String(state.rendered);
    if (ev.time) body.eventToPaintMs = String(Date.now() - Date.parse(ev.time));
  }
}

// ------------------------------------------------------------------ forms

function inputs(form) {
  return $$("[data-input]", form);
}

function readInput(el, creating) {
  const nullable = "nullable" in el.dataset;
  switch (el.dataset.input) {
    case "checkbox":
      return el.checked;
    case "select":
      return el.value === "" ? undefined : el.value;
    case "ref":
      return el.value === "" ? (nullable && !creating ? null : undefined) : el.value;
    case "refs":
      return $$("input:checked", el).map((c) => c.value);
    case "list":
      return el.value.split("\n").map((s) => s.trim()).filter(Boolean);
    case "json":
      if (el.value.trim() === "") return nullable && !creating ? null : undefined;
      try {
        return JSON.parse(el.value);
      } catch (e) {
        throw new Problem(400, { errors: [{ field: el.dataset.name || el.name, detail: `is not JSON: ${e.message}` }] });
      }
    case "number":
      if (el.value === "") return nullable && !creating ? null : undefined;
      return Number(el.value);
    case "password":
      return el.value === "" ? undefined : el.value;
    default:
      return el.value === "" ? (creating ? undefined : nullable ? null : "") : el.value;
  }
}

function writeInput(el, value) {
  switch (el.dataset.input) {
    case "checkbox":
      el.checked = value === undefined ? el.dataset.default === "true" : Boolean(value);
      break;
    case "select":
      el.value = value === undefined ? el.dataset.default || "" : value ?? "";
      break;
    case "ref":
      if (value && !$$("option", el).some((o) => o.value === value)) el.append(new Option(value, value));
      el.value = value ?? "";
      break;
    case "refs":
      for (const c of $$("input", el)) c.checked = Array.isArray(value) && value.includes(c.value);
      break;
    case "list":
      el.value = Array.isArray(value) ? value.join("\n") : "";
      break;
    case "json":
      el.value = value === null || value === undefined ? "" : JSON.stringify(value, null, 2);
      break;
    case "password":
      el.value = "";
      break;
    default:
      el.value = value ?? "";
  }
}

async function fillChoices(form) {
  const wanted = new Map();
  for (const el of inputs(form)) {
    if (el.dataset.ref) wanted.set(el.dataset.ref, null);
  }
  await Promise.all(Array.from(wanted.keys()).map(async (c) => wanted.set(c, await all(c))));
  for (const el of inputs(form)) {
    const items = wanted.get(el.dataset.ref);
    if (!items) continue;
    const [field, want] = (el.dataset.refFilter || "=").split("=");
    const names = items.filter((i) => !field || i[field] === want).map((i) => i.name ?? i.username);
    if (el.dataset.input === "refs") {
      el.replaceChildren(...names.map((n) => {
        const label = document.createElement("label");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.value = n;
        label.append(box, ` ${n}`);
        return label;
      }));
      if (!names.length) el.textContent = "None yet.";
    } else {
      const first = el.options[0];
      el.replaceChildren(first, ...names.map((n) => new Option(n, n)));
    }
  }
}

function clearErrors(form) {
  for (const p of $$(".error", form)) p.textContent = "";
  for (const f of $$(".field", form)) f.classList.remove("invalid");
  for (const el of $$("[aria-invalid]", form)) el.removeAttribute("aria-invalid");
}

// showProblem puts each of a problem's errors next to its field (the first
// part of a dotted path), and what has no field above the buttons.
function showProblem(form, problem) {
  const errors = problem.body.errors && problem.body.errors.length
    ? problem.body.errors
    : [{ field: problem.body.field || "", detail: problem.message }];
  let first = null;
  for (const { field, detail } of errors) {
    const name = (field || "").split(/[.[]/)[0];
    const box = name && $(`.field[data-field="${CSS.escape(name)}"]`, form);
    const where = box ? $(".error", box) : $(".form-error", form);
    const text = box && field !== name ? `${field}: ${detail}` : detail;
    where.textContent = where.textContent ? `${where.textContent} ${text}` : text;
    if (box) {
      box.classList.add("invalid");
      const el = $("[data-input]", box);
      if (el) el.setAttribute("aria-invalid", "true");
      first = first || box;
    }
  }
  if (problem.status !== 400 && !problem.body.errors) {
    $(".form-error", form).textContent = problem.message;
  }
  (first || $(".form-error", form)).scrollIntoView({ block: "center" });
}

async function showForm(section, key) {
  show(section);
  const form = $("form", section);
  const creating = key === null;
  const h1 = $("h1", section);
  h1.textContent = creating ? h1.dataset.create : `${h1.dataset.edit} ${key}`;
  clearErrors(form);
  form.reset();
  const submit = $('button[type="submit"]', form);
  submit.disabled = true;
  let item;
  try {
    await fillChoices(form);
    if (!creating) item = await api("GET", `/api/v1/${section.dataset.collection}/${encodeURIComponent(key)}`);
  } catch (e) {
    $(".form-error", form).textContent = e.message;
    return;
  }
  for (const el of inputs(form)) {
    const name = el.name || el.dataset.name;
    writeInput(el, item ? item[name] : undefined);
    const locked = !creating && "createOnly" in el.dataset;
    if (el.dataset.input === "refs") for (const c of $$("input", el)) c.disabled = locked;
    else el.disabled = locked;
  }
  const initial = creating ? null : snapshot(form, false);
  if (section.id === "form-pools") await showPoolAutoscale(section, creating ? null : key);
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    let body;
    try {
      body = creating ? snapshot(form, true) : changes(snapshot(form, false), initial);
    } catch (e) {
      showProblem(form, e);
      return;
    }
    const collection = section.dataset.collection;
    submit.disabled = true;
    try {
      if (creating) await api("POST", `/api/v1/${collection}`, body);
      else await api("PATCH", `/api/v1/${collection}/${encodeURIComponent(key)}`, body);
      location.hash = `#/${section.dataset.route}`;
    } catch (e) {
      showProblem(form, e);
    } finally {
      submit.disabled = false;
    }
  };
  submit.disabled = false;
}

// snapshot reads a form into a body: every field with a value when
// creating, every field that may change when editing.
function snapshot(form, creating) {
  const body = {};
  const errors = [];
  for (const el of inputs(form)) {
    if (el.disabled || (el.dataset.input === "refs" && $$("input", el).some((c) => c.disabled))) continue;
    const name = el.name || el.dataset.name;
    try {
      const v = readInput(el, creating);
      if (v !== undefined) body[name] = v;
    } catch (e) {
      errors.push(...e.body.errors);
    }
  }
  if (errors.length) throw new Problem(400, { errors });
  return body;
}

// changes is what an edit changed: a PATCH sends only that.
function changes(now, before) {
  const out = {};
  for (const [k, v] of Object.entries(now)) {
    if (JSON.stringify(v) !== JSON.stringify(before[k])) out[k] = v;
  }
  return out;
}

// ------------------------------------------------------------------ pools

async function showPool(name) {
  const page = $("#pool");
  show(page);
  const error = $(".page-error", page);
  const form = $("#assign-form");
  const render = async () => {
    const seq = ++state.renders;
    let pool;
    let members;
    try {
      pool = await api("GET", `/api/v1/pools/${encodeURIComponent(name)}`);
      const kind = pool.type === "server" ? "servers" : "agents";
      members = await all(kind);
      error.textContent = "";
      page.dataset.kind = kind;
    } catch (e) {
      error.textContent = e.message;
      return;
    }
    if (state.page !== page || seq !== state.renders) return; // a later render is under way
    const servers = pool.type === "server";
    $(".pool-name", page).textContent = pool.name;
    $("[data-pool-edit]", page).href = `#/pools/edit/${encodeURIComponent(pool.name)}`;
    const details = [
      ["Type", servers ? "Server" : "Docker Agent"],
      ["Server Assignment", pool.server_assignment ? "Yes" : "No"],
      ["Labels", (pool.labels || []).join(", ") || "—"],
      ["Workspaces", (pool.workspaces || []).join(", ") || "—"],
    ];
    $(".pool-details", page).replaceChildren(...details.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      return [dt, dd];
    }));
    const label = servers ? "Servers" : "Docker Agents";
    $(".members-title", page).textContent = label;
    $(".member-kind", page).textContent = label;
    const inPool = members.filter((m) => m.pool === pool.name);
    const others = members.filter((m) => m.pool !== pool.name);
    const select = $("#assign-member");
    const keep = select.value;
    select.replaceChildren(new Option(others.length ? "(choose)" : "(none left to assign)", ""),
      ...others.map((m) => new Option(m.pool ? `${m.name} (now in ${m.pool})` : m.name, m.name)));
    if (others.some((m) => m.name === keep)) select.value = keep;
    $("tbody", page).replaceChildren(...inPool.map((m) => {
      const tr = document.createElement("tr");
      tr.dataset.key = m.name;
      for (const v of [m.name, m.zone, m.enabled ? "Yes" : "No", String(m.sessions ?? 0)]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      const td = document.createElement("td");
      td.className = "actions";
      td.append(confirmButton("Unassign", `pool/${name}/${m.name}/unassign`, async () => {
        try {
          await api("PATCH", `/api/v1/${page.dataset.kind}/${encodeURIComponent(m.name)}`, { pool: null });
        } catch (e) {
          error.textContent = e.message;
        }
        await render();
      }));
      tr.append(td);
      return tr;
    }));
    $(".empty", page).hidden = inPool.length > 0;
    painted();
  };
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const member = $("#assign-member").value;
    if (!member) {
      $('[data-error-for="member"]', form).textContent = "Choose one to assign.";
      return;
    }
    try {
      await api("PATCH", `/api/v1/${page.dataset.kind}/${encodeURIComponent(member)}`, { pool: name });
    } catch (e) {
      showProblem(form, e.body.field === "pool" ? new Problem(e.status, { errors: [{ field: "member", detail: e.message }] }) : e);
      return;
    }
    await render();
  };
  state.refresh = render;
  await render();
}

// showPoolAutoscale shows, on a pool's Edit page, the autoscale configs
// that add and remove the pool's agents (Kasm's recommended way to reach
// them: the Edit option of a specific pool).
async function showPoolAutoscale(section, pool) {
  const box = $(".pool-autoscale", section);
  box.hidden = pool === null;
  if (pool === null) return;
  let configs;
  try {
    configs = (await all("autoscale-configs")).filter((c) => c.pool === pool);
  } catch (e) {
    $(".form-error", section).textContent = e.message;
    return;
  }
  $("tbody", box).replaceChildren(...configs.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.key = c.name;
    const agents = (c.agents || []).map((a) => `${a.name} (${a.lifecycle})`).join(", ");
    for (const v of [c.name, c.zone, c.enabled ? "Yes" : "No", String(c.standby_cores), String(c.standby_memory_mb),
      String(c.min_agents), String(c.max_agents), c.vm_provider, c.dns_provider || "—", agents || "—", c.last_decision || "—"]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    const td = document.createElement("td");
    td.className = "actions";
    const a = document.createElement("a");
    a.href = `#/autoscale/edit/${encodeURIComponent(c.name)}`;
    a.textContent = "Edit";
    td.append(a);
    tr.append(td);
    return tr;
  }));
  $(".empty", box).hidden = configs.length > 0;
}

// ------------------------------------------------------------------ live

// listen reads the bus's events (GET /api/v1/events) for as long as the
// administrator is signed in, reconnecting after a pause when the stream
// ends, and refreshes the page shown when an event concerns it.
async function listen() {
  if (state.events) state.events.abort();
  const ctl = new AbortController();
  state.events = ctl;
  const live = $("#live");
  while (state.token && !ctl.signal.aborted) {
    try {
      const res = await fetch("/api/v1/events", { headers: { Authorization: `Bearer ${state.token}` }, signal: ctl.signal });
      if (res.status === 401) {
        signOut("Your token is no longer accepted; sign in again.");
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          onEvent(block, live);
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    live.textContent = "reconnecting";
    live.className = "live off";
    document.body.dataset.live = "false";
    await new Promise((r) => setTimeout(r, 2000)); // then "ready" re-reads the page
  }
}

// QUIET_EVENTS change nothing a page shows but a deadline: a busy
// deployment sends many, and a page re-read for each would never rest.
const QUIET_EVENTS = new Set(["greenroom.session.keepalive"]);

function onEvent(block, live) {
  let name = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) name = line.slice(7);
    else if (line.startsWith("data: ")) data += line.slice(6);
  }
  if (name === "ready") {
    live.textContent = "live";
    live.className = "live on";
    document.body.dataset.live = "true";
    // Subscribed from now on: re-read what may have changed before.
    if (state.refresh) state.refresh();
    return;
  }
  const page = state.page;
  if (!page || !state.refresh || QUIET_EVENTS.has(name)) return;
  const prefixes = (page.dataset.events || "").split(" ").filter(Boolean);
  if (!prefixes.some((p) => name.startsWith(p))) return;
  let ev = {};
  try { ev = JSON.parse(data); } catch { /* not an event: refresh all the same */ }
  if (!state.pendingEvent) state.pendingEvent = ev;
  // Events come in bursts (a request, its decision, its container): at
  // most one re-read every 100 ms, never put off by the next event.
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(() => {
    state.refreshTimer = 0;
    if (state.refresh) state.refresh();
  }, 100);
}

// ------------------------------------------------------------------ start

function start() {
  $("#sign-in-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", () => signOut(""));
  $("#hide-ended").addEventListener("change", () => {
    state.cursor = "";
    if (state.refresh) state.refresh();
  });
  for (const view of $$(".view")) {
    $('[data-page="next"]', view).addEventListener("click", (ev) => {
      state.cursor = ev.target.dataset.cursor;
      state.refresh();
    });
    $('[data-page="first"]', view).addEventListener("click", () => {
      state.cursor = "";
      state.refresh();
    });
  }
  // A click anywhere else closes the Infrastructure menu.
  document.addEventListener("click", (ev) => {
    for (const d of $$("#nav details")) if (!d.contains(ev.target)) d.open = false;
  });
  window.addEventListener("hashchange", route);
  // A page kept in the back/forward cache must not hold its stream open:
  // over HTTP/1.1 a browser has six connections to a host, and hidden
  // pages' streams would leave the shown page's API calls waiting.
  window.addEventListener("pagehide", () => {
    if (state.events) state.events.abort();
    state.events = null;
  });
  window.addEventListener("pageshow", (ev) => {
    if (ev.persisted && state.token) listen();
  });
  if (state.token) listen();
  route();
}

start();
