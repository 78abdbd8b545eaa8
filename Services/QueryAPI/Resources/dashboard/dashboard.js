"use strict";
const $ = id => document.getElementById(id);
const S = {token: null, admin: false, gen: 0, data: null, want: {}, editGoal: null, editFunnel: null};
const store = (k, v) => { try { v == null ? localStorage.removeItem(k) : localStorage.setItem(k, v); } catch (e) {} };
const stored = k => { try { return localStorage.getItem(k); } catch (e) { return null; } };

const DIMENSIONS = ["source", "medium", "campaign", "channel", "landing_page"];
const MODELS = ["last_touch", "last_non_direct", "first_touch", "linear", "position_based", "time_decay"];
const DIM_LABELS = {source: "Source", medium: "Medium", campaign: "Campaign", channel: "Channel", landing_page: "Landing page"};
const MONEY_KEYS = ["revenue", "refunds", "net_revenue", "aov"];
// The filters each report accepts (OpenAPI); the others are not filtered and say so.
const FILTERABLE = {overview: DIMENSIONS, revenue: DIMENSIONS, reconciliation: DIMENSIONS, goal: DIMENSIONS, carts: ["source"]};

// Elements are built from text nodes only: sources and campaigns come from visitors' URLs.
function build(ns, tag, attrs, kids) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of kids.flat(9)) if (c != null) e.append(c instanceof Node ? c : String(c));
  return e;
}
const h = (tag, attrs, ...kids) => build(null, tag, attrs, kids);
const svg = (tag, attrs, ...kids) => build("http://www.w3.org/2000/svg", tag, attrs, kids);
const show = (id, ...kids) => $(id).replaceChildren(...kids.flat(9).filter(k => k != null));

// ------------------------------------------------------------------ figures

