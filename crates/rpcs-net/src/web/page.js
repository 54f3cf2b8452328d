// The live view: JSON-RPC over a WebSocket to the address the page came from,
// one batch a round. Every name from the server is written with textContent,
// never as markup.
(() => {
  'use strict';
  const NOT_AUTHENTICATED = -32001;
  const MAX_LISTED = 500;
  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const isMaster = body.dataset.master === 'true';
  const tokens = body.dataset.tokens === 'true';
  const methods = new Set(
    Array.from(document.querySelectorAll('#methods dt[data-name]'), (dt) => dt.dataset.name));
  if (!methods.has('rpc.stats') && !isMaster) return;
  const query = new URLSearchParams(location.search);
  const interval = Math.max(200, (Number(query.get('interval')) || 2) * 1000);

  let socket = null;
  let nextId = 1;
  let pending = new Map();
  let credentials = null;
  let before = null;
  let retry = 500;
  let timer = null;

  $('live').hidden = false;
  if (isMaster) $('master').hidden = false;

  function setState(text, kind) {
    const state = $('state');
    state.textContent = text;
    state.className = 'state ' + (kind || '');
  }

  function address() {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + location.pathname;
  }

  // Sends calls as one batch; resolves to their results in order, or rejects
  // with the first error. With `lenient`, a call that faults (a stack
  // removed since it was listed) gives null instead, unless the fault is
  // about authentication.
  function call(calls, lenient) {
    const ws = socket;
    const batch = calls.map(([method, params]) => ({ jsonrpc: '2.0', id: nextId++, method, params }));
    let answers = batch.map((c) => new Promise((resolve, reject) => pending.set(c.id, { resolve, reject })));
    if (lenient) {
      answers = answers.map((a) => a.catch((e) => {
        if (e && (e.code === NOT_AUTHENTICATED || e.code === 0)) throw e;
        return null;
      }));
    }
    ws.send(JSON.stringify(batch.length === 1 ? batch[0] : batch));
    return Promise.all(answers);
  }

  function received(event) {
    let doc;
    try { doc = JSON.parse(event.data); } catch (e) { return; }
    for (const msg of Array.isArray(doc) ? doc : [doc]) {
      if (msg === null || typeof msg !== 'object') continue;
      if ('method' in msg) {
        // The server calling the page: nothing here answers calls.
        if (msg.id !== undefined && msg.id !== null) {
          socket.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'the page serves no methods' } }));
        }
        continue;
      }
      const waiting = pending.get(msg.id);
      if (!waiting) continue;
      pending.delete(msg.id);
      if (msg.error) waiting.reject(msg.error); else waiting.resolve(msg.result);
    }
  }

  function connect() {
    clearTimeout(timer);
    setState('connecting');
    const ws = new WebSocket(address());
    socket = ws;
    ws.onmessage = received;
    ws.onopen = async () => {
      retry = 500;
      try {
        if (credentials) await call([['rpc.auth', credentials]]);
        setState('live', 'up');
        $('login').hidden = true;
        loop(ws);
      } catch (e) {
        failed(ws, e);
      }
    };
    ws.onclose = (event) => {
      for (const waiting of pending.values()) waiting.reject({ code: 0, message: 'connection closed' });
      pending = new Map();
      if (socket !== ws) return;
      socket = null;
      // 1008: the server closed an unauthenticated socket.
      if (event.code === 1008 && tokens) return askForToken();
      setState('disconnected, retrying', 'down');
      timer = setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  function failed(ws, error) {
    if (error && error.code === NOT_AUTHENTICATED) {
      socket = null;
      ws.close();
      return askForToken(credentials ? 'Those credentials were refused.' : null);
    }
    setState('error: ' + ((error && error.message) || error), 'down');
    if (socket === ws) ws.close();
  }

  function askForToken(problem) {
    credentials = null;
    setState('needs a token', 'down');
    const form = $('login');
    form.hidden = false;
    if (problem) form.querySelector('p').textContent = problem;
  }

  $('login').addEventListener('submit', (event) => {
    event.preventDefault();
    credentials = [$('login-name').value, $('login-secret').value];
    $('login-secret').value = '';
    connect();
  });

  async function loop(ws) {
    while (socket === ws && ws.readyState === WebSocket.OPEN) {
      try {
        render(await round());
      } catch (e) {
        return failed(ws, e);
      }
      await new Promise((resolve) => { timer = setTimeout(resolve, interval); });
    }
  }

  // One look at the server: its totals, and on a master the listings and
  // every listed stack's and storage's numbers.
  async function round() {
    const first = [['rpc.stats', []]];
    if (isMaster) first.push(['provider.getAllClients', []], ['stack.getAllNames', []], ['storage.getAllNames', []]);
    const [stats, clients, stackNames, storageNames] = await call(first);
    const look = { at: performance.now(), stats, clients: clients || {}, stacks: [], storages: [], own: first.length };
    if (!isMaster) return look;
    const stacks = (stackNames || []).slice(0, MAX_LISTED);
    const storages = (storageNames || []).slice(0, MAX_LISTED);
    const more = [];
    for (const s of stacks) more.push(['stack.getStats', [s]]);
    for (const s of storages) more.push(['storage.getSize', [s]]);
    const numbers = more.length ? await call(more, true) : [];
    look.own += more.length;
    look.stacks = stacks.map((name, i) => Object.assign({ name }, numbers[i]));
    look.storages = storages.map((name, i) => ({ name, size: numbers[stacks.length + i] }));
    look.stackTotal = (stackNames || []).length;
    look.storageTotal = (storageNames || []).length;
    return look;
  }

  // A change per second between two looks; null before there are two.
  function perSecond(now, old, delta) {
    const secs = old ? (now.at - old.at) / 1000 : 0;
    return secs > 0 && Number.isFinite(delta) ? delta / secs : null;
  }

  // Counts only grow: a drop means the server restarted, not a negative rate.
  function floor(r) {
    return r === null ? null : Math.max(0, r);
  }

  function rate(value) {
    if (value === null || value === undefined) return '';
    return value.toFixed(Math.abs(value) < 10 ? 1 : 0);
  }

  function render(look) {
    const s = look.stats || {};
    const was = (before && before.stats) || {};
    const own = before ? before.own : 0;
    const callsRate = floor(perSecond(look, before, (s.calls || 0) - (was.calls || 0) - own));
    const faultsRate = floor(perSecond(look, before, (s.faults || 0) - (was.faults || 0)));
    const boxes = [
      ['calls', s.calls], ['calls/s', rate(callsRate)], ['faults', s.faults],
      ['faults/s', rate(faultsRate)], ['connections', s.connections],
    ];
    if (isMaster) {
      boxes.push(['clients', Object.keys(look.clients).length]);
      boxes.push(['stacks', look.stackTotal], ['storages', look.storageTotal]);
    }
    $('totals').replaceChildren(...boxes.map(([label, value]) => {
      const box = el('div');
      box.dataset.total = label;
      box.append(el('b', value === undefined || value === '' ? '–' : String(value)), el('span', label));
      return box;
    }));
    if (isMaster) renderMaster(look);
    before = look;
  }

  function renderMaster(look) {
    const now = Date.now() / 1000;
    const clients = Object.entries(look.clients).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    fill('clients', clients.map(([name, c]) => {
      const status = c.status && typeof c.status === 'object' ? c.status : null;
      const mode = status ? status.mode : c.status;
      const visit = Date.parse(c.lastVisit);
      const idle = Number.isNaN(visit) ? '' : Math.max(0, Math.round(now - visit / 1000)) + ' s ago';
      return [name, c.host, text(mode), status ? text(status.url) : '', idle,
        status ? num(status.leases) : '', status ? num(status.pages) : '',
        status ? num(status.errors) : '', num(c.pendingMessages)];
    }), [5, 6, 7, 8]);
    fill('stacks', look.stacks.map((st) => {
      const old = before && before.stacks.find((o) => o.name === st.name);
      const per = (field, counted) => {
        const r = old ? perSecond(look, before, st[field] - old[field]) : null;
        return rate(counted ? floor(r) : r);
      };
      return [st.name, num(st.size), num(st.leased),
        per('itemsIn', true), per('itemsOut', true), per('size', false)];
    }), [1, 2, 3, 4, 5]);
    fill('storages', look.storages.map((st) => [st.name, num(st.size)]), [1]);
    count('clients-count', clients.length, clients.length);
    count('stacks-count', look.stacks.length, look.stackTotal);
    count('storages-count', look.storages.length, look.storageTotal);
  }

  function count(id, shown, total) {
    $(id).textContent = shown < total ? `${shown} of ${total}` : String(total);
  }

  function text(v) {
    if (v === null || v === undefined) return '';
    return typeof v === 'string' ? v : JSON.stringify(v);
  }

  function num(v) {
    return typeof v === 'number' ? String(v) : '';
  }

  function el(tag, content) {
    const e = document.createElement(tag);
    if (content !== undefined) e.textContent = content;
    return e;
  }

  // Replaces a table's rows; the first cell of each row names it.
  function fill(id, rows, numeric) {
    const tbody = $(id).tBodies[0];
    tbody.replaceChildren(...rows.map((cells) => {
      const tr = el('tr');
      tr.dataset.name = cells[0];
      cells.forEach((cell, i) => {
        const td = el('td', cell === undefined || cell === null ? '' : String(cell));
        if (numeric.includes(i)) td.className = 'num';
        if (id === 'clients' && i === 3) td.className = 'url';
        tr.append(td);
      });
      return tr;
    }));
  }

  connect();
})();
