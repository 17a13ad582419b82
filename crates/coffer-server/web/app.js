// coffer's web archive browser: pages drawn from the REST API under
// /api/v1, with the session cookie the sign-in set. Changes carry the
// CSRF token the sign-in left in the coffer_csrf cookie. Every text from
// the store is set as text, never as HTML.
"use strict";

const view = document.getElementById("view");
const flash = document.getElementById("flash");
let session = { name: "", scope: "read", prefix: "" };

// --- small helpers -------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function csrf() {
  const found = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith("coffer_csrf="));
  return found ? found.slice("coffer_csrf=".length) : "";
}

function keyPath(key) {
  return key.split("/").map(encodeURIComponent).join("/");
}

async function api(path, options = {}) {
  const headers = Object.assign({ "X-CSRF-Token": csrf() }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers, credentials: "same-origin" }));
  if (response.status === 401) {
    location.href = "/ui/login";
    throw new Error("signed out");
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error(body && body.detail ? body.detail : `${response.status} ${response.statusText}`);
  return body;
}

function say(text, ok) {
  flash.textContent = text;
  flash.className = ok ? "ok" : "";
  flash.hidden = !text;
}

// Times come as RFC 3339 text (UTC): shown to the second.
function when(at) {
  return String(at).replace("T", " ").slice(0, 19);
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

function change(n) {
  if (n === 0) return el("span", { class: "muted" }, "±0");
  return el("span", { class: n > 0 ? "grow" : "shrink" }, (n > 0 ? "+" : "−") + bytes(Math.abs(n)));
}

const canWrite = () => session.scope === "write" || session.scope === "admin";

// --- pages ----------------------------------------------------------------

async function browse(prefix) {
  const [listing] = await Promise.all([
    api(`/api/v1/objects?delimiter=/&prefix=${encodeURIComponent(prefix)}`),
  ]);
  const crumbs = el("p", { class: "crumbs" }, el("a", { href: "#/browse/" }, "all"));
  let walked = "";
  for (const part of prefix.split("/").filter(Boolean)) {
    walked += part + "/";
    crumbs.append(" / ", el("a", { href: `#/browse/${walked}` }, part));
  }
  const rows = [
    ...listing.common_prefixes.map((p) =>
      el("tr", {}, el("td", {}, el("a", { href: `#/browse/${p}` }, p.slice(prefix.length))), el("td", {}), el("td", {}))),
    ...listing.objects.map((o) =>
      el("tr", {},
        el("td", {}, el("a", { href: `#/object/${o.key}` }, o.key.slice(prefix.length))),
        el("td", { class: "num" }, bytes(o.size)),
        el("td", {}, when(o.created_at)))),
  ];
  const results = el("div", { id: "results" });
  const search = el("form", { class: "inline", id: "search", onsubmit: async (event) => {
    event.preventDefault();
    const q = event.target.q.value;
    const page = await api(`/api/v1/search?q=${encodeURIComponent(q)}&prefix=${encodeURIComponent(prefix)}`);
    results.replaceChildren(
      el("h3", {}, `${page.hits.length} found for “${q}”`),
      el("table", {}, page.hits.map((hit) => el("tr", {},
        el("td", {}, el("a", { href: `#/object/${hit.version.key}` }, hit.version.key)),
        el("td", { class: "num" }, bytes(hit.version.size)),
        el("td", {}, when(hit.version.created_at))))));
  } },
    el("input", { name: "q", type: "search", placeholder: "search words, tags…", required: true }),
    el("button", { type: "submit" }, "Search"));
  view.replaceChildren(
    el("h2", {}, prefix || "All keys"), crumbs, search, results,
    el("table", { id: "listing" }, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Size"), el("th", {}, "Modified")), rows),
    listing.is_truncated ? el("p", { class: "muted" }, "More keys follow; narrow the prefix.") : null);
}

async function objectPage(key) {
  const [history, versions] = await Promise.all([
    api(`/api/v1/history/${keyPath(key)}`),
    api(`/api/v1/versions/${keyPath(key)}`),
  ]);
  const latest = versions.find((v) => v.is_latest) || versions[0];
  // A history entry is its version's fields and its size_change.
  const rows = history.map((v, i) => {
    return el("tr", { "data-version": v.version_id },
      el("td", {}, el("input", { type: "radio", name: "from", value: v.version_id, checked: i === 1 || (history.length === 1) })),
      el("td", {}, el("input", { type: "radio", name: "to", value: v.version_id, checked: i === 0 })),
      el("td", {}, v.is_delete_marker ? "delete marker" : el("a", { href: `/api/v1/objects/${keyPath(key)}?version=${encodeURIComponent(v.version_id)}`, download: "" }, v.version_id)),
      el("td", {}, when(v.created_at)),
      el("td", {}, v.created_by),
      el("td", { class: "num" }, bytes(v.size)),
      el("td", { class: "num" }, change(v.size_change)),
      el("td", {}, Object.entries(v.tags || {}).map(([n, val]) => el("span", { class: "tag" }, `${n}=${val}`))));
  });
  const diff = el("div", { id: "diff" });
  const table = el("table", { id: "history" },
    el("tr", {}, ["from", "to", "version", "made", "by", "size", "change", "tags"].map((h) => el("th", {}, h))), rows);
  const compare = el("button", { id: "compare", onclick: async () => {
    const from = table.querySelector("input[name=from]:checked");
    const to = table.querySelector("input[name=to]:checked");
    if (!from || !to) return say("choose two versions to compare");
    const result = await api(`/api/v1/compare/${keyPath(key)}?from=${encodeURIComponent(from.value)}&to=${encodeURIComponent(to.value)}`);
    diff.replaceChildren(renderDiff(result));
  } }, "Compare");
  const parts = [
    el("h2", {}, key),
    el("p", { class: "crumbs" }, el("a", { href: `#/browse/${key.includes("/") ? key.slice(0, key.lastIndexOf("/") + 1) : ""}` }, "back to the folder"),
      " · ", latest && !latest.is_delete_marker ? el("a", { href: `/api/v1/objects/${keyPath(key)}`, download: "", id: "download" }, "download the latest") : "deleted"),
    el("section", {}, el("h3", {}, "History"), table, compare, diff),
  ];
  if (latest) parts.push(tagsSection(key, latest), commentsSection(key, latest));
  if (canWrite()) parts.push(uploadSection(key));
  view.replaceChildren(...parts);
}

function renderDiff(result) {
  const out = [el("p", {}, `size change: `, change(result.size_change), result.same_content ? " · same content" : "")];
  for (const [what, changes] of [["metadata", result.metadata], ["tags", result.tags]]) {
    for (const [name, c] of Object.entries(changes || {})) {
      out.push(el("p", {}, `${what} ${name}: ${c.before ?? "(none)"} → ${c.after ?? "(none)"}`));
    }
  }
  if (result.text_diff.unified !== undefined) {
    const pre = el("pre", { class: "diff" });
    for (const line of result.text_diff.unified.split("\n")) {
      const cls = line.startsWith("@@") ? "hunk" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : null;
      pre.append(el("span", cls ? { class: cls } : { style: "display:block" }, line));
    }
    out.push(pre);
  } else {
    out.push(el("p", { class: "muted" }, `no text diff: ${result.text_diff.skipped}`));
  }
  return el("div", {}, out);
}

function tagsSection(key, latest) {
  const tags = Object.entries(latest.tags || {});
  const list = el("p", { id: "tags" }, tags.length ? tags.map(([n, v]) => el("span", { class: "tag" }, `${n}=${v}`,
    canWrite() ? el("button", { title: `remove ${n}`, onclick: () => retag(key, latest, {}, [n]) }, "×") : null)) : el("span", { class: "muted" }, "no tags"));
  const form = canWrite() ? el("form", { class: "inline", id: "tag-form", onsubmit: (event) => {
    event.preventDefault();
    retag(key, latest, { [event.target.name.value]: event.target.value.value }, []);
  } }, el("input", { name: "name", placeholder: "tag", required: true }), el("input", { name: "value", placeholder: "value" }),
    el("button", { type: "submit" }, "Add tag")) : null;
  return el("section", {}, el("h3", {}, `Tags of ${latest.version_id}`), list, form);
}

async function retag(key, latest, set, remove) {
  await api(`/api/v1/tags/${keyPath(key)}?version=${encodeURIComponent(latest.version_id)}`, {
    method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ set, remove }),
  });
  say("tags saved", true);
  route();
}