const group = digits => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
const int = v => v == null ? "–" : String(v).replace(/\d+/, group);
const find = (list, cur) => (list || []).find(m => m.currency === cur);
// "1234.50" + "EUR" → "1,234.50 EUR": the answer's decimal text, regrouped, never a float.
const amountText = (amount, cur) => amount.replace(/\d+/, group) + " " + cur;
const money = (list, cur) => { const m = find(list, cur); return m ? amountText(m.amount, cur) : "–"; };
const pct = v => v == null ? "–" : (Math.round(Number(v) * 10000) / 100).toFixed(2) + "%";
function duration(v) {
  if (v == null) return "–";
  const s = Math.round(Number(v)), d = Math.floor(s / 86400), hr = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return d ? `${d}d ${hr}h` : hr ? `${hr}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

// Exact money arithmetic for comparisons: an amount's decimal text without its point is its
// minor units, as a BigInt (amount_minor is a JSON number, which JS may round).
const minorOf = m => m ? BigInt(m.amount.replace(".", "")) : 0n;
const digitsOf = m => m ? (m.amount.split(".")[1] || "").length : null;
function decimal(minor, digits) {
  const neg = minor < 0n, text = (neg ? -minor : minor).toString().padStart(digits + 1, "0");
  return (neg ? "-" : "") + (digits ? text.slice(0, -digits) + "." + text.slice(-digits) : text);
}
// (now − before) / |before| as "+5.20%", rounded half away from zero in BigInt; "" without a base.
function change(diff, before) {
  if (before === 0n) return "";
  const halves = diff * 20000n / (before < 0n ? -before : before), bp = (halves + (halves < 0n ? -1n : 1n)) / 2n;
  const abs = bp < 0n ? -bp : bp;
  return ` (${bp < 0n ? "−" : "+"}${abs / 100n}.${String(abs % 100n).padStart(2, "0")}%)`;
}
const signed = text => text.startsWith("-") ? "−" + text.slice(1) : "+" + text;

// A figure is the raw API value (data-value, CSV) and the text shown for it.
const F = {
  text: v => ({value: v ?? "", text: v ?? "–"}),
  count: v => ({value: v ?? "", text: int(v)}),
  rate: v => ({value: v ?? "", text: pct(v)}),
  credit: v => ({value: v ?? "", text: v == null ? "–" : Number(v).toFixed(2)}),
  money: (list, cur) => ({value: (find(list, cur) || {}).amount ?? "", text: money(list, cur)}),
  countChange(now, before) {
    if (now == null || before == null) return F.text(null);
    const diff = BigInt(now) - BigInt(before);
    return {value: diff.toString(), text: signed(int(diff.toString())) + change(diff, BigInt(before))};
  },
  rateChange(now, before) {
    if (now == null || before == null) return F.text(null);
    const points = Math.round((Number(now) - Number(before)) * 10000) / 100;
    return {value: String(points / 100), text: signed(points.toFixed(2)) + " pp"};
  },
  // A currency missing from one period counts as zero there.
  moneyChange(nowList, beforeList, cur) {
    const now = find(nowList, cur), before = find(beforeList, cur);
    if (!now && !before) return F.text(null);
    const diff = minorOf(now) - minorOf(before), text = decimal(diff, digitsOf(now) ?? digitsOf(before));
    return {value: text, text: signed(amountText(text, cur)) + change(diff, minorOf(before))};
  },
};
const figure = (tag, testid, f, attrs) => h(tag, {"data-testid": testid, "data-value": String(f.value), ...attrs}, f.text);
const failure = (testid, r) => h("p", {class: "error", "data-testid": testid}, r.error);

// ------------------------------------------------------------------ tables and CSV

// Columns: a header, the cells' testid, and the figure of a row; `change` gives the figure of
// a row against the previous period's. Money becomes one column per shown currency.
const textCol = (id, label, get = r => r[id]) => ({id, label, text: true, fig: r => F.text(get(r))});
const countCol = (id, label, get = r => r[id]) => ({id, label, fig: r => F.count(get(r)), change: (a, b) => F.countChange(get(a), get(b))});
const rateCol = (id, label, get = r => r[id]) => ({id, label, fig: r => F.rate(get(r)), change: (a, b) => F.rateChange(get(a), get(b))});
const creditCol = (id, label, get, attrs, csvName) => ({id, label, attrs, csv: csvName, fig: r => F.credit(get(r))});
const moneyCols = (id, label, get = r => r[id], attrs) => shownCurrencies().map(c => ({id, label: `${label} ${c}`, attrs: {"data-currency": c, ...attrs},
  fig: r => F.money(get(r), c), change: (a, b) => F.moneyChange(get(a), get(b), c)}));

// rows: [{attrs, row}]; foot: [{testid, label, span, row} or {…, before, now} for a change row].
function grid({testid, caption, cols, rows, foot = [], groups}) {
  const cell = (c, f) => figure("td", c.id, f, {class: c.text ? null : "n", style: c.paint ? c.paint(f) : null, ...c.attrs});
  const head = [];
  if (groups) head.push(h("tr", {}, groups.map(g => h("th", {colspan: g.span, scope: "colgroup", class: "group"}, g.label))));
  head.push(h("tr", {}, cols.map(c => h("th", {scope: "col", class: c.text ? null : "n", "data-value": c.csv}, c.label))));
  return h("table", {"data-testid": testid}, h("caption", {}, caption), h("thead", {}, head),
    h("tbody", {}, rows.map(({attrs, row}) => h("tr", attrs, cols.map(c => cell(c, c.fig(row)))))),
    foot.length ? h("tfoot", {}, foot.map(f => h("tr", {"data-testid": f.testid}, h("th", {scope: "row", colspan: f.span}, f.label),
      cols.slice(f.span).map(c => cell(c, f.before ? c.change(f.now, f.before) : c.fig(f.row)))))) : null);
}

// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled, CRLF lines.
// Text a spreadsheet would run as a formula (sources and campaigns come from visitors' URLs:
// "=HYPERLINK(…)") gets a leading apostrophe, as OWASP advises; numbers, negative ones too, stay.
const inert = v => /^[=+\-@\t\r]/.test(v) && !/^[+-]?\d+(\.\d+)?$/.test(v) ? "'" + v : v;
const quote = v => (v = inert(v), /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
// The table's last header row and every body and footer row, each cell's raw data-value
// (its text where it has none); a cell spanning n columns is followed by n − 1 empty fields.
function csv(table) {
  const lines = [table.tHead.rows[table.tHead.rows.length - 1], ...table.tBodies[0].rows, ...(table.tFoot ? table.tFoot.rows : [])];
  return lines.map(tr => [...tr.cells].filter(c => !c.classList.contains("act"))
    .flatMap(c => [c.getAttribute("data-value") ?? c.textContent, ...Array(c.colSpan - 1).fill("")]).map(quote).join(",")).join("\r\n") + "\r\n";
}
// Built in the page (no server round trip) and handed to the browser as a download.
function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], {type: "text/csv;charset=utf-8"}));
  const a = h("a", {href: url, download: name, hidden: true});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
// A table in its own scrolling box, with a button saving exactly its rows as CSV.
function exportable(name, table) {
  const d = S.data, file = `${d.site}-${name}-${d.from}-${d.to}.csv`;
  return h("div", {class: "table"},
    h("button", {type: "button", class: "csv secondary", "data-testid": "csv-" + table.dataset.testid, "aria-label": `Download ${table.caption.textContent} as CSV`,
      onclick: () => download(file, csv(table))}, "CSV"),
    h("div", {class: "scroll"}, table));
}

// ------------------------------------------------------------------ API

async function api(path, method = "GET", body) {
  const headers = {Authorization: "Bearer " + S.token};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res, answer = null;
  try { res = await fetch(path, {method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body)}); }
  catch (e) { return {ok: false, status: 0, error: "network error: " + e.message}; }
  try { answer = await res.json(); } catch (e) {}
  if (res.ok) return {ok: true, status: res.status, body: answer || {}};
  const message = answer && answer.error && answer.error.message;
  return {ok: false, status: res.status, error: message || `HTTP ${res.status} ${res.statusText}`.trim()};
}
const qs = params => Object.entries(params).filter(([, v]) => v != null && v !== "")
  .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
// The filter[…] parameters of the active filters a report accepts.
const filterParams = (report, filters) =>
  Object.fromEntries(Object.entries(filters).filter(([k]) => FILTERABLE[report].includes(k)).map(([k, v]) => [`filter[${k}]`, v]));
function unfiltered(report) {
  const skipped = Object.keys(S.data.view.filters).filter(k => !(FILTERABLE[report] || []).includes(k));
  return skipped.length ? h("p", {class: "note", "data-testid": "unfiltered"}, `Not filtered by ${skipped.join(", ")}: the API has no such filter for this report.`) : null;
}

// ------------------------------------------------------------------ dates and view state

const dayText = date => date.toISOString().slice(0, 10);
const addDays = (day, n) => dayText(new Date(Date.parse(day + "T00:00:00Z") + n * 86400000));
// Today in the site's time zone, the zone of the reports' days (the browser's until it is known).
const today = () => S.zone ? new Intl.DateTimeFormat("en-CA", {timeZone: S.zone, year: "numeric", month: "2-digit", day: "2-digit"}).format(new Date())
  : dayText(new Date(Date.now() - new Date().getTimezoneOffset() * 60000));
// Each preset's range, from today's date.
const PRESETS = {
  today: t => [t, t], yesterday: t => [addDays(t, -1), addDays(t, -1)], last7: t => [addDays(t, -6), t], last30: t => [addDays(t, -29), t],
  this_month: t => [t.slice(0, 8) + "01", t], last_month: t => [addDays(t.slice(0, 8) + "01", -1).slice(0, 8) + "01", addDays(t.slice(0, 8) + "01", -1)],
  last90: t => [addDays(t, -89), t],
};
// The range of equal length just before first..last.
const dayCount = (first, last) => Math.round((Date.parse(last) - Date.parse(first)) / 86400000) + 1;
const previousRange = (first, last) => [addDays(first, -dayCount(first, last)), addDays(first, -1)];
function setPreset(name) {
  S.preset = PRESETS[name] ? name : "custom";
  if (PRESETS[name]) [$("from").value, $("to").value] = PRESETS[name](today());
  for (const b of $("presets").querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.preset === S.preset));
}
const currentSite = () => (S.admin ? $("site-select").value : $("site-input").value).trim();
const filtersOf = () => Object.fromEntries(DIMENSIONS.map(k => [k, $("filter-" + k).value.trim()]).filter(([, v]) => v));

// What the page shows, as the URL's hash keeps it: a link restores the view (the token is never in it).
function viewParams() {
  const p = {site: currentSite(), preset: S.preset, compare: $("compare").checked ? "1" : "", currency: $("currency").value || S.want.currency,
    breakdown: $("breakdown").value, funnel: $("funnel").value || S.want.funnel, conversion: $("conversion").value.trim(),
    lookback: $("lookback").value, period: $("period").value, products: $("product-breakdown").value};
  if (S.preset === "custom") Object.assign(p, {from: $("from").value, to: $("to").value});
  for (const [k, v] of Object.entries(filtersOf())) p["filter." + k] = v;
  return qs(p);
}
function writeHash() {
  const hash = viewParams();
  history.replaceState(null, "", "#" + hash);
  store("trb_view", hash);
  return hash;
}
function readHash(text) {
  const p = new URLSearchParams(text.replace(/^#/, ""));
  setPreset(p.get("preset") || (p.get("from") ? "custom" : "last30"));
  if (S.preset === "custom" && p.get("from") && p.get("to")) [$("from").value, $("to").value] = [p.get("from"), p.get("to")];
  $("compare").checked = p.get("compare") === "1";
  const choose = (id, v) => { if (v && [...$(id).options].some(o => o.value === v)) $(id).value = v; };
  choose("breakdown", p.get("breakdown"));
  choose("period", p.get("period"));
  choose("product-breakdown", p.get("products"));
  for (const k of DIMENSIONS) $("filter-" + k).value = p.get("filter." + k) || "";
  if (p.get("conversion")) $("conversion").value = p.get("conversion");
  if (p.get("lookback")) $("lookback").value = p.get("lookback");
  // Chosen once the site's answers list them.
  S.want = {site: p.get("site"), currency: p.get("currency"), funnel: p.get("funnel")};
}

// ------------------------------------------------------------------ loading

const status = (text, bad) => { $("status").textContent = text; $("status").className = bad ? "error" : ""; };

// A new token: an admin token lists the sites; any other is a site's owner or read key for a typed site id.
async function connect() {
  S.token = $("token").value.trim();
  store("trb_token", S.token || null);
  if (!S.token) { status("Enter an admin token or a site's owner or read key.", true); return; }
  const r = await api("/v1/admin/sites");
  S.admin = r.ok;
  $("site-pick").hidden = !r.ok;
  $("site-text").hidden = r.ok;
  const want = S.want.site || stored("trb_site");
  if (r.ok) {
    const sites = r.body.sites || [];
    $("site-select").replaceChildren(...sites.map(s => h("option", {value: s.id}, s.name && s.name !== s.id ? `${s.name} (${s.id})` : s.id)));
    if (sites.some(s => s.id === want)) $("site-select").value = want;
    if (!sites.length) { status("No sites yet: create one with POST /v1/admin/sites.", true); return; }
  } else if (!$("site-input").value) {
    $("site-input").value = want || "";
  }
  await load();
}

async function load() {
  const site = currentSite();
  if (!site) { status("Enter a site id.", true); return; }
  // The site's time zone, once per site: presets are days there (a range typed over the
  // preset's stays as typed).
  if (S.zoneSite !== site) {
    const showsPreset = PRESETS[S.preset] && PRESETS[S.preset](today()).join() === [$("from").value, $("to").value].join();
    const info = await api("/v1/sites/" + encodeURIComponent(site));
    S.zone = info.ok ? info.body.timezone : null;
    S.zoneSite = site;
    if (showsPreset) setPreset(S.preset);
  }
  const from = $("from").value, to = $("to").value;
  if (!from || !to || from > to) { status("Choose a range: From must not be after To.", true); return; }
  // Dates typed or set without a change event make the range custom.
  if (PRESETS[S.preset] && PRESETS[S.preset](today()).join() !== [from, to].join()) setPreset("custom");
  // An edit in progress belongs to the site it was started on.
  if (S.data && S.data.site !== site) { resetGoalForm(); resetFunnelForm(); }
  store("trb_site", site);
  const view = {filters: filtersOf(), breakdown: $("breakdown").value, compare: $("compare").checked,
    conversion: $("conversion").value.trim() || "purchase", lookback: $("lookback").value, period: $("period").value, products: $("product-breakdown").value};
  const gen = ++S.gen, base = "/v1/sites/" + encodeURIComponent(site), range = {from, to}, f = view.filters;
  const get = (path, params) => api(`${base}/${path}?${qs(params)}`);
  const previous = previousRange(from, to), before = {from: previous[0], to: previous[1]};
  document.body.dataset.state = "loading";
  const started = performance.now();
  status("Loading…");
  const revenue = {breakdown: view.breakdown, ...filterParams("revenue", f)};
  const [overview, sources, days, reconciliation, forwarding, goals, funnels, products, customers, carts, retention, prevOverview, prevSources, ...attribution] = await Promise.all([
    get("overview", {...range, ...filterParams("overview", f)}),
    get("revenue", {...range, ...revenue}),
    get("revenue", {...range, breakdown: "day", ...filterParams("revenue", f)}),
    get("reconciliation", {...range, breakdown: "source", ...filterParams("reconciliation", f)}),
    get("forwarding", {limit: 20}),
    api(`${base}/goals`),
    api(`${base}/funnels`),
    get("products", {...range, breakdown: view.products}),
    get("customers", range),
    get("carts", {...range, breakdown: "source", ...filterParams("carts", f)}),
    get("retention", {...range, event: "purchase", period: view.period}),
    view.compare ? get("overview", {...before, ...filterParams("overview", f)}) : null,
    view.compare ? get("revenue", {...before, ...revenue}) : null,
    ...MODELS.map(model => get("attribution", {...range, conversion: view.conversion, model, lookback_days: view.lookback})),
  ]);
  // Goal and funnel reports are computed from the stored events until their rollup is built
  // (computed_from: "facts"), so a definition just created answers complete figures at once.
  const goalReports = goals.ok ? await Promise.all((goals.body.goals || []).map(goal =>
    get(`goals/${encodeURIComponent(goal.id)}/report`, {...range, ...filterParams("goal", f)}).then(r => ({goal, r})))) : [];
  const list = funnels.ok ? funnels.body.funnels || [] : [];
  $("funnel").replaceChildren(...list.map(fn => h("option", {value: fn.id}, fn.name || fn.id)));
  const chosen = [S.want.funnel, $("funnel").dataset.chosen].find(id => list.some(fn => String(fn.id) === id)) || (list[0] || {}).id;
  if (chosen != null) $("funnel").value = chosen;
  const funnel = chosen == null ? null : {id: String(chosen), definition: list.find(fn => String(fn.id) === String(chosen)),
    r: await get(`funnels/${encodeURIComponent(chosen)}/report`, range)};
  if (gen !== S.gen) return;
  S.want.funnel = null;
  $("funnel").dataset.chosen = chosen ?? "";
  S.data = {site, from, to, base, view, previous, overview, sources, days, reconciliation, forwarding, goals, goalReports, funnels, funnel,
    products, customers, carts, retention, prevOverview, prevSources, attribution: MODELS.map((model, i) => ({model, r: attribution[i]}))};
  render();
  const bad = [overview, sources, days].find(r => !r.ok);
  status(bad ? bad.error : `${site} · ${from} – ${to}` + (view.compare ? ` vs ${previous[0]} – ${previous[1]}` : ""), !!bad);
  document.body.dataset.view = writeHash();
  document.body.dataset.loaded = `${site} ${from} ${to}`;
  // From the load to every panel drawn: what the report-latency benchmark times in Chromium.
  document.body.dataset.loadMs = String(Math.round(performance.now() - started));
  document.body.dataset.state = "ready";
}

// Currencies present in any answer; amounts in different currencies are never added.
function currencies() {
  const d = S.data, seen = new Set(), add = list => (list || []).forEach(m => seen.add(m.currency));
  if (d.overview.ok) ["revenue", "refunds"].forEach(k => add(d.overview.body[k]));
  for (const r of [d.sources, d.days]) if (r.ok) r.body.rows.forEach(row => { add(row.revenue); add(row.refunds); });
  d.goalReports.forEach(g => g.r.ok && add(g.r.body.revenue));
  if (d.reconciliation.ok) RECON_MONEY.forEach(k => add(d.reconciliation.body.totals[k]));
  if (d.funnel && d.funnel.r.ok) (d.funnel.r.body.steps || []).forEach(s => add(s.revenue));
  d.attribution.forEach(a => a.r.ok && add(a.r.body.revenue));
  if (d.products.ok) d.products.body.rows.forEach(row => add(row.revenue));
  if (d.customers.ok) ["new", "returning"].forEach(k => add(d.customers.body[k].revenue));
  if (d.carts.ok) ["abandoned_value", "recovered_value"].forEach(k => add(d.carts.body[k]));
  return [...seen].sort();
}
// The currencies whose columns show: the selected one, or all side by side.
const shownCurrencies = () => $("currency").value === "all" ? S.codes : [$("currency").value];

function render() {
  S.codes = currencies();
  const select = $("currency"), options = ["all", ...S.codes];
  // The currency asked for (link) or chosen on this page; else the site's first one.
  const keep = [S.want.currency, S.currencyChosen && select.value].find(c => c && options.includes(c)) || S.codes[0] || "all";
  select.replaceChildren(...options.map(c => h("option", {value: c}, c === "all" ? "all, side by side" : c)));
  select.value = keep;
  S.want.currency = null;
  renderPanels();
}

function renderPanels() {
  document.body.dataset.currency = $("currency").value;
  $("sources-title").textContent = "Revenue by " + $("breakdown").selectedOptions[0].textContent.toLowerCase();
  renderOverview(); renderDays(); renderSources(); renderAttribution(); renderCustomers(); renderCarts(); renderProducts();
  renderRetention(); renderReconciliation(); renderForwarding(); renderGoals(); renderFunnel();
}

// ------------------------------------------------------------------ panels

function renderOverview() {
  const d = S.data, r = d.overview;
  if (!r.ok) return show("overview", failure("overview-error", r));
  const o = r.body, prev = d.prevOverview && d.prevOverview.ok ? d.prevOverview.body : null;
  if (d.prevOverview && !d.prevOverview.ok) return show("overview", failure("overview-error", d.prevOverview));
  // A tile: the figure, its label and, when comparing, the previous period's figure and the change.
  const tile = (key, label, fig, prevFig, delta, attrs) => h("div", {class: "tile"},
    figure("b", "overview-" + key, fig, attrs), h("span", {}, label),
    prev ? h("small", {}, "before ", figure("span", `overview-${key}-previous`, prevFig, attrs), " · ", figure("span", `overview-${key}-change`, delta, {class: "delta", ...attrs})) : null);
  const count = (key, label) => tile(key, label, F.count(o[key]), prev && F.count(prev[key]), prev && F.countChange(o[key], prev[key]));
  show("overview", h("div", {class: "tiles"},
    count("visitors", "visitors"), count("sessions", "sessions"), count("pageviews", "pageviews"), count("orders", "orders (all currencies)"),
    tile("conversion_rate", "orders per session", F.rate(o.conversion_rate), prev && F.rate(prev.conversion_rate), prev && F.rateChange(o.conversion_rate, prev.conversion_rate)),
    MONEY_KEYS.flatMap(key => shownCurrencies().map(c => tile(key, `${key.replace("_", " ").replace("aov", "average order")} (${c})`,
      F.money(o[key], c), prev && F.money(prev[key], c), prev && F.moneyChange(o[key], prev[key], c), {"data-currency": c})))),
    prev ? h("p", {class: "note"}, `Compared with ${d.previous[0]} – ${d.previous[1]}, the ${dayCount(d.from, d.to)} days before.`) : null);
}
function renderDays() {
  const d = S.data, r = d.days;
  if (!r.ok) return show("days", failure("days-error", r));
  const byDay = new Map(r.body.rows.map(row => [row.day, row]));
  // One slot per day of the range (a bar where that day has revenue in the currency).
  const slots = [];
  for (let day = d.from; day <= d.to && slots.length < 400; day = addDays(day, 1)) slots.push(day);
  if (slots.length >= 400) slots.splice(0, slots.length, ...[...byDay.keys()].sort());
  show("days", shownCurrencies().map(cur => dayChart(cur, slots, byDay)));
}

function dayChart(cur, slots, byDay) {
  const bars = slots.map(day => ({day, row: byDay.get(day), m: byDay.has(day) ? find(byDay.get(day).revenue, cur) : null})).filter(b => b.m);
  const max = Math.max(0, ...bars.map(b => Number(b.m.amount_minor)));
  const top = bars.find(b => Number(b.m.amount_minor) === max);
  const W = 900, H = 200, headroom = 16, bottom = 20, slot = W / Math.max(1, slots.length), plot = H - headroom - bottom;
  const summary = `Revenue per day in ${cur}, ${slots[0]} to ${slots[slots.length - 1]}: ${bars.length} of ${slots.length} days with revenue` +
    (top ? `; highest ${money([top.m], cur)} on ${top.day}.` : ".");
  return h("figure", {class: "chart"}, svg("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "data-testid": "days-chart", "data-currency": cur, "aria-label": summary},
    svg("title", {}, summary),
    svg("line", {x1: 0, x2: W, y1: H - bottom, y2: H - bottom, stroke: "#c8cdd7"}),
    bars.map(b => {
      const height = max > 0 ? Math.max(1, Number(b.m.amount_minor) / max * plot) : 1, i = slots.indexOf(b.day);
      return svg("rect", {class: "bar", "data-testid": "day-bar", "data-currency": cur, "data-day": b.day, "data-amount": b.m.amount, "data-orders": b.row.orders,
        x: i * slot + slot * 0.12, width: Math.max(1, slot * 0.76), y: H - bottom - height, height},
        svg("title", {}, `${b.day}: ${money(b.row.revenue, cur)}, ${int(b.row.orders)} orders (all currencies)`));
    }),
    svg("text", {x: 2, y: 11}, top ? "max " + money([top.m], cur) : ""),
    svg("text", {x: 2, y: H - 5}, slots[0] || ""),
    svg("text", {x: W - 2, y: H - 5, "text-anchor": "end"}, slots[slots.length - 1] || "")),
    h("figcaption", {class: "note", "data-testid": "days-summary"}, summary, " Hover a bar for its amount."));
}

function renderSources() {
  const d = S.data, r = d.sources, dims = d.view.breakdown.split(",");
  if (!r.ok) return show("sources", failure("sources-error", r));
  if (d.prevSources && !d.prevSources.ok) return show("sources", failure("sources-error", d.prevSources));
  if (!r.body.rows.length) return show("sources", h("p", {class: "muted", "data-testid": "sources-empty"}, "No orders in this range."));
  const cols = [...dims.map(k => textCol(k, DIM_LABELS[k])), countCol("orders", "Orders"), countCol("first_orders", "First orders"),
    ...moneyCols("revenue", "Revenue"), ...moneyCols("refunds", "Refunds"), ...moneyCols("net_revenue", "Net"), ...moneyCols("aov", "AOV")];
  const totals = r.body.totals, prev = d.prevSources && d.prevSources.body.totals, span = dims.length;
  const table = grid({testid: "sources-table", caption: `Orders and money by ${dims.join(", ")}, ${d.from} – ${d.to}`, cols,
    rows: r.body.rows.map(row => ({row, attrs: {"data-testid": "source-row", ...Object.fromEntries(dims.map(k => ["data-" + k.replace("_", "-"), row[k]]))}})),
    foot: [{testid: "source-totals", label: "Total", span, row: totals},
      ...(prev ? [{testid: "source-totals-previous", label: `${d.previous[0]} – ${d.previous[1]}`, span, row: prev},
                  {testid: "source-totals-change", label: "Change", span, now: totals, before: prev}] : [])]});
  show("sources", exportable("revenue", table),
    h("p", {class: "note"}, "Orders count every currency; amounts are per currency, never added across currencies."));
}

// The six models side by side: one row per source, medium, campaign and channel any model
// credits, one column group per model with its conversion credit and revenue.
function renderAttribution() {
  const d = S.data, bad = d.attribution.find(a => !a.r.ok);
  if (bad) return show("attribution", failure("attribution-error", bad.r));
  const rows = new Map();
  for (const {model, r} of d.attribution) for (const row of r.body.rows) {
    const key = JSON.stringify([row.source, row.medium, row.campaign, row.channel]);
    if (!rows.has(key)) rows.set(key, {source: row.source, medium: row.medium, campaign: row.campaign, channel: row.channel, byModel: {}});
    rows.get(key).byModel[model] = row;
  }
  const of = (model, key) => r => (r.byModel[model] || {})[key];
  const cols = [textCol("source", "Source"), textCol("medium", "Medium"), textCol("campaign", "Campaign"), textCol("channel", "Channel"),
    ...MODELS.flatMap(model => [creditCol("credit", "Conversions", of(model, "conversions"), {"data-model": model}, `${model} conversions`),
      ...moneyCols("revenue", "Revenue", of(model, "revenue"), {"data-model": model}).map(c => ({...c, csv: `${model} revenue ${c.attrs["data-currency"]}`}))])];
  const totals = {byModel: Object.fromEntries(d.attribution.map(({model, r}) => [model, r.body]))};
  const first = d.attribution[0].r.body;
  if (!rows.size) return show("attribution", h("p", {class: "muted", "data-testid": "attribution-empty"}, `No ${first.conversion} conversions in this range.`));
  const table = grid({testid: "attribution-table", caption: `Credit for ${first.conversion} conversions, ${first.lookback_days}-day lookback, by model`, cols,
    groups: [{label: "", span: 4}, ...MODELS.map(m => ({label: m.replace(/_/g, " "), span: 1 + shownCurrencies().length}))],
    rows: [...rows.values()].map(row => ({row, attrs: {"data-testid": "attribution-row", "data-source": row.source, "data-medium": row.medium,
      "data-campaign": row.campaign, "data-channel": row.channel}})),
    foot: [{testid: "attribution-totals", label: "Total", span: 4, row: totals}]});
  show("attribution", exportable("attribution", table), unfiltered("attribution"),
    h("p", {class: "note"}, "Each conversion's credit sums to 1 across its sources; its money is split exactly."));
}

function renderCustomers() {
  const d = S.data, r = d.customers;
  if (!r.ok) return show("customers", failure("customers-error", r));
  const c = r.body, money3 = [...moneyCols("revenue", "Revenue"), ...moneyCols("refunds", "Refunds"), ...moneyCols("net_revenue", "Net")];
  const groups = grid({testid: "customers-table", caption: "New and returning customers", cols: [textCol("group", "Customers"),
    countCol("customers", "Customers"), countCol("orders", "Orders"), ...money3],
    rows: ["new", "returning"].map(k => ({row: {group: k, ...c[k]}, attrs: {"data-testid": "customers-row", "data-group": k}}))});
  const sources = grid({testid: "first-source-table", caption: "Customers by the source of their first order (revenue to date)",
    cols: [textCol("source", "Source"), countCol("customers", "Customers"), countCol("orders", "Orders"), ...money3,
      ...moneyCols("revenue_per_customer", "Per customer"), ...moneyCols("net_revenue_per_customer", "Net per customer")],
    rows: c.by_first_order_source.map(row => ({row, attrs: {"data-testid": "first-source-row", "data-source": row.source}}))});
  show("customers", h("div", {class: "tiles"},
    h("div", {class: "tile"}, figure("b", "customers-customers", F.count(c.customers)), h("span", {}, "customers")),
    h("div", {class: "tile"}, figure("b", "customers-repeat_customers", F.count(c.repeat_customers)), h("span", {}, "bought again")),
    h("div", {class: "tile"}, figure("b", "customers-repeat_purchase_rate", F.rate(c.repeat_purchase_rate)), h("span", {}, "repeat purchase rate"))),
    exportable("customers", groups), exportable("first-order-sources", sources), unfiltered("customers"));
}

function renderCarts() {
  const d = S.data, r = d.carts;
  if (!r.ok) return show("carts", failure("carts-error", r));
  const c = r.body, tile = (key, label, fig, attrs) => h("div", {class: "tile"}, figure("b", "carts-" + key, fig, attrs), h("span", {}, label));
  const cols = [textCol("source", "Source"), countCol("carts", "Carts"), countCol("converted", "Converted"), countCol("open", "Open"),
    countCol("abandoned", "Abandoned"), rateCol("abandonment_rate", "Abandonment"), ...moneyCols("abandoned_value", "Abandoned"),
    countCol("recovered", "Recovered"), ...moneyCols("recovered_value", "Recovered")];
  show("carts", h("div", {class: "tiles"}, tile("carts", "carts", F.count(c.carts)), tile("abandoned", "abandoned", F.count(c.abandoned)),
    tile("abandonment_rate", "abandonment rate", F.rate(c.abandonment_rate)), tile("recovered", "recovered", F.count(c.recovered)),
    shownCurrencies().map(cur => tile("abandoned_value", `abandoned value (${cur})`, F.money(c.abandoned_value, cur), {"data-currency": cur}))),
    c.rows.length ? exportable("carts", grid({testid: "carts-table", caption: `Carts by source (abandoned after ${c.abandonment_window_minutes} minutes)`, cols,
      rows: c.rows.map(row => ({row, attrs: {"data-testid": "carts-row", "data-source": row.source}})),
      foot: [{testid: "carts-totals", label: "Total", span: 1, row: c}]})) : h("p", {class: "muted", "data-testid": "carts-empty"}, "No carts in this range."),
    unfiltered("carts"));
}

function renderProducts() {
  const d = S.data, r = d.products, by = d.view.products;
  if (!r.ok) return show("products", failure("products-error", r));
  if (!r.body.rows.length) return show("products", h("p", {class: "muted", "data-testid": "products-empty"}, "No line items in this range."));
  const cols = [textCol(by, $("product-breakdown").selectedOptions[0].textContent), countCol("quantity", "Quantity"), countCol("orders", "Orders"),
    ...moneyCols("revenue", "Revenue")];
  show("products", exportable("products", grid({testid: "products-table", caption: `Products by ${by}, ${d.from} – ${d.to}`, cols,
    rows: r.body.rows.map(row => ({row, attrs: {"data-testid": "product-row", "data-key": row[by]}}))})), unfiltered("products"));
}

// A heat map: one row per cohort, one cell per later period, shaded by the share that came back.
function renderRetention() {
  const d = S.data, r = d.retention;
  if (!r.ok) return show("retention", failure("retention-error", r));
  const cohorts = r.body.cohorts;
  if (!cohorts.length) return show("retention", h("p", {class: "muted", "data-testid": "retention-empty"}, "No purchasers in this range."));
  const periods = Math.max(0, ...cohorts.map(c => c.periods.length ? Math.max(...c.periods.map(p => p.period)) : 0));
  const shade = f => f.value === "" ? null : `background:hsl(217 70% ${Math.round(97 - Number(f.value) * 55)}%);color:${Number(f.value) > 0.5 ? "#fff" : "inherit"}`;
  const cols = [textCol("cohort", "Cohort"), countCol("persons", "Persons"),
    ...Array.from({length: periods}, (_, i) => ({id: "share", label: `${r.body.period} ${i + 1}`, attrs: {"data-period": i + 1}, paint: shade,
      fig: c => F.rate((c.periods.find(p => p.period === i + 1) || {}).share)}))];
  show("retention", exportable("retention", grid({testid: "retention-table", caption: `Share of each ${r.body.period}'s new purchasers who purchased again, by later ${r.body.period}`,
    cols, rows: cohorts.map(row => ({row, attrs: {"data-testid": "retention-row", "data-cohort": row.cohort}}))})), unfiltered("retention"));
}

