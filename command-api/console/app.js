// The operator console: signs an administrator in on the command API, then reads and acts
// on the projector and the workers through the command API's /console/api/ relay (one
// origin, so no CORS). Everything shown is written with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("console.token"), page: 1, perPage: 20, selected: null };

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function call(method, path, body) {
  const headers = { authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return null;
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = answer.error ? `${answer.error.code}: ${answer.error.message}` : `HTTP ${response.status}`;
    if (response.status === 401) signOut("Your session ended; sign in again.");
    throw new HttpError(response.status, message);
  }
  return answer;
}
const workers = (path, method = "GET", body) => call(method, `/console/api/workers/${path}`, body);
const projector = (path, method = "GET", body) => call(method, `/console/api/projector/${path}`, body);

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (className) td.className = className;
  return td;
}
function fill(tableId, items, columns) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren();
  for (const item of items) {
    const row = body.insertRow();
    for (const column of columns) column(row, item);
  }
}
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
function showError(error) { $("app-error").textContent = error ? String(error.message || error) : ""; }

function signOut(message) {
  state.token = null;
  sessionStorage.removeItem("console.token");
  $("app").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("who").textContent = "";
  $("signin-error").textContent = message || "";
}

async function signIn(event) {
  event.preventDefault();
  $("signin-error").textContent = "";
  const response = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: $("email").value, password: $("password").value }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    $("signin-error").textContent = answer.error ? answer.error.message : `HTTP ${response.status}`;
    return;
  }
  if (answer.data.user && answer.data.user.role !== "admin") {
    $("signin-error").textContent = "This console is for administrators.";
    return;
  }
  state.token = answer.data.accessToken;
  sessionStorage.setItem("console.token", state.token);
  $("password").value = "";
  $("who").textContent = answer.data.user ? answer.data.user.email : "";
  await start();
}

async function start() {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = false;
  await refresh();
}

async function refresh() {
  showError(null);
  const results = await Promise.allSettled([loadProjections(), loadGenerations(), loadConsumers(), loadDeadLetters(), loadRuns(), loadActions()]);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) showError(failed.reason);
  $("refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function loadProjections() {
  const answer = await projector("projections");
  fill("projections", answer.data, [
    (r, p) => cell(r, p.name),
    (r, p) => cell(r, stateText(p), `state-${p.state.replaceAll(" ", "-")}`),
    (r, p) => cell(r, p.checkpoint),
    (r, p) => cell(r, p.numPending),
    (r, p) => cell(r, p.numAckPending),
    (r, p) => cell(r, p.lagSeconds === null ? null : p.lagSeconds.toFixed(1)),
    (r, p) => cell(r, p.rows),
  ]);
}

function stateText(p) {
  if (p.rebuild) return `rebuilding: ${rebuildText(p.rebuild)}`;
  if (p.heldAt) return `held at a gap: stream ${p.heldAt.streamId} at v${p.heldAt.after} waits for v${p.heldAt.after + 1} (delivered v${p.heldAt.upto}) since ${when(p.heldAt.since)}`;
  return p.state;
}

function rebuildText(run) {
  const rate = run.ratePerSecond === null ? "—" : `${Math.round(run.ratePerSecond)} events/s`;
  return `${run.phase}, ${run.eventsDone} of ${run.eventsTotal} events (${run.percent.toFixed(0)}%), ${rate}, ETA ${duration(run.etaSeconds)}`;
}

async function loadGenerations() {
  const answer = await projector("projections/generations");
  fill("generations", answer.data, [
    (r, g) => cell(r, g.generation),
    (r, g) => cell(r, g.state, `state-${g.state}`),
    (r, g) => cell(r, g.schema),
    (r, g) => cell(r, g.position),
    (r, g) => cell(r, when(g.liveSince)),
    (r, g) => cell(r, when(g.retiredAt)),
    (r, g) => {
      const td = r.insertCell();
      if (g.state !== "retired") return;
      const activate = document.createElement("button");
      activate.type = "button";
      activate.textContent = "Roll back to this";
      activate.dataset.generation = String(g.generation);
      activate.addEventListener("click", () => followRebuild(`projections/generations/${g.generation}/activate`).catch(showError));
      const drop = document.createElement("button");
      drop.type = "button";
      drop.textContent = "Drop";
      drop.addEventListener("click", () => dropGeneration(g.generation).catch(showError));
      td.append(activate, " ", drop);
    },
  ]);
}

/// Starts a rebuild (or a rollback) and follows it until it ends.
async function followRebuild(path) {
  const reason = $("rebuild-reason").value.trim();
  const started = await projector(path, "POST", reason ? { reason } : {});
  $("rebuild-status").hidden = false;
  let run = started.data;
  for (;;) {
    $("rebuild-progress").value = run.percent;
    $("rebuild-text").textContent =
      `${run.kind} to generation ${run.generation}: ${run.status}, ${rebuildText(run)}` + (run.error ? ` (${run.error})` : "");
    if (run.status !== "running" || run.stalled) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
    run = (await projector(`projections/rebuilds/${run.id}`)).data;
  }
  await refresh();
}

async function dropGeneration(generation) {
  const reason = $("rebuild-reason").value.trim();
  const query = reason ? `?reason=${encodeURIComponent(reason)}` : "";
  await projector(`projections/generations/${generation}${query}`, "DELETE");
  $("rebuild-status").hidden = false;
  $("rebuild-text").textContent = `generation ${generation} dropped`;
  await refresh();
}

async function loadConsumers() {
  const answer = await workers("consumers");
  fill("consumers", answer.data, [
    (r, c) => cell(r, c.name),
    (r, c) => cell(r, c.filterSubject),
    (r, c) => cell(r, c.numPending),
    (r, c) => cell(r, c.numAckPending),
    (r, c) => cell(r, c.numRedelivered),
    (r, c) => cell(r, c.ackFloorStreamSequence),
  ]);
}

