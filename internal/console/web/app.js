// iocstream operators' console (CONTRACT §9): the entry module, which routes
// and wires events.
//
// Plain ES2020 modules, no framework, no build step and nothing from the
// internet: IOC networks are closed and the page is embedded in iocd, which
// serves every module from /assets/, so the relative imports resolve there.
// The page's Content-Security-Policy forbids inline scripts and styles, so
// every event handler is attached here (one delegated listener per event
// type, keyed by data-action attributes) and no markup carries a style
// attribute. How markup is made safely: see dom.js.
import {$, $$, addHTML} from './dom.js';
import {S, pub, LOCAL, store} from './state.js';
import {onUnauthorized} from './api.js';
import {schedule, render, bump, currentView, setView, forgetBanner, renderUser, setConn, applyStatic, tick} from './render.js';
import {start, loadMe, onStreamError} from './stream.js';
import {needToken, submitToken, signOut} from './token.js';
import {audio, beep} from './sound.js';
import {board, setFilter} from './board.js';
import {mapView} from './map.js';
import {detail, act, silenceFromAlert} from './detail.js';
import {silences, matcherRow, renumberMatchers, submitSilence, expireSilence} from './silences.js';
import {sources} from './sources.js';

const VIEWS = {board, map: mapView, alert: detail, silences, sources};

// ------------------------------------------------------------------ router

function parseRoute() {
  const h = location.hash.replace(/^#\/?/, '');
  const q = h.indexOf('?');
  const path = q >= 0 ? h.slice(0, q) : h;
  const parts = path.split('/').filter(Boolean);
  let arg = '';
  try { arg = decodeURIComponent(parts.slice(1).join('/')); } catch { arg = parts.slice(1).join('/'); }
  return {name: parts[0] || 'board', arg, params: new URLSearchParams(q >= 0 ? h.slice(q + 1) : '')};
}

function onRoute() {
  const r = parseRoute();
  if (!Object.hasOwn(VIEWS, r.name) || (r.name === 'alert' && !r.arg)) r.name = 'board'; // not an inherited property such as #/constructor
  const old = currentView();
  if (old && old.leave) old.leave();
  S.route = r;
  pub.route = r.name;
  const view = VIEWS[r.name];
  setView(view);
  for (const a of $$('.nav a')) {
    const on = a.dataset.route === r.name || (r.name === 'alert' && a.dataset.route === 'board');
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  view.enter(r);
  render();
  window.scrollTo(0, 0);
}

// ------------------------------------------------------------------ events

function onClick(e) {
  const el = e.target;
  if (el.closest('#banner')) {
    // Any click on the banner means someone has seen it.
    S.fresh.clear();
    bump();
    return;
  }
  const target = el.closest('[data-action]');
  if (target) {
    const d = target.dataset;
    switch (d.action) {
      case 'ack': act('ack'); break;
      case 'unack': act('unack'); break;
      case 'assign': act('assign'); break;
      case 'comment': act('comments'); break;
      case 'silence': silenceFromAlert(); break;
      case 'chart-hours':
        detail.hours = Number(d.hours) || 6;
        detail.loadSeries();
        schedule();
        break;
      case 'filter-sev': setFilter('severity', S.filters.severity === d.sev ? '' : d.sev); break;
      case 'clear-filters':
        for (const f of $$('[data-filter]')) f.value = '';
        S.filters = {severity: '', category: '', area: '', text: ''};
        S.fver++;
        history.replaceState(null, '', '#/board');
        schedule();
        break;
      case 'sil-add': {
        const box = $('#sil-matchers');
        addHTML(box, matcherRow(box.children.length, {name: 'rule', value: ''}));
        break;
      }
      case 'sil-remove': {
        const row = target.closest('[data-matcher]');
        if (row) row.remove();
        renumberMatchers();
        break;
      }
      case 'sil-expire': expireSilence(d.id, target); break;
      default: break;
    }
    return;
  }
  const row = el.closest('tr[data-fingerprint]');
  if (row && !el.closest('a')) {
    location.hash = '#/alert/' + encodeURIComponent(row.dataset.fingerprint);
    return;
  }
  const unit = el.closest('[data-testid="map-unit"]');
  if (unit) location.hash = '#/board?area=' + encodeURIComponent(unit.dataset.area);
}

function onKey(e) {
  if (e.key !== 'Enter' && e.key !== ' ') return;
  const el = e.target;
  if (el.matches('tr[data-fingerprint], [data-testid="map-unit"]')) {
    e.preventDefault();
    // SVG elements have no click(): dispatch one so the same path handles it.
    el.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  }
}

function onInput(e) {
  const el = e.target;
  if (el.dataset.filter) {
    setFilter(el.dataset.filter, el.value);
    return;
  }
  if (el.dataset.m === 'name') {
    const row = el.closest('[data-matcher]');
    const isLabel = el.value === 'labels.';
    $('[data-m-labelbox]', row).hidden = !isLabel;
    $('[data-m="value"]', row).setAttribute('list', 'dl-' + (isLabel ? 'none' : el.value));
  }
}

function onSubmit(e) {
  if (e.target.id === 'token-form') return submitToken(e);
  if (e.target.id === 'sil-form') {
    e.preventDefault();
    submitSilence();
  }
}

function unlockAudio() {
  // Browsers start audio only after a user gesture; the first click or key
  // press opens the context so a later alarm can sound.
  if (!S.muted) audio();
}

function boot() {
  onUnauthorized(needToken);
  applyStatic();
  document.addEventListener('click', onClick);
  document.addEventListener('keydown', onKey);
  document.addEventListener('input', onInput);
  document.addEventListener('change', onInput);
  document.addEventListener('submit', onSubmit);
  document.addEventListener('pointerdown', unlockAudio, {once: true, capture: true});
  document.addEventListener('keydown', unlockAudio, {once: true, capture: true});
  $('#lang').addEventListener('click', () => {
    S.lang = S.lang === 'vi' ? 'en' : 'vi';
    pub.lang = S.lang;
    store.set(LOCAL, 'ioc.lang', S.lang);
    S.lver++;
    applyStatic();
    setConn(S.conn);
    renderUser();
    forgetBanner();
    render();
  });
  $('#mute').addEventListener('click', () => {
    S.muted = !S.muted;
    pub.muted = S.muted;
    store.set(LOCAL, 'ioc.muted', S.muted ? '1' : '0');
    applyStatic();
    if (!S.muted) beep(1); // so the operator hears that sound works
  });
  $('#signout').addEventListener('click', signOut);
  window.addEventListener('hashchange', onRoute);
  // A half-open connection (cable pulled, NAT timeout) shows no error on an
  // EventSource; a cheap periodic request finds it and also picks up a
  // changed role.
  setInterval(() => {
    if (S.conn === 'live') loadMe().catch((err) => { if (err.status === 0) onStreamError(null); });
  }, 30000);
  window.addEventListener('online', () => { if (S.conn !== 'live' && S.conn !== 'unauthorized') start(); });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) schedule(); });
  setInterval(tick, 1000);
  setConn('connecting');
  renderUser();
  onRoute();
  start();
}

boot();