function commentsSection(key, latest) {
  const comments = (latest.comments || []).map((c) => el("li", {}, `${when(c.at)} ${c.actor}: `, c.text));
  const form = canWrite() ? el("form", { class: "inline", onsubmit: async (event) => {
    event.preventDefault();
    await api(`/api/v1/comments/${keyPath(key)}?version=${encodeURIComponent(latest.version_id)}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: event.target.text.value }),
    });
    say("comment added", true);
    route();
  } }, el("input", { name: "text", placeholder: "comment", required: true, size: 50 }), el("button", { type: "submit" }, "Comment")) : null;
  return el("section", {}, el("h3", {}, "Comments"), comments.length ? el("ul", {}, comments) : el("p", { class: "muted" }, "none"), form);
}

function uploadSection(key) {
  return el("section", {}, el("h3", {}, "Upload a new version"),
    el("form", { class: "inline", id: "upload", onsubmit: async (event) => {
      event.preventDefault();
      const file = event.target.file.files[0];
      if (!file) return say("choose a file");
      const made = await api(`/api/v1/objects/${keyPath(key)}`, {
        method: "PUT", headers: { "Content-Type": file.type || "application/octet-stream" }, body: file,
      });
      say(`stored version ${made.version_id}`, true);
      route();
    } }, el("input", { type: "file", name: "file", required: true }), el("button", { type: "submit" }, "Upload")));
}

async function auditPage(params) {
  const query = new URLSearchParams();
  for (const name of ["key", "actor", "action", "since"]) if (params.get(name)) query.set(name, params.get(name));
  const rows = await api(`/api/v1/audit?${query}`);
  const form = el("form", { class: "inline", id: "audit-filter", onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of ["key", "actor", "action", "since"]) if (event.target[name].value) next.set(name, event.target[name].value);
    location.hash = `#/audit?${next}`;
  } }, ["key", "actor", "action", "since"].map((name) => el("input", { name, placeholder: name === "since" ? "since (2026-01-01, 2h)" : name, value: params.get(name) || "" })),
    el("button", { type: "submit" }, "Filter"));
  view.replaceChildren(el("h2", {}, "Audit log"), form,
    el("table", { id: "audit" }, el("tr", {}, ["when", "actor", "action", "key", "version"].map((h) => el("th", {}, h))),
      rows.map((r) => el("tr", {}, el("td", {}, when(r.at)), el("td", {}, r.actor), el("td", {}, r.action),
        el("td", {}, r.key ? el("a", { href: `#/object/${r.key}` }, r.key) : ""), el("td", {}, r.version_id || "")))));
}

async function hooksPage() {
  const [hooks, stats] = await Promise.all([api("/api/v1/hooks"), api("/api/v1/hooks/stats")]);
  view.replaceChildren(el("h2", {}, "Hooks"),
    el("p", {}, `${stats.events_fired} events fired, ${stats.events_waiting} waiting`),
    el("table", { id: "hooks" }, el("tr", {}, ["hook", "kind", "delivered", "failed", "success rate"].map((h) => el("th", {}, h))),
      stats.hooks.map((h) => el("tr", {}, el("td", {}, h.hook), el("td", {}, h.kind), el("td", { class: "num" }, h.delivered),
        el("td", { class: "num" }, h.failed), el("td", { class: "num" }, h.success_rate == null ? "" : `${(h.success_rate * 100).toFixed(1)}%`)))),
    el("h3", {}, "Definitions"),
    el("pre", {}, JSON.stringify(hooks, null, 2)));
}

async function bundlesPage() {
  const bundles = await api("/api/v1/bundles");
  view.replaceChildren(el("h2", {}, "Bundles"),
    el("table", { id: "bundles" }, el("tr", {}, ["bundle", "primary URL", "recipe", "resources", "created", "completed"].map((h) => el("th", {}, h))),
      bundles.map((b) => el("tr", {}, el("td", {}, el("a", { href: `#/bundle/${b.bundle_id}` }, b.bundle_id)), el("td", {}, b.primary_url || ""),
        el("td", {}, b.recipe_id || ""), el("td", { class: "num" }, b.resources_count), el("td", {}, when(b.created_at)),
        el("td", {}, b.completed_at ? when(b.completed_at) : "open")))));
}

async function bundlePage(id) {
  const [bundle, resources] = await Promise.all([api(`/api/v1/bundles/${encodeURIComponent(id)}`), api(`/api/v1/bundles/${encodeURIComponent(id)}/resources`)]);
  view.replaceChildren(el("h2", {}, `Bundle ${bundle.bundle_id}`),
    el("p", {}, `${bundle.layout} layout at ${bundle.storage_key}`, bundle.completed_at ? `, completed ${when(bundle.completed_at)}` : ", open"),
    el("table", { id: "resources" }, el("tr", {}, ["#", "url", "status", "type", "size"].map((h) => el("th", {}, h))),
      resources.map((r) => el("tr", {}, el("td", {}, r.position), el("td", {},
        el("a", { href: `/api/v1/bundles/${encodeURIComponent(id)}/resource?which=${encodeURIComponent(r.position)}` }, r.url)),
        el("td", {}, r.status_code), el("td", {}, r.content_type || ""), el("td", { class: "num" }, bytes(r.size))))));
}

// --- routing --------------------------------------------------------------

async function route() {
  const hash = decodeURIComponent(location.hash.slice(1) || "/browse/");
  const [path, search] = hash.split("?");
  const params = new URLSearchParams(search || "");
  try {
    if (path.startsWith("/browse/")) await browse(path.slice("/browse/".length));
    else if (path.startsWith("/object/")) await objectPage(path.slice("/object/".length));
    else if (path === "/audit") await auditPage(params);
    else if (path === "/hooks") await hooksPage();
    else if (path === "/bundles") await bundlesPage();
    else if (path.startsWith("/bundle/")) await bundlePage(path.slice("/bundle/".length));
    else view.replaceChildren(el("p", {}, "No such page."));
  } catch (error) {
    say(error.message);
  }
}

window.addEventListener("hashchange", () => { say(""); route(); });
api("/ui/api/session").then((who) => {
  session = who;
  document.getElementById("who").textContent = `${who.name} (${who.scope}${who.prefix ? `, ${who.prefix}` : ""})`;
  route();
}).catch((error) => say(error.message));
