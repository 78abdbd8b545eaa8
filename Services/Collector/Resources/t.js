/* Tributary tracker: <script src=.../t.js data-site=SITE defer> */
((w, d, n) => {
  const s = d.currentScript || d.querySelector('script[data-site]'), site = s && s.dataset.site;
  if (!site || (w.tributary && w.tributary.flush)) return;
  let ep = (s.dataset.endpoint || new URL(s.src, location.href).origin).replace(/\/+$/, '');
  if (!/\/v1\/events$/.test(ep)) ep += '/v1/events';
  // Storage: localStorage, else memory (private modes, sandboxed frames, quota).
  const ls = (() => { try { return w.localStorage } catch (e) {} })(), mem = {};
  const get = k => { if (k in mem) return mem[k]; try { return ls.getItem(k) } catch (e) { return null } };
  const put = (k, v) => { try { ls.setItem(k, v); delete mem[k] } catch (e) { mem[k] = v } };
  const del = k => { delete mem[k]; try { ls.removeItem(k) } catch (e) {} };
  const hex = a => Array.from(a, b => (b + 256).toString(16).slice(1)).join(''), rid = () => hex(crypto.getRandomValues(new Uint8Array(16)));
  const now = Date.now, VID = 'trb_vid', UID = 'trb_uid';
  let vid = get(VID) || rid(), uid = get(UID), ref = d.referrer, last, timer, at = 1 / 0;
  put(VID, vid);
  // Every page owns one queue key {q: unsent events, b: batches [{k: Idempotency-Key, e: events,
  // then s: body as first sent, d: not before (ms), n: failures, t: created}], t: touched,
  // c: page closed}.
  // Failed sends survive reloads: a page adopts the key of the page before it in this tab
  // (whose pagehide may still be running), and closed or stale keys of other pages.
  const P = 'trb_q:' + site + ':', me = P + rid(), fly = {}, LEASE = 1e4, STALE = 3e4, MAXAGE = 828e5;
  let prev; try { prev = sessionStorage.getItem('trb_page'); sessionStorage.setItem('trb_page', me) } catch (e) {}
  const load = k => { try { return JSON.parse(get(k)) || { q: [], b: [] } } catch (e) { return { q: [], b: [] } } };
  const save = (o, closed) => {
    o.b = o.b.filter(b => now() - b.t < MAXAGE).slice(-100);
    o.q.length || o.b.length ? put(me, JSON.stringify(Object.assign(o, { t: now(), c: closed }))) : del(me);
  };
  const cut = (o, t) => { while (o.q.length) o.b.push({ k: rid(), d: 0, n: 0, t, e: o.q.splice(0, 20) }) };
  const body = b => JSON.stringify({ batch: b.e, sent_at: new Date().toISOString() });
  const arm = ms => {
    const t = now() + Math.max(ms, 50);
    if (t < at) { clearTimeout(timer); at = t; timer = setTimeout(() => { at = 1 / 0; flush() }, t - now()) }
  };
  const adopt = (o, t) => {
    try {
      for (const k of Object.keys(ls)) {
        const x = k.indexOf(P) ? 0 : k != me && load(k);
        if (x && (x.c || k == prev || t - x.t > STALE)) { o.q = o.q.concat(x.q); o.b = o.b.concat(x.b); del(k) } else if (x) arm(STALE);
      }
    } catch (e) {}
  };
  // One batch in flight at a time, oldest first, so the Collector sees events in order; but a
  // batch whose answer an earlier page never got (most likely delivered) waits for its lease
  // to expire without holding the others back. A batch's body is fixed when first sent.
  const flush = () => {
    const o = load(me), t = now(), busy = Object.keys(fly).length;
    adopt(o, t);
    cut(o, t);
    const b = o.b.sort((x, y) => x.t - y.t).find(b => b.n || b.d <= t);
    o.b.forEach(x => x.d > t && arm(x.d - t));
    if (b && !busy && b.d <= t) b.s = b.s || body(b), delete b.e, b.d = t + LEASE, fly[b.k] = 1;
    save(o);
    if (b && fly[b.k] && !busy) post(b);
  };
  const post = b => fetch(ep, {
    method: 'POST', body: b.s, keepalive: b.s.length < 6e4,
    headers: { 'Content-Type': 'text/plain', 'Idempotency-Key': b.k }
  }).then(r => r.status < 400 || [408, 409, 429].includes(r.status) || r.status > 499
    ? done(b, r.status, r.headers.get('Retry-After'))
    : r.json().catch(() => ({})).then(j => done(b, r.status, 0, j.error || {})), () => done(b, 0));
  // 2xx: delivered. 4xx: refused for good, but a batch's valid events go again without the
  // ones the error names. Otherwise retry later, same key and body, with backoff.
  const done = (b, st, ra, err) => {
    delete fly[b.k];
    const o = load(me), x = o.b.find(y => y.k == b.k), t = now();
    if (x && st > 199 && st < 300) o.b.splice(o.b.indexOf(x), 1);
    else if (x && err) {
      const bad = (err.errors || [err]).map(e => e.index);
      console.warn('tributary: events refused', st, err);
      o.b.splice(o.b.indexOf(x), 1);
      if (bad[0] != null) o.q.unshift(...JSON.parse(x.s).batch.filter((_, i) => bad.indexOf(i) < 0)), cut(o, t);
    } else if (x) x.d = t + Math.max(ra * 1e3 || 0, Math.min(6e4, 1e3 * 2 ** ++x.n) * (1 + Math.random()) / 2);
    save(o);
    flush();
  };
  // Shopify storefronts: the cart and checkout tokens (cookies `cart`, `checkout_token`), each
  // reported once per new value, let the Collector's Shopify webhook find this visitor.
  const tokens = e => {
    for (const [c, k] of [['cart', 'shopify_cart_token'], ['checkout_token', 'shopify_checkout_token']]) {
      let v = d.cookie.match('(?:^|; )' + c + '=([^;]*)');
      try { v = v && decodeURIComponent(v[1]) } catch (x) { v = v[1] }
      if (v && get('trb_' + c) != v) put('trb_' + c, v), e.properties = Object.assign({}, e.properties, { [k]: v });
    }
    return e;
  };
  // Ad consent (`tributary.consent({ads: true})`), remembered, goes with every later event; with
  // it, Meta's browser cookies (`_fbp`, `_fbc`) go too, for sites that forward to Meta.
  const CONSENT = 'trb_consent', cookie = c => { const v = d.cookie.match('(?:^|; )' + c + '=([^;]*)'); return v ? v[1] : void 0 };
  const ads = () => get(CONSENT), consent = () => {
    const a = ads();
    return a == null ? {} : a == '1' ? { consent: { ads: true }, fbp: cookie('_fbp'), fbc: cookie('_fbc') } : { consent: { ads: false } };
  };
  const send = (type, name, extra) => {
    const o = load(me);
    o.q.push(tokens(Object.assign({ site, type, name, anonymous_id: vid, user_id: uid || void 0, url: location.href, referrer: ref || void 0, timestamp: now() }, consent(), extra)));
    save(o);
    o.q.length > 9 ? flush() : arm(1e3);
  };
  // Hidden pages may never run again: hand never-sent batches to sendBeacon, unless sends
  // are failing (a beacon's fate is unknown, and it would overtake the backlog). Batches sent
  // before wait for their Idempotency-Key retry: a beacon cannot carry headers.
  const hide = closed => {
    const o = load(me);
    cut(o, now());
    if (!o.b.some(b => b.n)) for (const b of o.b.filter(b => b.e)) {
      let ok; try { ok = n.sendBeacon(ep, new Blob([body(b)], { type: 'text/plain' })) } catch (e) {}
      if (ok) o.b.splice(o.b.indexOf(b), 1);
    }
    save(o, closed);
  };
  const pv = () => {
    const u = location.href;
    if (u == last) return;
    if (last) ref = last;
    last = u;
    send('pageview');
  };
  const move = (p, x, k, to = k) => k in p && (x[to] = p[k], delete p[k]);
  const bag = p => Object.keys(p).length ? { properties: p } : {};
  const api = (m, ...a) => api[m] && api[m](...a);
  // Money as the Collector's compatible endpoints take it: `value`, else `revenue` (a number or
  // decimal string), with its `currency`. Anything the native event has no place for stays a
  // property, where the Collector keeps it: a currency without an amount, `items` that is no
  // list (servoki's item count), an `order` that is no object.
  api.track = (name, props) => {
    const p = Object.assign({}, props), x = {};
    move(p, x, p.value != null ? 'value' : 'revenue', 'value');
    // The shopper's email and phone are never properties: the Collector hashes them for the
    // ad platforms and keeps them nowhere else.
    for (const k of ['event_id', 'order_id', 'email', 'phone']) move(p, x, k);
    if (Array.isArray(p.items)) move(p, x, 'items');
    if (typeof p.order == 'object') move(p, x, 'order');
    if (x.value != null || x.items || x.order) move(p, x, 'currency');
    send('event', name, Object.assign(x, bag(p)));
  };
  api.setVisitor = id => { if (id) put(VID, vid = '' + id) };
  api.consent = c => put(CONSENT, c && c.ads ? '1' : '0');
  // The visitor's id, for the shop to hand its payment processor (Stripe's client_reference_id).
  api.visitorId = () => vid;
  api.identify = (id, traits) => { if (id) put(UID, uid = '' + id), send('identify', void 0, bag(Object.assign({}, traits))) };
  api.push = a => api(...a);
  api.flush = flush;
  // Calls made before the script loaded: a stub's array, or a stub function's `.q` of arguments.
  const queued = x => Array.from(Array.isArray(x) ? x : (x && x.q) || []);
  const pre = w.tributary, calls = queued(pre);
  w.tributary = api;
  // Vendor snippets, unchanged (data-compat="servoki,oa,convead"): each call becomes the native
  // event that vendor's compatible endpoint on the Collector makes of it (CompatibleShapes.swift).
  // OpenAnalyticsAPI, as POST /v1/projects/{site}/events: oa(type, name, properties) keeps its type
  // as a property (`event_type: conversion` marks a conversion); identify and pageview are ours.
  const oa = (t, n, p) => t == 'pageview' ? pv() : t == 'identify' ? api.identify(n, p)
    : (t == 'event' || t == 'conversion') && n && api.track(n, Object.assign({}, p, { event_type: t }));
  // Convead, as /watch/event: convead('event', type, properties, visitor_info). Personal data
  // never leaves the page: an email only as the SHA-256 of its trimmed, lower-cased form, a phone
  // as that of its digits, names not at all; without crypto.subtle (insecure pages) they are
  // dropped. Hashing is asynchronous, so the calls go out in order along one promise chain.
  const mail = v => ('' + v).trim().toLowerCase(), digits = v => ('' + v).replace(/\D/g, '');
  const hashed = (v, f) => v == null || !(v = f(v)) ? void 0
    : Promise.resolve().then(() => crypto.subtle.digest('SHA-256', new TextEncoder().encode(v))).then(b => hex(new Uint8Array(b)), () => void 0);
  let chain = Promise.resolve();
  const convead = (m, type, props, info) => m == 'event' && type && (chain = chain.then(async () => {
    const p = Object.assign({}, props), i = info || {}, x = {}, vi = {};
    vi.email_sha256 = await hashed(i.email, mail);
    vi.phone_sha256 = await hashed(i.phone, digits);
    if (vi.email_sha256 || vi.phone_sha256) p.visitor_info = vi;
    // `link` is Convead's page view, which the tracker sends itself, once per URL.
    if (type == 'link') return pv();
    if (type == 'update_info') return send('identify', type, bag(p));
    if (type == 'mailto' && 'email' in p) p.email_sha256 = await hashed(p.email, mail), delete p.email;
    let name = type;
    // A custom event is named by its key; the others by their type, with their items and currency.
    if (type == 'custom') {
      const k = ['key', 'name', 'event'].find(k => p[k] != null);
      if (k) name = p[k], delete p[k];
    } else {
      // Convead's orders have no currency: the site's default_currency prices them.
      if (type == 'purchase') move(p, x, 'order_id'), move(p, x, 'revenue', 'value');
      move(p, x, 'currency');
      if (Array.isArray(p.items)) move(p, x, 'items');
      else if ((type == 'add_to_cart' || type == 'remove_from_cart') && p.product_id != null) {
        x.items = [{}];
        for (const k of ['product_id', 'qnt', 'price', 'product_name']) move(p, x.items[0], k, k == 'product_name' ? 'name' : k);
      }
    }
    send('event', name, Object.assign(x, bag(p)));
  }).catch(console.warn));
  // Each replaces the vendor's stub and replays the calls it queued (servoki's docs show no stub,
  // its calls go to servoki.track; a `.q` left by one is replayed all the same).
  const vendors = { servoki: { track: api.track }, oa, convead }, later = [];
  const compat = (s.dataset.compat || '').split(',').map(v => v.trim());
  for (const v in vendors) if (compat.includes(v)) later.push(...queued(w[v]).map(a => () => (vendors[v].track || vendors[v])(...a))), w[v] = vendors[v];
  for (const m of ['pushState', 'replaceState']) {
    const f = history[m];
    history[m] = function () { const r = f.apply(this, arguments); pv(); return r };
  }
  const on = (type, f, target = w) => target.addEventListener(type, f);
  on('popstate', pv);
  on('pageshow', e => { if (e.persisted) last = 0, pv() });
  on('pagehide', () => hide(1));
  on('online', () => { const o = load(me); o.b.forEach(b => fly[b.k] || (b.d = 0)); save(o); flush() });
  on('visibilitychange', () => d.visibilityState == 'hidden' ? hide() : flush(), d);
  calls.forEach(a => a[0] == 'setVisitor' && api(...a));
  pv();
  calls.forEach(a => a[0] != 'setVisitor' && api(...a));
  later.forEach(f => f());
  // Convead's plugins make their page's calls (view_product, …) in ConveadSettings.onready.
  const cs = compat.includes('convead') && w.ConveadSettings;
  if (cs && typeof cs.onready == 'function') setTimeout(cs.onready);
  flush();
})(window, document, navigator);