// Counts before and after the loss rate, then money: as the API names them.
const RECON_COUNTS = ["orders", "confirmed", "tracked", "confirmed_not_tracked", "confirmed_not_in_browser"];
const RECON_AFTER = ["tracked_not_confirmed", "amount_mismatches"];
const RECON_MONEY = ["processor_revenue", "tracked_revenue", "amount_difference", "refunds", "chargebacks"];
const RECON_LABELS = {orders: "Orders", confirmed: "Confirmed", tracked: "Tracked", confirmed_not_tracked: "Confirmed, not tracked",
  confirmed_not_in_browser: "Confirmed, not in browser", tracked_not_confirmed: "Tracked, not confirmed", amount_mismatches: "Amount mismatches",
  processor_revenue: "Processor", tracked_revenue: "Tracked", amount_difference: "Difference", refunds: "Refunds", chargebacks: "Chargebacks"};

function renderReconciliation() {
  const d = S.data, r = d.reconciliation;
  if (!r.ok) return show("reconciliation", failure("reconciliation-error", r));
  if (!r.body.rows.length) return show("reconciliation", h("p", {class: "muted", "data-testid": "reconciliation-empty"}, "No orders in this range."));
  const cols = [textCol("source", "Source"), ...RECON_COUNTS.map(k => countCol(k, RECON_LABELS[k])), rateCol("browser_loss_rate", "Browser loss"),
    ...RECON_AFTER.map(k => countCol(k, RECON_LABELS[k])), ...RECON_MONEY.flatMap(k => moneyCols(k, RECON_LABELS[k]))];
  show("reconciliation", exportable("reconciliation", grid({testid: "reconciliation-table", caption: `Processor-confirmed and tracked orders by source, ${d.from} – ${d.to}`,
    cols, rows: r.body.rows.map(row => ({row, attrs: {"data-testid": "reconciliation-row", "data-source": row.source}})),
    foot: [{testid: "reconciliation-totals", label: "Total", span: 1, row: r.body.totals}]})),
    h("p", {class: "note"}, "Confirmed: the payment processor reported the order; tracked: the browser or the shop's server did. " +
      "Tracked and difference (processor − tracked) are of the orders both confirmed and tracked."));
}

