// The search page (/ and, compact, /embed): a thin client of the JSON API.
// State lives in the URL (?q=&house=&...&offset=, or ?similar=<speech id>),
// so every view can be linked to, reloaded and paged with the back button.
// Text from the API is only ever set as textContent, never parsed as HTML.
"use strict";

const PAGE_SIZE = 10;
const FILTERS = ["house", "section", "party", "speaker", "date_from", "date_to"];
const OPTIONS = ["mode", "sort", "group_by"];
const DEFAULTS = { mode: "hybrid", sort: "relevance", group_by: "speech" };
const HOUSE_NAMES = { commons: "House of Commons", lords: "House of Lords" };
const embedded = document.body.dataset.layout === "embed";

const $ = (id) => document.getElementById(id);
const form = $("search-form");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// ------------------------------------------------------------------ state <-> URL

function stateFromUrl() {
  const params = new URLSearchParams(location.search);
  const state = { q: params.get("q") || "", similar: params.get("similar") || "", offset: Number(params.get("offset")) || 0 };
  for (const name of [...FILTERS, ...OPTIONS]) state[name] = params.get(name) || "";
  return state;
}

function stateFromForm(offset = 0) {
  const state = { q: $("q").value.trim(), similar: "", offset };
  for (const name of [...FILTERS, ...OPTIONS]) state[name] = form.elements[name].value.trim();
  return state;
}

function showStateInForm(state) {
  $("q").value = state.q;
  for (const name of FILTERS) form.elements[name].value = state[name];
  for (const name of OPTIONS) form.elements[name].value = state[name] || DEFAULTS[name];
  if (FILTERS.some((name) => state[name])) $("filters-panel").open = true;
}

function urlFor(state) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (value && DEFAULTS[key] !== value) params.set(key, value);
  }
  return `${location.pathname}?${params}`;
}

// focusResults: the control that asked (a card's button, the pager) is redrawn away,
// so keyboard focus goes to the new results rather than falling to <body>.
function navigate(state, { focusResults = false } = {}) {
  history.pushState(null, "", urlFor(state));
  run(state, { focusResults });
}

// ------------------------------------------------------------------ API calls

function apiParams(state, extra = {}) {
  const params = new URLSearchParams({ k: PAGE_SIZE, offset: state.offset, ...extra });
  for (const name of FILTERS) if (state[name]) params.set(name, state[name]);
  if (!state.similar) {
    params.set("q", state.q);
    for (const name of OPTIONS) params.set(name, state[name] || DEFAULTS[name]);
  } else {
    params.set("speech_id", state.similar);
    params.set("highlight", "true");
  }
  return params;
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || `The service answered ${response.status}`);
  return body;
}

let latest = 0; // answers to superseded requests are dropped

async function run(state, { focusResults = false } = {}) {
  showStateInForm(state);
  if (!state.q && !state.similar) {
    clearResults();
    announce("");
    setStatus(embedded ? "" : "Type what you are looking for: a topic, a question, or words someone said.");
    return;
  }
  const ticket = ++latest;
  setStatus("Searching…");
  announce(""); // emptied first, so the same words said again (a repeated search) are announced again
  document.body.classList.add("busy");
  try {
    const endpoint = state.similar ? "/similar" : "/search";
    const params = apiParams(state, state.similar ? {} : { facets: "month" });
    const body = await getJson(`${endpoint}?${params}`);
    if (ticket !== latest) return;
    render(state, body, endpoint);
    announce(isWeak(state, body) ? `${WEAK_NOTICE} ${summary(state, body)}` : summary(state, body));
    if (focusResults) (body.results.length ? $("results") : $("q")).focus();
  } catch (err) {
    if (ticket !== latest) return;
    clearResults();
    setStatus(err.message, true);
    announce(err.message);
  } finally {
    if (ticket === latest) document.body.classList.remove("busy");
  }
}

// ------------------------------------------------------------------ rendering

function setStatus(message, isError = false) {
  const status = $("status");
  status.replaceChildren();
  status.classList.toggle("error", isError);
  if (message) status.append(message);
}

