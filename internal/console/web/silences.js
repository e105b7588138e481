// Silences (#/silences): the form that creates one and the list.
import {$, $$, html, setHTML} from './dom.js';
import {S} from './state.js';
import {t, i, label, SIL_STATE_KEY} from './i18n.js';
import {SEVERITIES, fmtDateTime, serverNow, localInput, localToISO, tzName} from './format.js';
import {api, canAct} from './api.js';
import {schedule} from './render.js';

const SIL_STATE_RANK = {active: 0, pending: 1, expired: 2};
const MATCHER_NAMES = ['rule', 'severity', 'kind', 'type', 'metric', 'area', 'source', 'category', 'labels.'];

export function matcherRow(n, m) {
  const isLabel = m.name.startsWith('labels.');
  const name = isLabel ? 'labels.' : m.name;
  return html`<div class="matcher-row" data-matcher>
<label>${i('silName')}<select data-testid="sil-name-${n}" data-m="name">${MATCHER_NAMES.map((v) => html`<option value="${v}"${v === name ? html` selected` : ''}>${v === 'labels.' ? 'labels.<key>' : v}</option>`)}</select></label>
<label data-m-labelbox${isLabel ? '' : html` hidden`}>${i('silLabelKey')}<input type="text" data-testid="sil-label-${n}" data-m="label" value="${isLabel ? m.name.slice(7) : ''}" placeholder="river"></label>
<label>${i('silOp')}<select data-testid="sil-eq-${n}" data-m="eq"><option value="="${m.isEqual === false ? '' : html` selected`}>=</option><option value="!="${m.isEqual === false ? html` selected` : ''}>≠ (!=)</option></select></label>
<label>${i('silValue')}<input type="text" data-testid="sil-value-${n}" data-m="value" value="${m.value || ''}" list="dl-${isLabel ? 'none' : name}"></label>
<label class="check"><input type="checkbox" data-testid="sil-regex-${n}" data-m="regex"${m.isRegex ? html` checked` : ''}> ${i('silRegex')}</label>
<button type="button" class="btn small ghost" data-action="sil-remove" data-testid="sil-remove-${n}" data-i18n-title="silRemove" title="${t('silRemove')}">✕</button>
</div>`;
}

export function renumberMatchers() {
  $$('#sil-matchers [data-matcher]').forEach((row, n) => {
    for (const el of $$('[data-testid]', row)) el.dataset.testid = el.dataset.testid.replace(/-\d+$/, '-' + n);
  });
}

function fmtMatcher(m) {
  const op = (m.isEqual === false ? '!' : '=') + (m.isRegex ? '~' : (m.isEqual === false ? '=' : ''));
  return `${m.name}${op}"${m.value}"`;
}