// Deliveries to the ad platforms: how many per platform and state (all time), and the latest
// ones with the platform's error or why they were skipped.
const PLATFORMS = {meta: "Meta", "google-ads": "Google Ads"};
function renderForwarding() {
  const r = S.data.forwarding;
  if (!r.ok) return show("forwarding", failure("forwarding-error", r));
  if (!r.body.totals.length) {
    return show("forwarding", h("p", {class: "muted", "data-testid": "forwarding-empty"}, "No orders forwarded: this site has no ad platform destination."));
  }
  const states = ["sent", "pending", "failed", "skipped"], byPlatform = {};
  for (const t of r.body.totals) (byPlatform[t.platform] ??= {platform: t.platform})[t.state] = t.deliveries;
  const totals = grid({testid: "forwarding-totals", caption: "Deliveries per platform, all time",
    cols: [textCol("platform", "Platform", row => PLATFORMS[row.platform] || row.platform), ...states.map(k => countCol(k, k[0].toUpperCase() + k.slice(1), row => row[k] ?? "0"))],
    rows: Object.values(byPlatform).map(row => ({row, attrs: {"data-testid": "forwarding-platform", "data-platform": row.platform}}))});
  const latest = grid({testid: "forwarding-deliveries", caption: "Latest deliveries",
    cols: [textCol("platform", "Platform", row => PLATFORMS[row.platform] || row.platform), textCol("order_id", "Order"), textCol("kind", "Kind"),
      textCol("value", "Value", row => row.value == null ? null : `${row.value} ${row.currency}`),
      textCol("state", "State"), countCol("attempts", "Attempts"), textCol("reason", "Error or reason")],
    rows: r.body.deliveries.map(row => ({row, attrs: {"data-testid": "forwarding-delivery", "data-order": row.order_id, "data-platform": row.platform}}))});
  show("forwarding", exportable("forwarding-totals", totals), exportable("forwarding-deliveries", latest));
}