// The polite live region (#announce): what a screen reader says when results arrive.
function announce(message) {
  $("announce").textContent = message;
}

function summary(state, body) {
  const n = body.results.length;
  const range = n ? `, ${state.offset + 1}–${state.offset + n} of ${body.total.toLocaleString("en-GB")} ${body.group_by === "speech" ? "speeches" : "passages"}` : "";
  if (state.similar) return `${n} ${n === 1 ? "speech" : "speeches"} similar to ${seedLabel(state.similar)}${range}`;
  return n ? `${n} ${n === 1 ? "result" : "results"} for “${state.q}”${range}` : `No results for “${state.q}”`;
}

function clearResults() {
  $("results").replaceChildren();
  $("chart").hidden = true;
  $("toolbar").hidden = true;
  $("pager").hidden = true;
  renderFeed(null);
}

function render(state, body, endpoint) {
  const results = body.results;
  if (state.similar) {
    const back = el("button", { type: "button", class: "link", onclick: () => history.back() }, "← back");
    setStatus("");
    $("status").append("Speeches similar to ", el("cite", {}, seedLabel(state.similar)), " ", back);
  } else if (isWeak(state, body)) {
    // Results, but none close to the query: say so above them (shown here, announced with the summary).
    setStatus("");
    $("status").append(el("span", { class: "weak" }, WEAK_NOTICE));
  } else {
    setStatus(results.length ? "" : "Nothing matches. Try fewer words, or fewer filters.");
  }
  $("results").replaceChildren(...results.map(resultCard));
  $("results").start = state.offset + 1;
  renderChart(state, body);
  renderToolbar(state, body, endpoint);
  renderPager(state, body);
}

// The service's `weak` (service/search/confidence.py): nothing matches the query well, these are only the nearest.
const WEAK_NOTICE = "No close matches; the nearest are:";
function isWeak(state, body) {
  return !state.similar && body.weak === true && body.results.length > 0;
}

const seedLabels = new Map(); // speech id -> "Speaker, Debate (date)", from the card that was clicked
function seedLabel(speechId) {
  return seedLabels.get(speechId) || speechId;
}

function resultCard(result) {
  const speaker = result.speaker.name || (result.procedural ? "Procedural" : "Unknown speaker");
  const meta = el("div", { class: "meta" },
    el("span", { class: "speaker" }, speaker),
    result.speaker.party ? el("span", { class: "party" }, ` (${result.speaker.party})`) : null,
    result.date ? el("span", { class: "sep" }, " · ") : null,
    result.date ? el("time", { datetime: result.date }, longDate(result.date)) : null,
    el("span", { class: "sep" }, " · "),
    el("span", { class: "house" }, result.chamber || HOUSE_NAMES[result.house] || result.house || ""),
  );
  const citation = result.url
    ? el("a", { class: "citation", href: result.url, target: embedded ? "_blank" : null, rel: "noopener" }, result.citation || "Hansard")
    : el("span", { class: "citation" }, result.citation || "");
  const label = `${speaker}, ${result.debate || "untitled debate"}${result.date ? ` (${longDate(result.date)})` : ""}`;
  const similar = el("button", {
    type: "button", class: "similar", "data-speech": result.speech_id,
    onclick: () => {
      seedLabels.set(result.speech_id, label);
      navigate({ ...stateFromForm(), q: "", similar: result.speech_id, offset: 0 }, { focusResults: true });
    },
  }, "Similar speeches");
  const whole = el("a", {
    class: "whole", href: `/speeches/${encodeURIComponent(result.speech_id)}`, target: "_blank", rel: "noopener",
  }, "Whole speech (JSON)");
  // The debate page, scrolled to this passage (its element's id is the passage id: the fragment is that, encoded).
  const context = result.debate_id ? el("a", {
    class: "context", href: `/read/${encodeURIComponent(result.debate_id)}#${encodeURIComponent(result.id)}`,
    target: embedded ? "_blank" : null, rel: embedded ? "noopener" : null,
  }, "Read in context") : null;
  return el("li", { class: "result", "data-id": result.id },
    meta,
    el("h2", { class: "debate" }, result.debate || "Untitled debate"), // under the page's h1, as the chart's h2 is
    highlightedText(result),
    el("div", { class: "actions" }, citation, context, similar, whole,
       result.matches > 1 ? el("span", { class: "matches" }, `${result.matches} matching passages`) : null),
  );
}

