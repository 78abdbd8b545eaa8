"use strict";
const $ = id => document.getElementById(id);
const S = {token: null, admin: false, gen: 0, data: null};
const store = (k, v) => { try { v == null ? localStorage.removeItem(k) : localStorage.setItem(k, v); } catch (e) {} };
const stored = k => { try { return localStorage.getItem(k); } catch (e) { return null; } };

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

const group = digits => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
const int = v => v == null ? "–" : String(v).replace(/\d+/, group);
const find = (list, cur) => (list || []).find(m => m.currency === cur);
// "1234.50" + "EUR" → "1,234.50 EUR": the answer's decimal text, regrouped, never a float.
function money(list, cur) {
  const m = find(list, cur);
  if (!m) return "–";
  const [whole, frac] = m.amount.split(".");
  return whole.replace(/\d+/, group) + (frac == null ? "" : "." + frac) + " " + m.currency;
}
const pct = v => v == null ? "–" : (Math.round(Number(v) * 10000) / 100).toFixed(2) + "%";
function duration(v) {
  if (v == null) return "–";
  const s = Math.round(Number(v)), d = Math.floor(s / 86400), hr = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return d ? `${d}d ${hr}h` : hr ? `${hr}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}
// A number cell: the shown text plus the raw API value for tests and copy-paste.
const num = (testid, raw, text) => h("td", {class: "n", "data-testid": testid, "data-value": raw == null ? "" : String(raw)}, text);
const cash = (testid, list, cur) => num(testid, (find(list, cur) || {}).amount, money(list, cur));
const failure = (testid, r) => h("p", {class: "error", "data-testid": testid}, r.error);

async function api(path) {
  let res, body = null;
  try { res = await fetch(path, {headers: {Authorization: "Bearer " + S.token}, cache: "no-store"}); }
  catch (e) { return {ok: false, status: 0, error: "network error: " + e.message}; }
  try { body = await res.json(); } catch (e) {}
  if (res.ok && body) return {ok: true, status: res.status, body};
  const message = body && body.error && body.error.message;
  return {ok: false, status: res.status, error: message || `HTTP ${res.status} ${res.statusText}`.trim()};
}

function dayText(date) { return date.toISOString().slice(0, 10); }
function defaultRange() {
  const to = new Date(Date.now() - new Date().getTimezoneOffset() * 60000);
  $("to").value = dayText(to);
  $("from").value = dayText(new Date(to.getTime() - 29 * 86400000));
}
const status = (text, bad) => { $("status").textContent = text; $("status").className = bad ? "error" : ""; };
const currentSite = () => (S.admin ? $("site-select").value : $("site-input").value).trim();

// A new token: an admin token lists the sites; any other is a read key for a typed site id.
async function connect() {
  S.token = $("token").value.trim();
  store("trb_token", S.token || null);
  if (!S.token) { status("Enter an admin token or a site's read key.", true); return; }
  const r = await api("/v1/admin/sites");
  S.admin = r.ok;
  $("site-pick").hidden = !r.ok;
  $("site-text").hidden = r.ok;
  if (r.ok) {
    const sites = r.body.sites || [], want = stored("trb_site");
    $("site-select").replaceChildren(...sites.map(s => h("option", {value: s.id}, s.name && s.name !== s.id ? `${s.name} (${s.id})` : s.id)));
    if (sites.some(s => s.id === want)) $("site-select").value = want;
    if (!sites.length) { status("No sites yet: create one with POST /v1/admin/sites.", true); return; }
  } else if (!$("site-input").value) {
    $("site-input").value = stored("trb_site") || "";
  }
  await load();
}

async function load() {
  const site = currentSite(), from = $("from").value, to = $("to").value;
  if (!site) { status("Enter a site id.", true); return; }
  store("trb_site", site);
  const gen = ++S.gen, base = "/v1/sites/" + encodeURIComponent(site), range = `from=${from}&to=${to}`;
  document.body.dataset.state = "loading";
  status("Loading…");
  const [overview, sources, days, goals, funnels, reconciliation] = await Promise.all([
    api(`${base}/overview?${range}`),
    api(`${base}/revenue?${range}&breakdown=source,medium,campaign`),
    api(`${base}/revenue?${range}&breakdown=day`),
    api(`${base}/goals`),
    api(`${base}/funnels`),
    api(`${base}/reconciliation?${range}&breakdown=source`),
  ]);
  const goalReports = goals.ok ? await Promise.all((goals.body.goals || []).map(goal =>
    api(`${base}/goals/${encodeURIComponent(goal.id)}/report?${range}`).then(r => ({goal, r})))) : [];
  if (gen !== S.gen) return;
  S.data = {site, from, to, base, range, overview, sources, days, goals, goalReports, funnels, funnel: null, reconciliation};
  const list = funnels.ok ? funnels.body.funnels || [] : [];
  $("funnel").replaceChildren(...list.map(f => h("option", {value: f.id}, f.name || f.id)));
  $("funnel").hidden = !list.length;
  if (list.some(f => String(f.id) === stored("trb_funnel"))) $("funnel").value = stored("trb_funnel");
  if (list.length) await loadFunnel(gen);
  if (gen !== S.gen) return;
  render();
  const bad = [overview, sources, days].find(r => !r.ok);
  status(bad ? bad.error : `${site} · ${from} – ${to}`, !!bad);
  document.body.dataset.loaded = `${site} ${from} ${to}`;
  document.body.dataset.state = "ready";
}

async function loadFunnel(gen) {
  const d = S.data, id = $("funnel").value;
  store("trb_funnel", id);
  const r = await api(`${d.base}/funnels/${encodeURIComponent(id)}/report?${d.range}`);
  if (gen === S.gen) d.funnel = {id, r};
}

// Currencies present in any answer; amounts in different currencies are never added.
function currencies() {
  const d = S.data, seen = new Set(), add = list => (list || []).forEach(m => seen.add(m.currency));
  if (d.overview.ok) ["revenue", "refunds"].forEach(k => add(d.overview.body[k]));
  for (const r of [d.sources, d.days]) if (r.ok) r.body.rows.forEach(row => { add(row.revenue); add(row.refunds); });
  d.goalReports.forEach(g => g.r.ok && add(g.r.body.revenue));
  if (d.reconciliation.ok) RECON_MONEY.forEach(k => add(d.reconciliation.body.totals[k]));
  if (d.funnel && d.funnel.r.ok) (d.funnel.r.body.steps || []).forEach(s => add(s.revenue));
  return [...seen].sort();
}

function render() {
  const codes = currencies(), select = $("currency");
  const keep = [select.value, stored("trb_currency")].find(c => codes.includes(c)) || codes[0] || "";
  select.replaceChildren(...(codes.length ? codes.map(c => h("option", {value: c}, c)) : [h("option", {value: ""}, "–")]));
  select.value = keep;
  renderPanels();
}

function renderPanels() {
  const cur = $("currency").value;
  document.body.dataset.currency = cur;
  renderOverview(cur); renderDays(cur); renderSources(cur); renderReconciliation(cur); renderGoals(cur); renderFunnel(cur);
}

function renderOverview(cur) {
  const r = S.data.overview;
  if (!r.ok) return show("overview", failure("overview-error", r));
  const o = r.body, tile = (key, label, raw, text) =>
    h("div", {class: "tile"}, h("b", {"data-testid": "overview-" + key, "data-value": raw == null ? "" : String(raw)}, text), h("span", {}, label));
  const amount = key => tile(key, key.replace("_", " ").replace("aov", "average order") + (cur ? ` (${cur})` : ""),
    (find(o[key], cur) || {}).amount, money(o[key], cur));
  show("overview", h("div", {class: "tiles"},
    tile("visitors", "visitors", o.visitors, int(o.visitors)),
    tile("sessions", "sessions", o.sessions, int(o.sessions)),
    tile("pageviews", "pageviews", o.pageviews, int(o.pageviews)),
    tile("orders", "orders (all currencies)", o.orders, int(o.orders)),
    tile("conversion_rate", "orders per session", o.conversion_rate, pct(o.conversion_rate)),
    ["revenue", "refunds", "net_revenue", "aov"].map(amount)));
}

function renderDays(cur) {
  const r = S.data.days;
  if (!r.ok) return show("days", failure("days-error", r));
  const byDay = new Map(r.body.rows.map(row => [row.day, row]));
  // One slot per day of the range (a bar where that day has revenue in the currency).
  const slots = [], first = new Date(S.data.from + "T00:00:00Z"), last = new Date(S.data.to + "T00:00:00Z");
  for (let t = first.getTime(); t <= last.getTime() && slots.length < 400; t += 86400000) slots.push(dayText(new Date(t)));
  if (slots.length >= 400) slots.splice(0, slots.length, ...[...byDay.keys()].sort());
  const bars = slots.map(day => ({day, row: byDay.get(day), m: byDay.has(day) ? find(byDay.get(day).revenue, cur) : null}));
  const max = Math.max(0, ...bars.filter(b => b.m).map(b => Number(b.m.amount_minor)));
  const W = 900, H = 200, top = 16, bottom = 20, slot = W / Math.max(1, slots.length), plot = H - top - bottom;
  const chart = svg("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "data-testid": "days-chart", "aria-label": `revenue per day in ${cur}`},
    svg("line", {x1: 0, x2: W, y1: H - bottom, y2: H - bottom, stroke: "#c8cdd7"}),
    bars.filter(b => b.m).map(b => {
      const height = max > 0 ? Math.max(1, Number(b.m.amount_minor) / max * plot) : 1, i = slots.indexOf(b.day);
      return svg("rect", {class: "bar", "data-testid": "day-bar", "data-day": b.day, "data-amount": b.m.amount, "data-orders": b.row.orders,
        x: i * slot + slot * 0.12, width: Math.max(1, slot * 0.76), y: H - bottom - height, height},
        svg("title", {}, `${b.day}: ${money(b.row.revenue, cur)}, ${int(b.row.orders)} orders (all currencies)`));
    }),
    svg("text", {x: 2, y: 11}, max > 0 ? "max " + money([bars.map(b => b.m).find(m => m && Number(m.amount_minor) === max)], cur) : ""),
    svg("text", {x: 2, y: H - 5}, slots[0] || ""),
    svg("text", {x: W - 2, y: H - 5, "text-anchor": "end"}, slots[slots.length - 1] || ""));
  const count = bars.filter(b => b.m).length;
  show("days", chart, h("p", {class: "note", "data-testid": "days-summary"},
    `${count} of ${slots.length} days with revenue in ${cur || "any currency"}; hover a bar for its amount.`));
}

function renderSources(cur) {
  const r = S.data.sources;
  if (!r.ok) return show("sources", failure("sources-error", r));
  if (!r.body.rows.length) return show("sources", h("p", {class: "muted", "data-testid": "sources-empty"}, "No orders in this range."));
  const money4 = (row) => ["revenue", "refunds", "net_revenue", "aov"].map(k => cash(k, row[k], cur));
  show("sources", h("table", {"data-testid": "sources-table"},
    h("thead", {}, h("tr", {}, ["Source", "Medium", "Campaign"].map(t => h("th", {}, t)),
      ["Orders", "First orders", `Revenue ${cur}`, `Refunds ${cur}`, `Net ${cur}`, `AOV ${cur}`].map(t => h("th", {class: "n"}, t)))),
    h("tbody", {}, r.body.rows.map(row => h("tr", {"data-testid": "source-row", "data-source": row.source, "data-medium": row.medium, "data-campaign": row.campaign},
      h("td", {"data-testid": "source"}, row.source), h("td", {"data-testid": "medium"}, row.medium), h("td", {"data-testid": "campaign"}, row.campaign),
      num("orders", row.orders, int(row.orders)), num("first_orders", row.first_orders, int(row.first_orders)), money4(row)))),
    h("tfoot", {}, h("tr", {"data-testid": "source-totals"}, h("td", {colspan: 3}, "Total"),
      num("orders", r.body.totals.orders, int(r.body.totals.orders)), num("first_orders", r.body.totals.first_orders, int(r.body.totals.first_orders)),
      money4(r.body.totals)))),
    h("p", {class: "note"}, "Orders count every currency; amounts are in the selected currency only."));
}

// Counts before and after the loss rate, then money in the selected currency: as the API names them.
const RECON_COUNTS = ["orders", "confirmed", "tracked", "confirmed_not_tracked", "confirmed_not_in_browser"];
const RECON_AFTER = ["tracked_not_confirmed", "amount_mismatches"];
const RECON_MONEY = ["processor_revenue", "tracked_revenue", "amount_difference", "refunds", "chargebacks"];

function renderReconciliation(cur) {
  const r = S.data.reconciliation;
  if (!r.ok) return show("reconciliation", failure("reconciliation-error", r));
  if (!r.body.rows.length) return show("reconciliation", h("p", {class: "muted", "data-testid": "reconciliation-empty"}, "No orders in this range."));
  const cells = row => [RECON_COUNTS.map(k => num(k, row[k], int(row[k]))),
    num("browser_loss_rate", row.browser_loss_rate, pct(row.browser_loss_rate)),
    RECON_AFTER.map(k => num(k, row[k], int(row[k]))), RECON_MONEY.map(k => cash(k, row[k], cur))];
  show("reconciliation", h("table", {"data-testid": "reconciliation-table"},
    h("thead", {}, h("tr", {}, h("th", {}, "Source"),
      ["Orders", "Confirmed", "Tracked", "Confirmed, not tracked", "Confirmed, not in browser", "Browser loss", "Tracked, not confirmed",
       "Amount mismatches", `Processor ${cur}`, `Tracked ${cur}`, `Difference ${cur}`, `Refunds ${cur}`, `Chargebacks ${cur}`].map(t => h("th", {class: "n"}, t)))),
    h("tbody", {}, r.body.rows.map(row => h("tr", {"data-testid": "reconciliation-row", "data-source": row.source},
      h("td", {"data-testid": "source"}, row.source), cells(row)))),
    h("tfoot", {}, h("tr", {"data-testid": "reconciliation-totals"}, h("td", {}, "Total"), cells(r.body.totals)))),
    h("p", {class: "note"}, "Confirmed: the payment processor reported the order; tracked: the browser or the shop's server did. " +
      "Tracked and difference (processor − tracked) are of the orders both confirmed and tracked."));
}

function renderGoals(cur) {
  const d = S.data;
  if (!d.goals.ok || !d.goalReports.length) {
    return show("goals", h("p", {class: "muted", "data-testid": "goals-empty"}, "No goals." + (d.goals.ok ? "" : ` (${d.goals.error})`)));
  }
  show("goals", h("table", {"data-testid": "goals-table"},
    h("thead", {}, h("tr", {}, h("th", {}, "Goal"), ["Visitors", "Converters", "Conversions", "Rate", `Revenue ${cur}`].map(t => h("th", {class: "n"}, t)))),
    h("tbody", {}, d.goalReports.map(({goal, r}) => h("tr", {"data-testid": "goal-row", "data-goal": goal.id},
      h("td", {"data-testid": "name"}, goal.name || goal.id),
      r.ok ? [num("visitors", r.body.visitors, int(r.body.visitors)), num("converters", r.body.converters, int(r.body.converters)),
              num("conversions", r.body.conversions, int(r.body.conversions)),
              num("conversion_rate", r.body.conversion_rate, pct(r.body.conversion_rate)), cash("revenue", r.body.revenue, cur)]
           : h("td", {colspan: 5, class: "error", "data-testid": "goal-error"}, r.error))))));
}

function renderFunnel(cur) {
  const d = S.data;
  if (!d.funnels.ok || !d.funnel) {
    return show("funnel-chart", h("p", {class: "muted", "data-testid": "funnels-empty"}, "No funnels." + (d.funnels.ok ? "" : ` (${d.funnels.error})`)));
  }
  const r = d.funnel.r;
  if (!r.ok) return show("funnel-chart", failure("funnel-error", r));
  const steps = r.body.steps || [], start = Number((steps[0] || {}).persons) || 0;
  show("funnel-chart", start ? null : h("p", {class: "note", "data-testid": "funnel-nobody"}, "Nobody entered this funnel's first step in this range."),
    h("div", {"data-testid": "funnel-chart", "data-funnel": d.funnel.id}, steps.map((s, i) => {
    const prev = steps[i - 1];
    // `dropped` of the step, or of the one before: whichever counts the visitors lost between them.
    const lost = !prev ? null : s.dropped === prev.persons - s.persons || prev.dropped == null ? s.dropped : prev.dropped;
    return [
      prev ? h("div", {class: "drop", "data-testid": "funnel-drop"},
        "▼ ", h("span", {"data-testid": "dropped", "data-value": lost}, int(lost)), " dropped · ",
        h("span", {"data-testid": "conversion_from_previous", "data-value": s.conversion_from_previous}, pct(s.conversion_from_previous)),
        " continued · median ", h("span", {"data-testid": "median_seconds_from_previous", "data-value": s.median_seconds_from_previous}, duration(s.median_seconds_from_previous))) : null,
      h("div", {class: "step", "data-testid": "funnel-step", "data-step": s.name},
        h("div", {class: "label"}, h("span", {}, `${i + 1}. ${s.name}`),
          h("span", {}, h("b", {"data-testid": "persons", "data-value": s.persons}, int(s.persons)), " persons · ",
            h("span", {"data-testid": "conversion_from_start", "data-value": s.conversion_from_start}, pct(s.conversion_from_start)),
            find(s.revenue, cur) ? [" · ", h("span", {"data-testid": "revenue", "data-value": find(s.revenue, cur).amount}, money(s.revenue, cur))] : null)),
        h("div", {class: "track"}, h("div", {class: "fill", style: `width:${start ? Math.min(100, Number(s.persons) / start * 100) : 0}%`}))),
    ];
  })));
}

$("load").addEventListener("click", () => $("token").value.trim() !== S.token ? connect() : load());
$("token").addEventListener("keydown", e => { if (e.key === "Enter") connect(); });
$("site-input").addEventListener("keydown", e => { if (e.key === "Enter") load(); });
$("site-select").addEventListener("change", load);
$("currency").addEventListener("change", () => { store("trb_currency", $("currency").value); if (S.data) renderPanels(); });
$("funnel").addEventListener("change", async () => { const gen = S.gen; await loadFunnel(gen); if (gen === S.gen) render(); });
defaultRange();
$("token").value = stored("trb_token") || "";
if ($("token").value) connect(); else status("Enter an admin token or a site's read key.");