function renderGoals() {
  const d = S.data;
  if (!d.goals.ok || !d.goalReports.length) {
    return show("goals", h("p", {class: "muted", "data-testid": "goals-empty"}, "No goals." + (d.goals.ok ? "" : ` (${d.goals.error})`)));
  }
  const cols = [...["visitors", "converters", "conversions"].map(k => countCol(k, k[0].toUpperCase() + k.slice(1))),
    rateCol("conversion_rate", "Rate"), ...moneyCols("revenue", "Revenue")];
  const table = h("table", {"data-testid": "goals-table"}, h("caption", {}, `Goals, ${d.from} – ${d.to}`),
    h("thead", {}, h("tr", {}, ["Goal", "Matches"].map(t => h("th", {scope: "col"}, t)), cols.map(c => h("th", {scope: "col", class: "n"}, c.label)),
      h("th", {class: "act"}, h("span", {class: "sr"}, "Actions")))),
    h("tbody", {}, d.goalReports.map(({goal, r}) => h("tr", {"data-testid": "goal-row", "data-goal": goal.id},
      figure("td", "name", F.text(goal.name || goal.id)), figure("td", "match", {value: JSON.stringify(goal.match), text: matchText(goal.match)}),
      r.ok ? cols.map(c => figure("td", c.id, c.fig(r.body), {class: "n", ...c.attrs}))
           : h("td", {colspan: cols.length, class: "error", "data-testid": "goal-error"}, r.error),
      h("td", {class: "act"},
        editable(goal.match) ? h("button", {type: "button", class: "secondary", "data-testid": "goal-edit", onclick: () => editGoal(goal)}, "Edit") : null,
        h("button", {type: "button", class: "secondary", "data-testid": "goal-delete", onclick: () => deleteGoal(goal)}, "Delete"))))));
  show("goals", exportable("goals", table));
}