export const silences = {
  list: null,
  err: '',
  key: '',
  timer: 0,
  reload: 0,
  enter(r) {
    this.key = '';
    const p = r.params;
    const pre = [];
    for (const [name, value] of p) {
      if (MATCHER_NAMES.includes(name) || (name.startsWith('labels.') && name.length > 7)) pre.push({name, value, isRegex: false, isEqual: true});
    }
    if (!pre.length) pre.push({name: 'rule', value: '', isRegex: false, isEqual: true});
    const now = serverNow();
    const dl = (name, values) => html`<datalist id="dl-${name}">${[...values].filter(Boolean).sort().map((v) => html`<option value="${v}"></option>`)}</datalist>`;
    const all = [...S.alerts.values()];
    const vals = (f) => new Set(all.map((a) => a[f]));
    setHTML($('#view'), html`<section class="silences" data-testid="silences">
  <form class="panel sil-form" id="sil-form" data-testid="silence-form" novalidate hidden>
    <h2>${i('silTitle')}</h2>
    <div id="sil-matchers">${pre.map((m, n) => matcherRow(n, m))}</div>
    <button type="button" class="btn small" data-action="sil-add" data-testid="sil-add-matcher">${i('silAdd')}</button>
    <div class="row">
      <label>${i('silStarts')}<input type="datetime-local" id="sil-starts" data-testid="sil-starts" value="${localInput(now)}"></label>
      <label>${i('silEnds')}<input type="datetime-local" id="sil-ends" data-testid="sil-ends" value="${localInput(now + 2 * 3600e3)}"></label>
      <span class="hint" id="sil-tz"></span>
    </div>
    <div class="row"><label class="wide">${i('silComment')}<textarea id="sil-comment" data-testid="sil-comment" rows="2" maxlength="1000"></textarea></label></div>
    <p class="error" id="sil-error" data-testid="silence-error" role="alert" hidden></p>
    <p class="okmsg" id="sil-ok" data-testid="silence-ok" role="status" hidden></p>
    <button type="submit" class="btn primary" data-testid="silence-submit">${i('silSubmit')}</button>
  </form>
  ${['rule', 'kind', 'type', 'metric', 'source', 'category'].map((f) => dl(f, vals(f)))}
  ${dl('area', S.areaList.map((a) => a.slug))}
  ${dl('severity', SEVERITIES)}
  <div class="panel">
    <h2>${i('silList')}</h2>
    <p class="error" id="sil-list-error" data-testid="silence-list-error" hidden></p>
    <div class="table-wrap"><table data-testid="silences-table">
      <thead><tr><th>${i('colState')}</th><th>${i('colMatchers')}</th><th>${i('colStart')}</th><th>${i('colEnd')}</th><th>${i('colCreator')}</th><th>${i('colComment')}</th><th></th></tr></thead>
      <tbody id="sil-rows"></tbody>
    </table></div>
    <p class="empty" id="sil-empty" hidden></p>
  </div>
</section>`);
    if (p.has('new') || pre.some((m) => m.value)) setTimeout(() => { const c = $('#sil-comment'); if (c) c.focus(); }, 0);
    this.load();
    this.timer = setInterval(() => this.load(), 15000);
  },
  leave() {
    clearInterval(this.timer);
    clearTimeout(this.reload);
  },
  // A snapshot is re-sent whenever silences change: a hint to reload.
  alertChanged(fp) {
    if (fp !== null) return;
    clearTimeout(this.reload);
    this.reload = setTimeout(() => this.load(), 500);
  },
  async load() {
    try {
      const list = await api('GET', '/api/v1/silences');
      this.list = Array.isArray(list) ? list : [];
      this.err = '';
    } catch (err) {
      this.err = err.message;
    }
    this.key = '';
    schedule();
  },
  render() {
    const form = $('#sil-form');
    if (form) form.hidden = !canAct();
    $('#sil-tz').textContent = t('silTz', {tz: tzName()});
    // An expire that failed stays said until the next one, whatever the
    // list reloads in between.
    const msg = this.err || this.actErr || '';
    const key = `${S.lver}|${canAct()}|${msg}|${JSON.stringify(this.list)}`;
    if (key === this.key) return;
    this.key = key;
    const errEl = $('#sil-list-error');
    errEl.textContent = msg;
    errEl.hidden = !msg;
    const state = (s) => (s.status && s.status.state) || 'expired';
    const list = (this.list || []).map((s, n) => ({s, n}))
      .sort((p, q) => ((SIL_STATE_RANK[state(p.s)] ?? 3) - (SIL_STATE_RANK[state(q.s)] ?? 3)) || (p.n - q.n))
      .map((x) => x.s);
    setHTML($('#sil-rows'), list.map((s) => {
      const st = state(s);
      return html`<tr data-testid="silence-row" data-silence-id="${s.id}" data-state="${st}" class="${st}">
<td><span class="state state-${st}">${label(SIL_STATE_KEY, st)}</span></td>
<td>${(s.matchers || []).map((m) => html`<span class="matcher">${fmtMatcher(m)}</span> `)}</td>
<td>${fmtDateTime(s.startsAt)}</td>
<td>${fmtDateTime(s.endsAt)}</td>
<td>${s.createdBy || t('none')}</td>
<td class="comment">${s.comment || ''}</td>
<td>${canAct() && st !== 'expired' ? html`<button type="button" class="btn small danger" data-action="sil-expire" data-id="${s.id}" data-testid="btn-expire">${t('btnExpire')}</button>` : ''}</td>
</tr>`;
    }));
    const empty = $('#sil-empty');
    empty.textContent = this.list ? t('silNone') : t('loading');
    empty.hidden = list.length > 0;
  },
};

export async function submitSilence() {
  const bad = $('#sil-error'), ok = $('#sil-ok');
  bad.hidden = ok.hidden = true;
  const fail = (msg) => { bad.textContent = msg; bad.hidden = false; };
  const matchers = [];
  for (const row of $$('#sil-matchers [data-matcher]')) {
    let name = $('[data-m="name"]', row).value;
    if (name === 'labels.') {
      const key = $('[data-m="label"]', row).value.trim();
      if (!key) return fail(t('errLabelKey'));
      name += key;
    }
    matchers.push({name, value: $('[data-m="value"]', row).value, isRegex: $('[data-m="regex"]', row).checked, isEqual: $('[data-m="eq"]', row).value !== '!='});
  }
  if (!matchers.length) return fail(t('errNoMatcher'));
  const startsAt = localToISO($('#sil-starts').value), endsAt = localToISO($('#sil-ends').value);
  if (!startsAt || !endsAt) return fail(t('errBadTime'));
  const btn = $('[data-testid="silence-submit"]');
  btn.disabled = true;
  try {
    const r = await api('POST', '/api/v1/silences', {matchers, startsAt, endsAt, comment: $('#sil-comment').value.trim()});
    ok.textContent = t('silCreated', {id: (r && r.silenceID) || ''});
    ok.hidden = false;
    $('#sil-comment').value = '';
    if (location.hash.includes('?')) history.replaceState(null, '', '#/silences');
    silences.load();
  } catch (err) {
    fail(err.message);
  } finally {
    btn.disabled = false;
  }
}

export async function expireSilence(id, btn) {
  btn.disabled = true;
  try {
    await api('DELETE', `/api/v1/silences/${encodeURIComponent(id)}`);
    silences.actErr = '';
  } catch (err) {
    silences.actErr = err.message;
    btn.disabled = false;
  }
  silences.load();
}