// The passage with its best sentence(s) emphasised and the query's words marked.
function highlightedText(result) {
  const text = result.text;
  const sentences = result.highlights || [];
  const marks = result.marks || [];
  const cuts = new Set([0, text.length]);
  for (const s of sentences) { cuts.add(s.start); cuts.add(s.end); }
  for (const [a, b] of marks) { cuts.add(a); cuts.add(b); }
  const points = [...cuts].filter((n) => n >= 0 && n <= text.length).sort((a, b) => a - b);
  const inside = (spans, a) => spans.some(([start, end]) => start <= a && a < end);
  const best = sentences.map((s) => [s.start, s.end]);
  const p = el("p", { class: "text" });
  for (let i = 0; i + 1 < points.length; i++) {
    const [a, b] = [points[i], points[i + 1]];
    let node = document.createTextNode(text.slice(a, b));
    if (inside(marks, a)) node = el("mark", {}, node);
    if (inside(best, a)) node = el("span", { class: "best" }, node);
    p.append(node);
  }
  return p;
}

function renderChart(state, body) {
  const chart = $("chart");
  const months = ((body.facets || {}).month || []).filter((m) => m.value).sort((a, b) => (a.value < b.value ? -1 : 1));
  if (state.similar || months.length === 0) { chart.hidden = true; return; }
  const filled = fillMonths(months);
  const most = Math.max(...filled.map((m) => m.count));
  const bars = filled.map((m) => el("button", {
    type: "button", class: "bar", title: `${monthName(m.value)}: ${m.count}`, "aria-label": `${monthName(m.value)}: ${m.count}`,
    "data-month": m.value, "data-count": m.count, style: null,
    onclick: () => navigate({ ...stateFromForm(), ...monthRange(m.value), offset: 0 }, { focusResults: true }),
  }, el("span", { class: "fill" })));
  bars.forEach((bar, i) => { bar.firstChild.style.height = `${Math.max(2, (100 * filled[i].count) / most)}%`; });
  $("bars").replaceChildren(...bars);
  // One month is one narrow bar: name it and its count, or the chart says nothing.
  const only = filled.length === 1 ? `: ${filled[0].count.toLocaleString("en-GB")} ${filled[0].count === 1 ? "match" : "matches"}` : "";
  $("axis-start").textContent = monthName(filled[0].value) + only;
  $("axis-end").textContent = filled.length > 1 ? monthName(filled[filled.length - 1].value) : "";
  $("chart-title").textContent = body.facets_over === "all matches"
    ? "All matches by month" : `Matches by month (${body.facets_over})`;
  chart.hidden = false;
}

// Every month from the first to the last, zero where nothing matched, so gaps show as gaps.
function fillMonths(months) {
  const counts = new Map(months.map((m) => [m.value, m.count]));
  let [y, m] = months[0].value.split("-").map(Number);
  const [lastY, lastM] = months[months.length - 1].value.split("-").map(Number);
  if ((lastY - y) * 12 + (lastM - m) > 600) return months; // centuries apart: show only the months that matched
  const out = [];
  while (y < lastY || (y === lastY && m <= lastM)) {
    const key = `${y}-${String(m).padStart(2, "0")}`;
    out.push({ value: key, count: counts.get(key) || 0 });
    m += 1; if (m > 12) { m = 1; y += 1; }
  }
  return out;
}

function monthRange(month) {
  const [y, m] = month.split("-").map(Number);
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return { date_from: `${month}-01`, date_to: `${month}-${String(last).padStart(2, "0")}` };
}