function renderFunnel() {
  const d = S.data, list = d.funnels.ok ? d.funnels.body.funnels || [] : [];
  $("funnel").hidden = !list.length;
  $("funnel-delete").hidden = !d.funnel;
  $("funnel-edit").hidden = !d.funnel || !d.funnel.definition.steps.every(editable);
  if (!d.funnels.ok || !d.funnel) {
    return show("funnel-chart", h("p", {class: "muted", "data-testid": "funnels-empty"}, "No funnels." + (d.funnels.ok ? "" : ` (${d.funnels.error})`)));
  }
  const r = d.funnel.r;
  if (!r.ok) return show("funnel-chart", failure("funnel-error", r));
  const steps = r.body.steps || [], start = Number((steps[0] || {}).persons) || 0, fn = d.funnel.definition;
  const summary = `Funnel ${fn.name}, ${fn.order} within ${fn.window}: ` + steps.map(s => `${s.name} ${s.persons}`).join(", then ") + " persons.";
  show("funnel-chart", start ? null : h("p", {class: "note", "data-testid": "funnel-nobody"}, "Nobody entered this funnel's first step in this range."),
    h("div", {role: "figure", "aria-label": summary, "data-testid": "funnel-chart", "data-funnel": d.funnel.id}, steps.map((s, i) => {
    const prev = steps[i - 1];
    // `dropped` of the step, or of the one before: whichever counts the visitors lost between them.
    const lost = !prev ? null : s.dropped === prev.persons - s.persons || prev.dropped == null ? s.dropped : prev.dropped;
    return [
      prev ? h("div", {class: "drop", "data-testid": "funnel-drop"},
        "▼ ", figure("span", "dropped", F.count(lost)), " dropped · ", figure("span", "conversion_from_previous", F.rate(s.conversion_from_previous)),
        " continued · median ", h("span", {"data-testid": "median_seconds_from_previous", "data-value": s.median_seconds_from_previous}, duration(s.median_seconds_from_previous))) : null,
      h("div", {class: "step", "data-testid": "funnel-step", "data-step": s.name},
        h("div", {class: "label"}, h("span", {}, `${i + 1}. ${s.name}`),
          h("span", {}, figure("b", "persons", F.count(s.persons)), " persons · ", figure("span", "conversion_from_start", F.rate(s.conversion_from_start)),
            shownCurrencies().filter(c => find(s.revenue, c)).map(c => [" · ", figure("span", "revenue", F.money(s.revenue, c), {"data-currency": c})]))),
        h("div", {class: "track"}, h("div", {class: "fill", style: `width:${start ? Math.min(100, Number(s.persons) / start * 100) : 0}%`}))),
    ];
  })), h("p", {class: "note"}, `${fn.order} order, window ${fn.window}; figures ` +
    (r.body.computed_from === "rollup" ? "from its rollup." : "computed from the stored events while its rollup is built.")), unfiltered("funnel"));
}

