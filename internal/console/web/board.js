// The alert board (#/board): counts, filters and the table of firing alerts.
import {$, html, setHTML} from './dom.js';
import {S, pub} from './state.js';
import {t, i, label, SEV_KEY, CAT_KEY} from './i18n.js';
import {SEV_RANK, SEVERITIES, fold, fmtDateTime, dur, serverNow, valueVs, areaName} from './format.js';
import {schedule} from './render.js';

function sortedAlerts() {
  return [...S.alerts.values()].sort((a, b) =>
    ((SEV_RANK[a.severity] ?? 3) - (SEV_RANK[b.severity] ?? 3)) ||
    (a._start - b._start) ||
    (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0));
}

function rowHTML(a, now) {
  const fp = a.fingerprint;
  const silenced = Array.isArray(a.silencedBy) && a.silencedBy.length > 0;
  const cls = ['row-' + a.severity];
  if (a.severity === 'critical' && !a.acknowledgedBy) cls.push('unacked');
  if (S.fresh.has(fp)) cls.push('is-new');
  if (silenced) cls.push('silenced');
  return html`<tr data-testid="alert-row" data-fingerprint="${fp}" data-severity="${a.severity}" class="${cls.join(' ')}" tabindex="0">
<td><span class="sev sev-${a.severity}">${label(SEV_KEY, a.severity)}</span></td>
<td><div class="summary">${a.summary || a.rule}</div><div class="rule">${a.rule}${a.source ? ' · ' + a.source : ''}</div></td>
<td>${areaName(a.area)}</td>
<td class="num">${valueVs(a)}</td>
<td class="age" data-since="${a._start}" title="${fmtDateTime(a.startsAt)}">${dur(now - a._start)}</td>
<td>${a.acknowledgedBy ? html`<span title="${fmtDateTime(a.acknowledgedAt)}${a.ackComment ? ' — ' + a.ackComment : ''}">✓ ${a.acknowledgedBy}</span>` : t('none')}</td>
<td>${a.assignee || t('none')}</td>
<td>${silenced ? html`<span class="badge silenced" data-testid="silenced-badge" title="${a.silencedBy.join(', ')}">${t('silenced')}</span>` : ''}</td>
<td class="num">${a.comments || 0}</td>
</tr>`;
}

function options(list, selected) {
  return list.map(([value, text]) => html`<option value="${value}"${value === selected ? html` selected` : ''}>${text}</option>`);
}

function filterQuery() {
  const f = S.filters, q = new URLSearchParams();
  for (const key of ['severity', 'category', 'area', 'text']) if (f[key]) q.set(key === 'text' ? 'q' : key, f[key]);
  const s = q.toString();
  return '#/board' + (s ? '?' + s : '');
}

export const board = {
  key: '',
  catKey: '',
  areaKey: '',
  enter(r) {
    const p = r.params;
    // Arriving with parameters (a map click, a bookmark) sets the filters;
    // a plain #/board keeps what the operator had chosen.
    if (['severity', 'category', 'area', 'q'].some((name) => p.has(name))) {
      S.filters = {severity: p.get('severity') || '', category: p.get('category') || '', area: p.get('area') || '', text: p.get('q') || ''};
      S.fver++;
    }
    const f = S.filters;
    this.key = this.catKey = this.areaKey = '';
    setHTML($('#view'), html`<section class="board" data-testid="board">
  <div class="counts" id="counts"></div>
  <div class="filters">
    <label>${i('fSeverity')}<select data-testid="filter-severity" data-filter="severity">
      <option value="" data-i18n="all">${t('all')}</option>
      ${SEVERITIES.map((s) => html`<option value="${s}" data-i18n="${SEV_KEY[s]}"${f.severity === s ? html` selected` : ''}>${t(SEV_KEY[s])}</option>`)}
    </select></label>
    <label>${i('fCategory')}<select data-testid="filter-category" data-filter="category"></select></label>
    <label>${i('fArea')}<select data-testid="filter-area" data-filter="area"></select></label>
    <label>${i('fText')}<input type="search" data-testid="filter-text" data-filter="text" value="${f.text}" data-i18n-placeholder="fTextPlaceholder" placeholder="${t('fTextPlaceholder')}"></label>
    <button type="button" class="btn small" data-action="clear-filters" data-testid="filter-clear">${i('fClear')}</button>
    <span class="muted" id="shown" data-testid="shown"></span>
  </div>
  <div class="table-wrap"><table class="alerts" data-testid="alerts-table">
    <thead><tr>
      <th>${i('colSeverity')}</th><th>${i('colSummary')}</th><th>${i('colArea')}</th>
      <th class="num">${i('colValue')}</th><th>${i('colAge')}</th><th>${i('colAck')}</th>
      <th>${i('colAssignee')}</th><th>${i('colSilenced')}</th><th class="num">${i('colComments')}</th>
    </tr></thead>
    <tbody id="rows"></tbody>
  </table></div>
  <p class="empty" id="board-empty" data-testid="board-empty" hidden></p>
</section>`);
  },
  render() {
    const key = `${S.ver}|${S.fver}|${S.lver}|${S.areaVer}`;
    if (key === this.key) return;
    this.key = key;
    const f = S.filters;
    const all = sortedAlerts();
    const n = {critical: 0, warning: 0, info: 0};
    const cats = new Set(f.category ? [f.category] : []);
    for (const a of all) {
      if (a.severity in n) n[a.severity]++;
      if (a.category) cats.add(a.category);
    }
    setHTML($('#counts'), html`${SEVERITIES.map((s) => html`<button type="button" class="count c-${s}${n[s] ? ' nonzero' : ''}" data-action="filter-sev" data-sev="${s}" data-testid="count-${s}"><b>${n[s]}</b> ${t(SEV_KEY[s])}</button>`)}
      <span class="count c-total" data-testid="count-total"><b>${all.length}</b> ${t('total')}</span>`);

    const catList = [...cats].sort();
    const catKey = `${S.lver}|${catList.join(',')}|${f.category}`;
    if (catKey !== this.catKey) {
      this.catKey = catKey;
      setHTML($('[data-testid="filter-category"]'), options([['', t('all')], ...catList.map((c) => [c, label(CAT_KEY, c)])], f.category));
    }
    const areaKey = `${S.lver}|${S.areaVer}|${f.area}`;
    if (areaKey !== this.areaKey) {
      this.areaKey = areaKey;
      const list = S.areaList.map((a) => [a.slug, a.name || a.slug]);
      if (f.area && !S.areas.has(f.area)) list.unshift([f.area, f.area]);
      setHTML($('[data-testid="filter-area"]'), options([['', t('all')], ...list], f.area));
    }

    const words = fold(f.text).split(/\s+/).filter(Boolean);
    const shown = all.filter((a) => (!f.severity || a.severity === f.severity) &&
      (!f.category || a.category === f.category) && (!f.area || a.area === f.area) &&
      words.every((w) => a._search.includes(w)));
    const now = serverNow();
    setHTML($('#rows'), shown.map((a) => rowHTML(a, now)));
    pub.rendered = shown.length;
    $('#shown').textContent = t('shown', {n: shown.length, total: all.length});
    const empty = $('#board-empty');
    empty.hidden = shown.length > 0;
    empty.textContent = !S.lastSnapshot ? t('waitingData') : all.length ? t('noMatch') : t('noAlerts');
  },
  leave() { pub.rendered = 0; },
};

export function setFilter(name, value) {
  if (S.filters[name] === value) return;
  S.filters[name] = value;
  S.fver++;
  history.replaceState(null, '', filterQuery());
  schedule();
}
