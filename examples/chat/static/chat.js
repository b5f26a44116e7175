// The chat page. Plain JavaScript, no build step, no dependencies.
//
// Everything that comes from the network (names, texts, room names) is put on the page with
// textContent or element properties, never parsed as markup, so a message like
// `<img src=x onerror=alert(1)>` is shown as the text it is.
'use strict';

(() => {
  const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/;
  const MAX_TEXT_BYTES = 4096;
  // Reconnect backoff: 0.5 s, 1 s, 2 s, ... capped at 15 s, each with "equal jitter"
  // (a random delay between half and all of it) so clients do not all return at once.
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 15000;

  const $ = (id) => document.getElementById(id);
  const el = {
    status: $('status'), where: $('where'),
    joinView: $('join-view'), joinForm: $('join-form'), joinError: $('join-error'),
    name: $('name'), room: $('room'),
    chatView: $('chat-view'), roomName: $('room-name'), share: $('share'), copy: $('copy'),
    presence: $('presence'), peopleCount: $('people-count'), leave: $('leave'),
    messages: $('messages'), sendForm: $('send-form'), text: $('text'), send: $('send'),
  };

  let ws = null;          // the current socket, if any
  let room = null;        // the room we are in (or trying to be in)
  let nick = '';          // the nickname asked for ('' = a guest name from the server)
  let me = null;          // the nickname the server gave us (from `history.you`)
  let attempt = 0;        // reconnect attempts since the last successful join
  let retryTimer = null;
  let countdown = null;
  // Messages shown, by `epoch/offset`, so a reconnect never shows one twice.
  const seen = new Set();
  // The last position seen per room ({epoch, offset}): a reconnect asks for what came after
  // it (`?epoch=E&since=OFFSET`). Kept while the page lives; a reload starts afresh.
  const positions = new Map();
  let resuming = false;   // the current socket asked to resume from a position

  function setStatus(state, text) {
    el.status.dataset.state = state;
    el.status.textContent = text;
  }

  function setComposer(enabled) {
    el.text.disabled = !enabled;
    el.send.disabled = !enabled;
  }

  function pageUrl(params) {
    const q = new URLSearchParams(params).toString();
    return location.pathname + (q ? '?' + q : '');
  }

  function time(ts) {
    const d = new Date(ts);
    const t = document.createElement('time');
    t.className = 'time';
    t.dateTime = d.toISOString();
    t.title = d.toLocaleString();
    t.textContent = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return t;
  }

  function nearBottom() {
    const m = el.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  function append(node, force) {
    const stick = force || nearBottom();
    el.messages.appendChild(node);
    if (stick) el.messages.scrollTop = el.messages.scrollHeight;
  }

  function remember(epoch, offset) {
    const p = positions.get(room);
    if (!p || p.epoch !== epoch || offset > p.offset) positions.set(room, { epoch, offset });
  }

  function showMessage(m, force) {
    const key = `${m.epoch}/${m.offset}`;
    if (seen.has(key)) return;
    seen.add(key);
    remember(m.epoch, m.offset);
    el.messages.querySelector('.empty')?.remove();
    const li = document.createElement('li');
    li.className = 'msg' + (m.from === me ? ' mine' : '');
    li.dataset.offset = String(m.offset);
    li.dataset.epoch = m.epoch;
    const from = document.createElement('span');
    from.className = 'from';
    from.textContent = m.from;
    const text = document.createElement('div');
    text.className = 'text';
    text.textContent = m.text;
    li.append(from, time(m.ts), text);
    append(li, force);
  }

  function showSystem(text, kind) {
    const li = document.createElement('li');
    li.className = 'sys' + (kind ? ' ' + kind : '');
    li.textContent = text;
    append(li, true);
  }

  function showPresence(names) {
    el.presence.replaceChildren(...names.map((n) => {
      const li = document.createElement('li');
      li.textContent = n;
      if (n === me) li.className = 'me';
      return li;
    }));
    el.peopleCount.textContent = String(names.length);
  }

  function handle(ev) {
    switch (ev.type) {
      case 'history':
        me = ev.you;
        attempt = 0;
        if (resuming) {
          // Back after a drop: only what we missed, after what is shown.
          for (const m of ev.messages) showMessage(m, true);
          if (!ev.recovered) showSystem('Some messages could not be recovered.', 'error lost');
        } else {
          seen.clear();
          el.messages.replaceChildren();
          if (ev.messages.length === 0) showSystem(`No messages in ${ev.room} yet. Say hi!`, 'empty');
          for (const m of ev.messages) showMessage(m, true);
        }
        positions.set(room, { epoch: ev.epoch, offset: ev.offset });
        setStatus('open', `connected as ${me}`);
        el.status.dataset.extensions = ws ? ws.extensions : ''; // e.g. permessage-deflate
        el.chatView.classList.remove('offline');
        setComposer(true);
        el.text.focus();
        break;
      case 'message':
        showMessage(ev, ev.from === me);
        break;
      case 'join':
        if (ev.name !== me) showSystem(`${ev.name} joined`);
        break;
      case 'leave':
        showSystem(`${ev.name} left`);
        break;
      case 'presence':
        showPresence(ev.names);
        break;
      case 'error':
        showSystem(ev.message, 'error');
        break;
      default:
        console.warn('unknown event', ev);
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    clearInterval(countdown);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const params = new URLSearchParams();
    if (nick) params.set('name', nick);
    const pos = positions.get(room);
    resuming = Boolean(pos);
    if (pos) {
      params.set('epoch', pos.epoch);
      params.set('since', String(pos.offset));
    }
    const q = params.toString();
    const query = q ? '?' + q : '';
    const sock = new WebSocket(`${proto}//${location.host}/chat/${encodeURIComponent(room)}${query}`);
    ws = sock;
    setStatus('connecting', 'connecting…');
    sock.onmessage = (e) => {
      if (ws !== sock) return;
      let ev;
      try { ev = JSON.parse(e.data); } catch { return; }
      handle(ev);
    };
    sock.onclose = (e) => {
      if (ws !== sock) return; // we left on purpose
      ws = null;
      setComposer(false);
      el.chatView.classList.add('offline'); // presence is stale until we are back
      if (e.code === 1008) { // refused (e.g. a bad room name): retrying would not help
        setStatus('closed', 'refused: ' + (e.reason || 'policy violation'));
        return;
      }
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    attempt += 1;
    const due = Date.now() + delay;
    const tick = () => {
      const s = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      setStatus('reconnecting', `disconnected, retrying in ${s} s…`);
    };
    tick();
    countdown = setInterval(tick, 250);
    retryTimer = setTimeout(connect, delay);
  }

  function join(newRoom, newNick) {
    room = newRoom;
    nick = newNick;
    me = null;
    attempt = 0;
    history.replaceState(null, '', pageUrl(nick ? { room, name: nick } : { room }));
    document.title = `${room} · endpoint chat`;
    el.where.textContent = '#' + room;
    el.roomName.textContent = room;
    el.share.value = location.origin + pageUrl({ room });
    positions.delete(room); // a fresh join: the last messages, not a resume
    seen.clear();
    el.messages.replaceChildren();
    showPresence([]);
    el.joinView.hidden = true;
    el.chatView.hidden = false;
    setComposer(false);
    connect();
  }

  function leave() {
    const sock = ws;
    ws = null;
    clearTimeout(retryTimer);
    clearInterval(countdown);
    if (sock) sock.close(1000, 'left the room');
    history.replaceState(null, '', pageUrl(nick ? { name: nick } : {}));
    document.title = 'endpoint chat';
    el.where.textContent = '';
    el.chatView.hidden = true;
    el.joinView.hidden = false;
    el.room.value = room || 'lobby';
    room = null;
    setStatus('idle', 'not connected');
  }

  el.joinForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const r = el.room.value.trim();
    if (!ROOM_RE.test(r)) {
      el.joinError.textContent = "A room name is 1 to 64 letters, digits, '_', '-' or '.'.";
      el.joinError.hidden = false;
      return;
    }
    el.joinError.hidden = true;
    const n = el.name.value.trim();
    try { localStorage.setItem('chat.name', n); } catch { /* private mode */ }
    join(r, n);
  });

  el.sendForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = el.text.value;
    if (!ws || ws.readyState !== WebSocket.OPEN || text.trim() === '') return;
    if (new TextEncoder().encode(text).length > MAX_TEXT_BYTES) {
      showSystem(`That message is longer than ${MAX_TEXT_BYTES} bytes; please shorten it.`, 'error');
      return;
    }
    ws.send(JSON.stringify({ text }));
    el.text.value = '';
  });

  el.leave.addEventListener('click', leave);

  // The browser knows before TCP does when the network is gone (Wi-Fi off, airplane mode):
  // drop the socket at once, and come back as soon as the network does, resuming from the
  // last position so nothing said meanwhile is missed.
  window.addEventListener('offline', () => {
    if (!room) return;
    const sock = ws;
    if (sock) {
      ws = null;
      sock.close(4000, 'offline');
    }
    clearTimeout(retryTimer);
    clearInterval(countdown);
    setComposer(false);
    el.chatView.classList.add('offline');
    setStatus('offline', 'offline: waiting for the network…');
  });
  window.addEventListener('online', () => {
    if (!room || ws) return;
    attempt = 0;
    connect();
  });

  el.copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(el.share.value);
      el.copy.textContent = 'Copied';
    } catch {
      el.share.select(); // no clipboard API (plain http): let the user copy it
    }
    setTimeout(() => { el.copy.textContent = 'Copy'; }, 1500);
  });

  // A link like /?room=rust&name=ada joins that room directly.
  const params = new URLSearchParams(location.search);
  let saved = '';
  try { saved = localStorage.getItem('chat.name') || ''; } catch { /* private mode */ }
  const linkName = (params.get('name') || saved).trim().slice(0, 32);
  const linkRoom = (params.get('room') || '').trim();
  el.name.value = linkName;
  if (linkRoom && ROOM_RE.test(linkRoom)) {
    join(linkRoom, linkName);
  } else if (linkRoom) {
    el.room.value = linkRoom;
    el.joinError.textContent = "That link's room name is not valid: use 1 to 64 letters, digits, '_', '-' or '.'.";
    el.joinError.hidden = false;
  }
})();