// ------------------------------------------------------------------ goal and funnel definitions

// The forms edit matches of one kind: an action, an event name or a page path (plus, for
// goals, property values); other stored matches can only be deleted.
function kindOf(match) {
  const keys = Object.keys(match).filter(k => k !== "properties" && k !== "label");
  if (keys.length === 1 && (keys[0] === "action" || keys[0] === "name")) return keys[0];
  if (keys.length === 2 && match.type === "pageview" && match.path) return "path";
  return null;
}
const editable = match => kindOf(match) != null;
function matchText(m) {
  const parts = [m.action && `action ${m.action}`, m.name && `event ${m.name}`, m.path ? `page ${m.path}` : m.type && `type ${m.type}`,
    m.conversion && "sent as a conversion", m.properties && "where " + propertiesText(m.properties).replace(/\n/g, ", ")];
  return parts.filter(Boolean).join(" ");
}
const matchOf = (kind, value) => kind === "path" ? {type: "pageview", path: value} : {[kind]: value};

// "key=value" lines; a value that reads as JSON (number, true, "quoted") is that value, else text.
function parseProperties(text) {
  const lines = text.split("\n").map(l => l.trim()).filter(Boolean);
  if (!lines.length) return null;
  return Object.fromEntries(lines.map(line => {
    const at = line.indexOf("=");
    if (at < 1) throw new Error(`property filter "${line}" is not key=value`);
    const value = line.slice(at + 1).trim();
    try { return [line.slice(0, at).trim(), JSON.parse(value)]; } catch (e) { return [line.slice(0, at).trim(), value]; }
  }));
}
const propertiesText = props => Object.entries(props || {}).map(([k, v]) => {
  if (typeof v !== "string") return `${k}=${JSON.stringify(v)}`;
  try { JSON.parse(v); return `${k}=${JSON.stringify(v)}`; } catch (e) { return `${k}=${v}`; }
}).join("\n");

const message = (id, text, bad) => { $(id).textContent = text; $(id).className = "message" + (bad ? " error" : ""); };

function editGoal(goal) {
  S.editGoal = goal;
  $("goal-form-title").textContent = `Edit goal ${goal.name}`;
  $("goal-name").value = goal.name;
  $("goal-kind").value = kindOf(goal.match);
  $("goal-value").value = goal.match.path || goal.match.action || goal.match.name;
  $("goal-properties").value = propertiesText(goal.match.properties);
  $("goal-revenue").checked = goal.revenue;
  $("goal-cancel").hidden = false;
  message("goal-message", "Saving creates the edited goal and then deletes this one.");
  $("goal-name").focus();
}
function resetGoalForm() {
  S.editGoal = null;
  $("goal-form").reset();
  $("goal-form-title").textContent = "New goal";
  $("goal-cancel").hidden = true;
}

