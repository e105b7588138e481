// Rendering: one render per frame for any number of changes, the parts of
// the page outside the views (banner, user, connection, stale notice,
// static labels) and the age ticker. The current view is kept here, not in
// the router, so the views can ask for a render without importing app.js.
import {$, $$, html, setHTML} from './dom.js';
import {S, pub} from './state.js';
import {t, label, ROLE_KEY, CONN_KEY} from './i18n.js';
import {fmtDateTime, dur, serverNow, areaName} from './format.js';

let view = null;
export const currentView = () => view;
export function setView(v) {
  view = v;
}

let frame = 0;

// schedule coalesces any number of changes into one render per frame; a
// hidden tab gets no animation frames, so it falls back to a timer (the
// title and banner must still be right when someone looks).
export function schedule() {
  if (frame) return;
  const run = () => { frame = 0; render(); };
  frame = document.hidden ? setTimeout(run, 500) : requestAnimationFrame(run);
}

export function render() {
  pub.renders++;
  renderBanner();
  if (view && view.render) view.render();
}

export function onAlertsChanged(fp) {
  if (view && view.alertChanged) view.alertChanged(fp);
}

export function bump() {
  S.ver++;
  pub.alerts = S.alerts.size;
  schedule();
}

let bannerKey = '';
// A language switch redraws the banner even if the alerts in it are the same.
export function forgetBanner() {
  bannerKey = '';
}
function renderBanner() {
  const el = $('#banner');
  const fresh = [...S.fresh].map((fp) => S.alerts.get(fp)).filter(Boolean);
  pub.newCritical = fresh.length;
  document.title = (fresh.length ? `(${fresh.length}) ` : '') + t('appName');
  if (!fresh.length) {
    el.hidden = true;
    bannerKey = '';
    return;
  }
  fresh.sort((a, b) => b._start - a._start);
  const a = fresh[0];
  const key = `${S.lver}|${S.areaVer}|${fresh.length}|${a.fingerprint}|${a.summary}`;
  if (key !== bannerKey) {
    bannerKey = key;
    setHTML(el, html`<span class="banner-text">${t('bannerNew', {n: fresh.length})}: ${a.summary || a.rule} — ${areaName(a.area)}</span>
      <a class="btn small" data-testid="banner-open" href="#/alert/${encodeURIComponent(a.fingerprint)}">${t('bannerOpen')}</a>
      <button type="button" class="btn small" data-testid="banner-seen">${t('bannerSeen')}</button>`);
  }
  el.hidden = false;
}

export function renderUser() {
  const el = $('[data-testid="user"]');
  const me = S.me;
  pub.user = me ? me.name : '';
  pub.role = me ? me.role : '';
  if (!me) {
    setHTML(el, '');
  } else {
    setHTML(el, html`<b>${me.name || t('none')}</b> · ${label(ROLE_KEY, me.role)}${me.auth ? '' : html` <span class="hint">(${t('apiOpen')})</span>`}`);
  }
  $('#signout').hidden = !S.token;
}

export function renderStale() {
  const el = $('#stale');
  const down = S.conn === 'reconnecting' || S.conn === 'connecting';
  document.body.classList.toggle('is-stale', down);
  if (!down) {
    el.hidden = true;
    return;
  }
  const secs = Math.max(0, Math.ceil((S.retryAt - Date.now()) / 1000));
  const parts = [S.lastSnapshot ? t('staleMsg', {at: fmtDateTime(S.lastSnapshot)}) : t('staleNever')];
  if (S.streamError) parts.push(S.streamError);
  if (S.retryAt > Date.now()) parts.push(t('retryIn', {n: secs}));
  el.textContent = parts.join(' ');
  el.hidden = S.conn === 'connecting' && !S.retryAt;
}

export function setConn(c) {
  S.conn = c;
  pub.conn = c;
  const el = $('[data-testid="conn"]');
  el.dataset.state = c;
  const txt = $('.conn-text', el);
  txt.dataset.i18n = CONN_KEY[c];
  txt.textContent = t(CONN_KEY[c]);
  renderStale();
}

export function applyStatic(root = document) {
  document.documentElement.lang = S.lang;
  for (const el of $$('[data-i18n]', root)) el.textContent = t(el.dataset.i18n);
  for (const el of $$('[data-i18n-placeholder]', root)) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of $$('[data-i18n-title]', root)) el.title = t(el.dataset.i18nTitle);
  $('#lang').textContent = t('langSwitch');
  const mute = $('#mute');
  mute.textContent = S.muted ? t('unmute') : t('mute');
  mute.setAttribute('aria-pressed', String(S.muted));
  mute.classList.toggle('danger', S.muted);
}

// The age ticker rewrites text only: no re-render, so 500 rows cost 500
// text comparisons a second.
export function tick() {
  const now = serverNow();
  for (const el of $$('[data-since]')) {
    const txt = dur(now - Number(el.dataset.since));
    if (el.textContent !== txt) el.textContent = txt;
  }
  if (S.conn !== 'live') renderStale();
}
