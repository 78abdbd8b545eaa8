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
  const rid = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), b => (b + 256).toString(16).slice(1)).join('');
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
  const send = (type, name, extra) => {
    const o = load(me);
    o.q.push(Object.assign({ site, type, name, anonymous_id: vid, user_id: uid || void 0, url: location.href, referrer: ref || void 0, timestamp: now() }, extra));
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
  const api = (m, ...a) => api[m] && api[m](...a);
  api.track = (name, props) => {
    const p = Object.assign({}, props), x = {};
    for (const k of ['value', 'currency', 'event_id', 'order_id', 'items', 'order']) if (k in p) x[k] = p[k], delete p[k];
    if (Object.keys(p).length) x.properties = p;
    send('event', name, x);
  };
  api.setVisitor = id => { if (id) put(VID, vid = '' + id) };
  api.identify = id => { if (id) put(UID, uid = '' + id), send('identify') };
  api.push = a => api(...a);
  api.flush = flush;
  const pre = w.tributary, calls = Array.from(Array.isArray(pre) ? pre : (pre && pre.q) || []);
  w.tributary = api;
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
  flush();
})(window, document, navigator);
