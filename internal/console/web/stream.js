// The live alert stream: identity and areas first, then an EventSource with
// its own reconnect and back-off, and the alert map it keeps up to date.
import {S, pub} from './state.js';
import {api} from './api.js';
import {fold, areaName} from './format.js';
import {schedule, bump, onAlertsChanged, renderUser, renderStale, setConn} from './render.js';
import {queueBeep, maybeBeep} from './sound.js';

let es = null;
let retries = 0;
let retryTimer = 0;
let watchdog = 0;

// cancelRetry is for the token prompt: no reconnect with a rejected token.
export function cancelRetry() {
  clearTimeout(retryTimer);
}

export async function loadMe() {
  let me;
  try {
    me = await api('GET', '/api/v1/whoami');
  } catch (err) {
    if (err.status !== 404) throw err;
    me = {name: '', role: 'operator', auth: !!S.token}; // an older iocd without whoami
  }
  if (!me || typeof me !== 'object') me = {name: '', role: 'operator', auth: false};
  const changed = !S.me || S.me.role !== me.role || S.me.name !== me.name;
  S.me = me;
  if (changed) {
    S.lver++;
    renderUser();
    schedule();
  }
}

async function loadAreas() {
  try {
    const list = await api('GET', '/api/v1/areas');
    if (!Array.isArray(list)) return;
    S.areas = new Map(list.filter((a) => a && a.slug).map((a) => [a.slug, a]));
    S.areaList = [...S.areas.values()].sort((a, b) => String(a.name).localeCompare(String(b.name), 'vi'));
    S.layout = null;
    S.areaVer++;
    for (const a of S.alerts.values()) prep(a);
    bump();
  } catch { /* retried at the next (re)connection */ }
}

// start (re)establishes everything: identity first, because a 401 there
// asks for a token instead of hammering the stream with a bad one.
export async function start() {
  clearTimeout(retryTimer);
  try {
    await loadMe();
  } catch (err) {
    if (err.status === 401) return; // the token prompt is up
    setConn('reconnecting');
    scheduleRetry();
    return;
  }
  if (!S.areas.size) loadAreas();
  openStream();
}

function openStream() {
  closeStream();
  const url = '/api/v1/alerts/stream' + (S.token ? '?access_token=' + encodeURIComponent(S.token) : '');
  const src = new EventSource(url);
  es = src;
  src.addEventListener('snapshot', (e) => { if (es === src) onSnapshot(e); });
  src.addEventListener('alert', (e) => { if (es === src) onAlert(e); });
  // Both connection failures and the server's own "event: error" land here.
  // The browser's built-in retry is not used: it has no back-off and gives
  // up on some errors, and the wall screen must recover by itself.
  src.addEventListener('error', (e) => { if (es === src) onStreamError(e); });
  // A proxy or a starting server can accept the connection and send
  // nothing; without a snapshot in time the connection counts as failed.
  watchdog = setTimeout(() => { if (es === src && S.conn !== 'live') onStreamError(null); }, 15000);
}

export function closeStream() {
  clearTimeout(watchdog);
  if (es) {
    es.close();
    es = null;
  }
}

export function onStreamError(e) {
  if (e && typeof e.data === 'string' && e.data) {
    try { S.streamError = JSON.parse(e.data).error || e.data; } catch { S.streamError = e.data; }
  }
  closeStream();
  setConn('reconnecting');
  scheduleRetry();
}

function scheduleRetry() {
  clearTimeout(retryTimer);
  const delay = Math.min(1000 * 2 ** retries, 10000); // 1 s, 2 s, 4 s, 8 s, 10 s, 10 s…
  retries++;
  pub.reconnects++;
  S.retryAt = Date.now() + delay;
  retryTimer = setTimeout(start, delay);
  renderStale();
}

function prep(a) {
  a._start = Date.parse(a.startsAt) || 0;
  a._search = fold([a.summary, a.rule, a.area, areaName(a.area), a.source, a.assignee, a.acknowledgedBy,
    a.category, a.subCategory, a.type, a.metric, ...Object.values(a.labels || {})].join(' '));
  return a;
}

// noteSeen decides what is a NEW critical: a fingerprint or firing episode
// (id) not seen critical before in this page session, not yet acknowledged.
function noteSeen(a) {
  const fp = a.fingerprint;
  const prev = S.seen.get(fp);
  if (a.severity === 'critical' && !a.acknowledgedBy) {
    if (!prev || prev.severity !== 'critical' || prev.id !== a.id) {
      S.fresh.add(fp);
      queueBeep();
    }
  } else {
    S.fresh.delete(fp);
  }
  S.seen.set(fp, {id: a.id, severity: a.severity});
}

function onSnapshot(e) {
  let list;
  try { list = JSON.parse(e.data); } catch { return; }
  const next = new Map();
  for (const a of Array.isArray(list) ? list : []) {
    if (a && a.fingerprint && a.status !== 'resolved') next.set(a.fingerprint, prep(a));
  }
  S.alerts = next;
  for (const fp of [...S.fresh]) if (!next.has(fp)) S.fresh.delete(fp);
  // Only firing fingerprints are remembered, so a wall screen left on for
  // weeks does not grow without bound.
  for (const fp of [...S.seen.keys()]) if (!next.has(fp)) S.seen.delete(fp);
  for (const a of next.values()) noteSeen(a);
  S.lastSnapshot = Date.now();
  S.streamError = '';
  retries = 0;
  pub.snapshots++;
  pub.lastSnapshot = new Date(S.lastSnapshot).toISOString();
  setConn('live');
  clearTimeout(watchdog);
  bump();
  onAlertsChanged(null);
  maybeBeep();
}

function onAlert(e) {
  let a;
  try { a = JSON.parse(e.data); } catch { return; }
  if (!a || !a.fingerprint) return;
  const fp = a.fingerprint;
  if (a.status === 'resolved') {
    const cur = S.alerts.get(fp);
    // A late resolution of an older episode must not remove a newer one.
    if (cur && (!a.id || !cur.id || cur.id === a.id)) {
      S.alerts.delete(fp);
      S.fresh.delete(fp);
      S.seen.delete(fp); // a new episode has a new id and counts as new anyway
    }
  } else {
    S.alerts.set(fp, prep(a));
    noteSeen(a);
  }
  bump();
  onAlertsChanged(fp);
  maybeBeep();
}
