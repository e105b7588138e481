// Data source quality (#/sources).
import {$, html, setHTML} from './dom.js';
import {S} from './state.js';
import {t, i} from './i18n.js';
import {fmtInt, fmtDateTime, dur, serverNow, areaName} from './format.js';
import {api} from './api.js';
import {schedule} from './render.js';

export const sources = {
  data: null,
  err: '',
  key: '',
  timer: 0,
  enter() {
    this.key = '';
    setHTML($('#view'), html`<section class="sources" data-testid="sources">
  <h2>${i('srcTitle')}</h2>
  <p class="muted" id="src-info"></p>
  <p class="error" id="src-error" hidden></p>
  <div class="table-wrap"><table data-testid="sources-table">
    <thead><tr><th>${i('colSource')}</th><th>${i('colArea')}</th><th>${i('colKind')}</th><th>${i('colType')}</th>
      <th class="num">${i('colFresh')}</th><th class="num">${i('colAccepted')}</th><th class="num">${i('colLate')}</th>
      <th class="num">${i('colCorrected')}</th><th class="num">${i('colDropped')}</th><th class="num">${i('colDuplicates')}</th></tr></thead>
    <tbody id="src-rows"></tbody>
  </table></div>
  <p class="empty" id="src-empty" hidden></p>
</section>`);
    this.load();
    this.timer = setInterval(() => this.load(), 10000);
  },
  leave() { clearInterval(this.timer); },
  async load() {
    try {
      this.data = await api('GET', '/api/v1/sources');
      this.fetched = serverNow();
      this.err = '';
    } catch (err) {
      this.err = err.message;
    }
    this.key = '';
    schedule();
  },
  render() {
    const key = `${S.lver}|${S.areaVer}|${this.fetched}|${this.err}`;
    if (key === this.key) return;
    this.key = key;
    const errEl = $('#src-error');
    errEl.textContent = this.err;
    errEl.hidden = !this.err;
    const d = this.data || {};
    const list = (Array.isArray(d.sources) ? d.sources : []).slice()
      .sort((p, q) => (Number(q.freshnessSeconds) || 0) - (Number(p.freshnessSeconds) || 0));
    $('#src-info').textContent = this.data ? t('srcInfo', {at: fmtDateTime(d.at), n: fmtInt(d.consumerPending || 0)}) : t('loading');
    const at = this.fetched || serverNow();
    setHTML($('#src-rows'), list.map((s) => {
      const fresh = Number(s.freshnessSeconds) || 0;
      const cls = fresh > 3600 ? 'fresh-bad' : fresh > 600 ? 'fresh-warn' : 'fresh-ok';
      const since = at - fresh * 1000;
      return html`<tr data-testid="source-row" data-source="${s.source}">
<td>${s.source}</td><td>${areaName(s.area)}</td><td>${s.kind}</td><td>${s.type}</td>
<td class="num ${cls}" data-since="${Math.round(since)}" title="${fmtDateTime(s.lastEventTime)}">${dur(serverNow() - since)}</td>
<td class="num">${fmtInt(s.accepted)}</td><td class="num">${fmtInt(s.late)}</td><td class="num">${fmtInt(s.corrected)}</td>
<td class="num">${fmtInt(s.droppedTooLate)}</td><td class="num">${fmtInt(s.duplicates)}</td>
</tr>`;
    }));
    const empty = $('#src-empty');
    empty.textContent = t('noSources');
    empty.hidden = !this.data || list.length > 0;
  },
};