function filter() {
  const f = {
    status: $("f-status").value,
    effect: $("f-effect").value.trim(),
    error: $("f-error").value.trim(),
    olderThan: $("f-older").value.trim(),
    newerThan: $("f-newer").value.trim(),
  };
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v !== ""));
}

async function loadDeadLetters() {
  const query = new URLSearchParams({ ...filter(), page: state.page, perPage: state.perPage });
  const answer = await workers(`dead-letters?${query}`);
  const paging = answer.meta.pagination;
  $("dl-count").textContent = `${paging.total} match`;
  $("page").textContent = `page ${paging.page} of ${Math.max(paging.totalPages, 1)}`;
  $("prev").disabled = !paging.hasPrev;
  $("next").disabled = !paging.hasNext;
  fill("dead-letters", answer.data, [
    (r, d) => cell(r, when(d.createdAt)),
    (r, d) => cell(r, d.effect),
    (r, d) => cell(r, d.error, "error-text"),
    (r, d) => cell(r, d.attempts),
    (r, d) => cell(r, d.status),
    (r, d) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Inspect";
      button.dataset.id = d.id;
      button.className = "inspect";
      button.addEventListener("click", () => inspect(d.id).catch(showError));
      r.insertCell().append(button);
    },
  ]);
}

async function inspect(id) {
  const answer = await workers(`dead-letters/${id}`);
  state.selected = answer.data;
  $("detail").hidden = false;
  $("d-id").textContent = id;
  $("d-error").textContent = answer.data.error;
  $("d-event").textContent = JSON.stringify(answer.data.event, null, 2);
  $("d-outcome").textContent = `status: ${answer.data.status}, attempts: ${answer.data.attempts}`;
}

async function retryOne() {
  const id = state.selected.id;
  $("d-outcome").textContent = "retrying…";
  try {
    const answer = await workers(`dead-letters/${id}/retry`, "POST");
    $("d-outcome").textContent = `retried: ${answer.data.status}`;
  } catch (error) {
    $("d-outcome").textContent = `retry failed: ${error.message}`;
  }
  await refresh();
}

async function discardOne() {
  const id = state.selected.id;
  const reason = $("d-reason").value.trim();
  if (!reason) {
    $("d-outcome").textContent = "give a reason to discard";
    return;
  }
  try {
    await workers(`dead-letters/${id}?${new URLSearchParams({ reason })}`, "DELETE");
    $("d-outcome").textContent = "discarded";
  } catch (error) {
    $("d-outcome").textContent = `not discarded: ${error.message}`;
  }
  await refresh();
}

async function retryAll() {
  const body = { ...filter() };
  delete body.status;
  const reason = $("bulk-reason").value.trim();
  if (reason) body.reason = reason;
  const started = await workers("dead-letters/retries", "POST", body);
  $("bulk").hidden = false;
  let run = started.data;
  for (;;) {
    const total = Math.max(run.total, 1);
    $("bulk-progress").max = total;
    $("bulk-progress").value = run.processed;
    const rate = run.ratePerSecond === null ? "—" : `${run.ratePerSecond.toFixed(1)}/s`;
    $("bulk-text").textContent =
      `${run.status}: ${run.processed} of ${run.total}, ${run.resolved} resolved, ${run.failed} failed, ${rate}, ETA ${duration(run.etaSeconds)}` +
      (run.lastError ? ` (last error: ${run.lastError})` : "");
    if (run.status !== "running" || run.stalled) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
    run = (await workers(`dead-letters/retries/${run.id}`)).data;
  }
  await refresh();
}

async function loadRuns() {
  const answer = await workers("dead-letters/retries?perPage=10");
  fill("runs", answer.data, [
    (r, x) => cell(r, when(x.startedAt)),
    (r, x) => cell(r, x.stalled ? "stalled" : x.status),
    (r, x) => cell(r, `${x.processed} / ${x.total}`),
    (r, x) => cell(r, x.resolved),
    (r, x) => cell(r, x.failed),
    (r, x) => cell(r, x.ratePerSecond === null ? null : x.ratePerSecond.toFixed(1)),
    (r, x) => cell(r, x.reason),
  ]);
}

async function loadActions() {
  const answer = await workers("operator-actions?perPage=20");
  fill("actions", answer.data, [
    (r, a) => cell(r, when(a.at)),
    (r, a) => cell(r, a.actorId),
    (r, a) => cell(r, a.action),
    (r, a) => cell(r, a.target),
    (r, a) => cell(r, a.reason),
    (r, a) => cell(r, a.outcome),
  ]);
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (e) => signIn(e).catch((error) => { $("signin-error").textContent = String(error); }));
  $("signout").addEventListener("click", () => signOut());
  $("refresh").addEventListener("click", () => refresh());
  $("filter").addEventListener("submit", (e) => { e.preventDefault(); state.page = 1; showError(null); loadDeadLetters().catch(showError); });
  $("prev").addEventListener("click", () => { state.page = Math.max(1, state.page - 1); loadDeadLetters().catch(showError); });
  $("next").addEventListener("click", () => { state.page += 1; loadDeadLetters().catch(showError); });
  $("retry-all").addEventListener("click", () => retryAll().catch(showError));
  $("rebuild").addEventListener("click", () => followRebuild("projections/rebuilds").catch(showError));
  $("d-retry").addEventListener("click", () => retryOne().catch(showError));
  $("d-discard").addEventListener("click", () => discardOne().catch(showError));
  setInterval(() => { if (state.token && !document.hidden) loadProjections().catch(() => {}); }, 5000);
  if (state.token) start().catch(showError);
});