function renderToolbar(state, body, endpoint) {
  const first = body.results.length ? state.offset + 1 : 0;
  const last = state.offset + body.results.length;
  const unit = body.group_by === "speech" ? "speeches" : "passages";
  $("count").textContent = body.results.length ? `${first}–${last} of ${body.total.toLocaleString("en-GB")} ${unit}` : "";
  for (const format of ["csv", "jsonl"]) {
    const params = apiParams(state, { format });
    $(`export-${format}`).href = `${endpoint}?${params}`;
  }
  $("toolbar").hidden = body.results.length === 0;
  renderFeed(state.similar || body.results.length === 0 ? null : state);
}

// The search as an Atom feed (docs/feeds.md): same words and filters, newest first, from the first result.
function feedUrl(state) {
  const params = new URLSearchParams({ q: state.q });
  for (const name of FILTERS) if (state[name]) params.set(name, state[name]);
  for (const name of ["mode", "group_by"]) params.set(name, state[name] || DEFAULTS[name]);
  params.set("format", "atom");
  return new URL(`/search?${params}`, location.href).href;
}

// "Follow this search", and the head's <link rel="alternate"> that feed readers and browsers look for (none: null).
function renderFeed(state) {
  const href = state ? feedUrl(state) : null;
  const follow = $("follow");
  follow.hidden = !href;
  if (href) follow.href = href; else follow.removeAttribute("href");
  let link = document.head.querySelector('link[rel="alternate"][type="application/atom+xml"]');
  if (!href) { if (link) link.remove(); return; }
  if (!link) {
    link = el("link", { rel: "alternate", type: "application/atom+xml" });
    document.head.append(link);
  }
  link.href = href;
  link.title = `Hansard: ${state.q}`;
}

function renderPager(state, body) {
  $("prev").disabled = state.offset === 0;
  $("next").disabled = state.offset + body.results.length >= body.total || body.results.length < PAGE_SIZE;
  $("page-info").textContent = `Page ${Math.floor(state.offset / PAGE_SIZE) + 1}`;
  $("pager").hidden = body.results.length === 0 && state.offset === 0;
}

function longDate(iso) {
  const [y, m, d] = iso.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
}

function monthName(month) {
  const [y, m] = month.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, 1)).toLocaleDateString("en-GB", { month: "short", year: "numeric", timeZone: "UTC" });
}

// ------------------------------------------------------------------ wiring

async function describeIndex() {
  try {
    const stats = await getJson("/stats");
    const select = $("f-section");
    for (const section of Object.keys(stats.sections).sort()) select.append(el("option", { value: section }, section));
    select.value = stateFromUrl().section;
    const [first, last] = [(stats.date_from || "").slice(0, 4), (stats.date_to || "").slice(0, 4)];
    const span = first && last ? `, ${first === last ? first : `${first}–${last}`}` : ""; // one year once: "2009"
    $("index-info").textContent = `${stats.passages.toLocaleString("en-GB")} passages from ${stats.speeches.toLocaleString("en-GB")} speeches${span}`;
  } catch (err) {
    $("index-info").textContent = "";
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  navigate(stateFromForm());
});
for (const name of [...FILTERS, ...OPTIONS]) {
  form.elements[name].addEventListener("change", () => {
    if ($("q").value.trim()) navigate(stateFromForm());
  });
}
$("clear-filters").addEventListener("click", () => {
  for (const name of FILTERS) form.elements[name].value = "";
  navigate(stateFromForm());
});
$("prev").addEventListener("click", () => {
  const state = stateFromUrl();
  navigate({ ...state, offset: Math.max(0, state.offset - PAGE_SIZE) }, { focusResults: true });
});
$("next").addEventListener("click", () => {
  const state = stateFromUrl();
  navigate({ ...state, offset: state.offset + PAGE_SIZE }, { focusResults: true });
});
window.addEventListener("popstate", () => {
  // Back from "similar" (its button is in #status) or from a card: focus follows the redrawn results.
  const redrawn = ["status", "results"].some((id) => $(id).contains(document.activeElement));
  run(stateFromUrl(), { focusResults: redrawn });
});

describeIndex();
run(stateFromUrl());