async function saveGoal(event) {
  event.preventDefault();
  if (!S.data) return message("goal-message", "Load a site first.", true);
  let match;
  try {
    match = matchOf($("goal-kind").value, $("goal-value").value.trim());
    const properties = parseProperties($("goal-properties").value);
    if (properties) match.properties = properties;
  } catch (e) { return message("goal-message", e.message, true); }
  const old = S.editGoal;
  const r = await api(`${S.data.base}/goals`, "POST", {name: $("goal-name").value.trim(), match, revenue: $("goal-revenue").checked});
  if (!r.ok) return message("goal-message", `Not saved: ${r.error}`, true);
  // The API has no PUT for definitions: an edit is a new goal, then the old one deleted.
  const gone = old ? await api(`${S.data.base}/goals/${encodeURIComponent(old.id)}`, "DELETE") : null;
  resetGoalForm();
  message("goal-message", gone && !gone.ok ? `Saved as goal ${r.body.id}, but the old goal ${old.id} was not deleted: ${gone.error}`
    : `Goal "${r.body.name}" saved (id ${r.body.id}).`, gone && !gone.ok);
  await load();
}

async function deleteGoal(goal) {
  if (!confirm(`Delete the goal "${goal.name}"?`)) return;
  const r = await api(`${S.data.base}/goals/${encodeURIComponent(goal.id)}`, "DELETE");
  message("goal-message", r.ok ? `Goal "${goal.name}" deleted.` : `Not deleted: ${r.error}`, !r.ok);
  if (r.ok) await load();
}

function addStep(kind = "action", value = "") {
  const row = h("div", {class: "step-row", "data-testid": "funnel-step-row"},
    h("select", {"aria-label": "Step matches", "data-testid": "step-kind"},
      ["action", "name", "path"].map(k => h("option", {value: k}, k === "name" ? "event name" : k === "path" ? "page path" : k))),
    h("input", {"aria-label": "Step value", list: "actions", required: true, "data-testid": "step-value", value}),
    h("button", {type: "button", class: "secondary", "aria-label": "Remove step", "data-testid": "step-remove", onclick: () => row.remove()}, "×"));
  row.querySelector("select").value = kind;
  $("funnel-steps").append(row);
  return row;
}
function resetFunnelForm() {
  S.editFunnel = null;
  $("funnel-form").reset();
  $("funnel-steps").querySelectorAll(".step-row").forEach(row => row.remove());
  addStep(); addStep();
  $("funnel-form-title").textContent = "New funnel";
  $("funnel-cancel").hidden = true;
}
function editFunnel() {
  const fn = S.data.funnel.definition;
  resetFunnelForm();
  S.editFunnel = fn;
  $("funnel-steps").querySelectorAll(".step-row").forEach(row => row.remove());
  fn.steps.forEach(s => addStep(kindOf(s), s.path || s.action || s.name));
  $("funnel-form-title").textContent = `Edit funnel ${fn.name}`;
  $("funnel-name").value = fn.name;
  $("funnel-order").value = fn.order;
  $("funnel-window").value = fn.window;
  $("funnel-cancel").hidden = false;
  message("funnel-message", "Saving creates the edited funnel and then deletes this one.");
  $("funnel-name").focus();
}

async function saveFunnel(event) {
  event.preventDefault();
  if (!S.data) return message("funnel-message", "Load a site first.", true);
  const steps = [...$("funnel-steps").querySelectorAll(".step-row")].map(row =>
    matchOf(row.querySelector("select").value, row.querySelector("input").value.trim()));
  const old = S.editFunnel;
  const r = await api(`${S.data.base}/funnels`, "POST",
    {name: $("funnel-name").value.trim(), steps, order: $("funnel-order").value, window: $("funnel-window").value.trim()});
  if (!r.ok) return message("funnel-message", `Not saved: ${r.error}`, true);
  // No PUT in the API: the edited funnel is created, then the old one deleted.
  const gone = old ? await api(`${S.data.base}/funnels/${encodeURIComponent(old.id)}`, "DELETE") : null;
  resetFunnelForm();
  message("funnel-message", gone && !gone.ok ? `Saved as funnel ${r.body.id}, but the old funnel ${old.id} was not deleted: ${gone.error}`
    : `Funnel "${r.body.name}" saved (id ${r.body.id}).`, gone && !gone.ok);
  S.want.funnel = String(r.body.id);
  await load();
}

async function addTemplate() {
  if (!S.data) return message("funnel-message", "Load a site first.", true);
  const r = await api(`${S.data.base}/funnels/templates/ecommerce`, "POST");
  message("funnel-message", r.ok ? `E-commerce funnel added (id ${r.body.id}).` : `Not added: ${r.error}`, !r.ok);
  if (r.ok) { S.want.funnel = String(r.body.id); await load(); }
}

async function deleteFunnel() {
  const fn = S.data.funnel.definition;
  if (!confirm(`Delete the funnel "${fn.name}"?`)) return;
  const r = await api(`${S.data.base}/funnels/${encodeURIComponent(fn.id)}`, "DELETE");
  message("funnel-message", r.ok ? `Funnel "${fn.name}" deleted.` : `Not deleted: ${r.error}`, !r.ok);
  if (r.ok) { $("funnel").dataset.chosen = ""; await load(); }
}

// ------------------------------------------------------------------ wiring

const reload = () => { if (S.data) load(); };
$("load").addEventListener("click", () => $("token").value.trim() !== S.token ? connect() : load());
$("token").addEventListener("keydown", e => { if (e.key === "Enter") connect(); });
$("site-input").addEventListener("keydown", e => { if (e.key === "Enter") load(); });
$("site-select").addEventListener("change", load);
$("presets").addEventListener("click", e => { const b = e.target.closest("button"); if (b) { setPreset(b.dataset.preset); reload(); } });
for (const id of ["from", "to"]) $(id).addEventListener("change", () => setPreset("custom"));
for (const id of ["compare", "breakdown", "period", "product-breakdown", "conversion"]) $(id).addEventListener("change", reload);
// The dashboard offers lookbacks of 1 to 90 days (the API would take up to 365).
$("lookback").addEventListener("change", () => { $("lookback").value = Math.min(90, Math.max(1, parseInt($("lookback").value, 10) || 30)); reload(); });
for (const k of DIMENSIONS) $("filter-" + k).addEventListener("keydown", e => { if (e.key === "Enter") reload(); });
$("funnel").addEventListener("change", () => { $("funnel").dataset.chosen = $("funnel").value; reload(); });
$("currency").addEventListener("change", () => { S.currencyChosen = true; if (!S.data) return; renderPanels(); document.body.dataset.view = writeHash(); });
$("goal-form").addEventListener("submit", saveGoal);
$("goal-cancel").addEventListener("click", () => { resetGoalForm(); message("goal-message", ""); });
$("funnel-form").addEventListener("submit", saveFunnel);
$("funnel-add-step").addEventListener("click", () => addStep().querySelector("input").focus());
$("funnel-cancel").addEventListener("click", () => { resetFunnelForm(); message("funnel-message", ""); });
$("funnel-template").addEventListener("click", addTemplate);
$("funnel-edit").addEventListener("click", editFunnel);
$("funnel-delete").addEventListener("click", deleteFunnel);

resetFunnelForm();
readHash(location.hash || stored("trb_view") || "");
$("token").value = stored("trb_token") || "";
if ($("token").value) connect(); else status("Enter an admin token or a site's owner or read key.");
