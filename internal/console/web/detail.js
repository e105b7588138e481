// One alert (#/alert/<fingerprint>): its fields, the operator's actions,
// its history and its chart.
import {$, $$, html, setHTML} from './dom.js';
import {S} from './state.js';
import {t, i, label, SEV_KEY, CAT_KEY, ROLE_KEY, STATUS_KEY, ACTION_KEY} from './i18n.js';
import {fmtNum, fmtDateTime, dur, serverNow, valueVs, areaName} from './format.js';
import {api, canAct} from './api.js';
import {schedule} from './render.js';
import {chartSVG} from './chart.js';

export const detail = {
  fp: '',
  key: '',
  hours: 6,
  series: null,
  seriesErr: '',
  chartKey: '',
  histTimer: 0,
  histLater: 0,
  timers: [],
  enter(r) {
    this.fp = r.arg;
    this.key = this.chartKey = '';
    this.series = null;
    this.seriesErr = '';
    setHTML($('#view'), html`<section class="detail" data-testid="alert-detail" data-fingerprint="${this.fp}">
  <div class="detail-head">
    <a class="btn small" href="#/board" data-testid="back">${i('back')}</a>
    <h2 id="d-title"></h2>
    <span id="d-sev"></span>
  </div>
  <div class="panel" id="d-fields" data-testid="alert-fields"></div>
  <div class="panel" id="d-actions" data-testid="actions" hidden>
    <div class="actions">
      <div class="group">
        <button type="button" class="btn primary" data-action="ack" data-testid="btn-ack">${i('btnAck')}</button>
        <button type="button" class="btn" data-action="unack" data-testid="btn-unack">${i('btnUnack')}</button>
      </div>
      <div class="group">
        <label>${i('assignTo')}<input type="text" id="assign-to" data-testid="assign-to" list="dl-assignees" maxlength="100" data-i18n-placeholder="assignHint" placeholder="${t('assignHint')}"></label>
        <datalist id="dl-assignees"></datalist>
        <button type="button" class="btn" data-action="assign" data-testid="btn-assign">${i('btnAssign')}</button>
      </div>
      <div class="group">
        <button type="button" class="btn" data-action="silence" data-testid="btn-silence">${i('btnSilence')}</button>
      </div>
      <div class="group comment-group">
        <label>${i('commentLabel')}<textarea id="comment-text" data-testid="comment-text" maxlength="2000" rows="2"></textarea></label>
        <div><button type="button" class="btn" data-action="comment" data-testid="btn-comment">${i('btnComment')}</button></div>
      </div>
    </div>
    <p class="okmsg" id="action-status" data-testid="action-status" role="status" hidden></p>
    <p class="error" id="action-error" data-testid="action-error" role="alert" hidden></p>
  </div>
  <p class="hint" id="d-viewer" hidden>${i('viewerNote')}</p>
  <div class="detail-grid">
    <div class="panel">
      <div class="chart-tools" id="d-chart-tools"></div>
      <div id="d-chart"></div>
      <p class="hint">${i('tzNote')}</p>
    </div>
    <div class="panel"><h3>${i('history')}</h3><div id="d-history" data-testid="history-box"><p class="muted">${t('loading')}</p></div></div>
  </div>
</section>`);
    const assignees = new Set([...S.alerts.values()].map((a) => a.assignee).filter(Boolean));
    setHTML($('#dl-assignees'), [...assignees].sort().map((v) => html`<option value="${v}"></option>`));
    this.loadHistory();
    this.loadSeries();
    this.timers = [setInterval(() => this.loadHistory(), 30000), setInterval(() => this.loadSeries(), 60000)];
  },
  leave() {
    this.timers.forEach(clearInterval);
    clearTimeout(this.histTimer);
    clearTimeout(this.histLater);
    this.fp = '';
  },
  alertChanged(fp) {
    // The history is in ClickHouse, written a moment after the stream shows
    // the change: fetch it a little later, once per burst.
    if (fp !== null && fp !== this.fp) return;
    clearTimeout(this.histTimer);
    this.histTimer = setTimeout(() => this.loadHistory(), 1500);
  },
  async loadHistory() {
    const fp = this.fp;
    let list, err = '';
    try {
      list = await api('GET', `/api/v1/alerts/${encodeURIComponent(fp)}/history`);
    } catch (e) {
      err = e.message;
    }
    if (fp !== this.fp) return;
    const box = $('#d-history');
    if (err) {
      setHTML(box, html`<p class="error">${err}</p>`);
      return;
    }
    list = Array.isArray(list) ? list : [];
    setHTML(box, list.length ? html`<ol class="timeline" data-testid="history">${list.map(historyEntry)}</ol>`
      : html`<ol class="timeline" data-testid="history"></ol><p class="muted">${t('noHistory')}</p>`);
  },
  async loadSeries() {
    const fp = this.fp, hours = this.hours;
    try {
      this.series = await api('GET', `/api/v1/series?fingerprint=${encodeURIComponent(fp)}&hours=${hours}`);
      this.seriesErr = '';
    } catch (e) {
      if (fp !== this.fp) return;
      this.series = null;
      this.seriesErr = e.message;
    }
    if (fp !== this.fp || hours !== this.hours) return;
    this.chartKey = '';
    schedule();
  },
  render() {
    const a = S.alerts.get(this.fp);
    const firing = !!a;
    $('#d-actions').hidden = !(firing && canAct());
    $('#d-viewer').hidden = !(firing && S.me && !canAct());
    // The likely next step is the highlighted one.
    $('[data-testid="btn-ack"]').classList.toggle('primary', !(a && a.acknowledgedBy));
    $('[data-testid="btn-unack"]').classList.toggle('primary', !!(a && a.acknowledgedBy));
    const key = `${S.lver}|${S.areaVer}|${S.lastSnapshot ? 1 : 0}|${a ? JSON.stringify(a) : ''}`;
    if (key !== this.key) {
      this.key = key;
      this.renderFields(a);
    }
    const ck = `${S.lver}|${a ? a.threshold + a.severity : ''}|${this.hours}|${this.series ? 1 : 0}|${this.seriesErr}`;
    if (ck !== this.chartKey) {
      this.chartKey = ck;
      setHTML($('#d-chart-tools'), html`<h3>${t('chart')}</h3>
        ${[1, 6, 24, 72, 168].map((h) => html`<button type="button" class="btn small${h === this.hours ? ' on' : ''}" data-action="chart-hours" data-hours="${h}" data-testid="chart-hours-${h}">${h < 24 ? t('chartHours', {n: h}) : t('chartDays', {n: h / 24})}</button>`)}`);
      setHTML($('#d-chart'), html`${chartSVG(this.series, a, this.hours)}${this.seriesErr ? html`<p class="error" data-testid="chart-error">${this.seriesErr}</p>` : ''}`);
    }
  },
  renderFields(a) {
    if (!a) {
      setHTML($('#d-title'), this.fp);
      setHTML($('#d-sev'), '');
      setHTML($('#d-fields'), html`<p class="muted" data-testid="not-firing">${S.lastSnapshot ? t('notFiring') : t('waitingData')}</p>`);
      return;
    }
    setHTML($('#d-title'), a.summary || a.rule);
    setHTML($('#d-sev'), html`<span class="sev sev-${a.severity}" data-testid="detail-severity">${label(SEV_KEY, a.severity)}</span>`);
    const f = (key, value) => html`<div><dt>${t(key)}</dt><dd>${value}</dd></div>`;
    const who = (by, at) => html`${by} <span class="muted">${t('at')} ${fmtDateTime(at)}</span>`;
    const labels = Object.entries(a.labels || {});
    setHTML($('#d-fields'), html`<dl class="fields">
${f('dRule', a.rule)}
${f('dStatus', label(STATUS_KEY, a.status))}
${f('dSeverity', label(SEV_KEY, a.severity))}
${f('dCategory', html`${label(CAT_KEY, a.category)}${a.subCategory ? ' / ' + a.subCategory : ''}`)}
${f('dKind', [a.kind, a.type, a.metric].filter(Boolean).join(' / ') || t('none'))}
${f('dArea', html`${areaName(a.area)} <span class="muted">${a.area}</span>`)}
${f('dSource', a.source || t('none'))}
${f('dValue', valueVs(a))}
${f('dAgg', [a.agg, a.window].filter(Boolean).join(' / ') || t('none'))}
${f('dStarts', html`${fmtDateTime(a.startsAt)} <span class="muted age" data-since="${a._start}">${dur(serverNow() - a._start)}</span>`)}
${f('dUpdated', fmtDateTime(a.updatedAt))}
${f('dAck', a.acknowledgedBy ? html`${who(a.acknowledgedBy, a.acknowledgedAt)}${a.ackComment ? html`<div class="comment">${a.ackComment}</div>` : ''}` : t('none'))}
${f('dAssignee', a.assignee ? html`<b>${a.assignee}</b>${a.assignedBy ? html` <span class="muted">${t('by')}</span> ${who(a.assignedBy, a.assignedAt)}` : ''}` : t('none'))}
${f('dComments', a.comments || 0)}
${f('dSilencedBy', a.silencedBy && a.silencedBy.length ? html`${a.silencedBy.map((id) => html`<a href="#/silences" class="badge silenced">${id}</a> `)}` : t('none'))}
${f('dId', html`<span class="muted">${a.id} / ${a.fingerprint}</span>`)}
${f('dLabels', labels.length ? html`<span class="labels">${labels.map(([key, v]) => html`<code>${key}=${v}</code>`)}</span>` : t('none'))}
</dl>`);
  },
};

function historyEntry(h) {
  const when = html`<div class="when">${fmtDateTime(h.at)}</div>`;
  if (h.type === 'action') {
    return html`<li data-testid="history-entry" data-type="action" data-action-kind="${h.action}" class="t-action">${when}
<div class="what">${label(ACTION_KEY, h.action)} <span class="muted">${t('by')}</span> ${h.actor || t('none')}${h.role ? html` <span class="badge">${label(ROLE_KEY, h.role)}</span>` : ''}${h.action === 'assign' ? html` → <b>${h.to || t('unassigned')}</b>` : ''}</div>
${h.comment ? html`<div class="comment">${h.comment}</div>` : ''}</li>`;
  }
  return html`<li data-testid="history-entry" data-type="transition" class="t-transition s-${h.severity} st-${h.status}">${when}
<div class="what">${label(STATUS_KEY, h.status)}${h.severity ? html` <span class="sev sev-${h.severity}">${label(SEV_KEY, h.severity)}</span>` : ''}${h.value != null ? html` <span class="muted">${fmtNum(h.value)}</span>` : ''}</div>
${h.summary ? html`<div>${h.summary}</div>` : ''}</li>`;
}

export async function act(kind) {
  const fp = detail.fp;
  const ok = $('#action-status'), bad = $('#action-error');
  ok.hidden = bad.hidden = true;
  let body = {};
  if (kind === 'assign') body = {to: $('#assign-to').value.trim()};
  if (kind === 'comments') {
    const text = $('#comment-text').value.trim();
    if (!text) {
      bad.textContent = t('errCommentEmpty');
      bad.hidden = false;
      return;
    }
    body = {text};
  }
  const buttons = $$('#d-actions button');
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await api('POST', `/api/v1/alerts/${encodeURIComponent(fp)}/${kind}`, body);
    if (fp !== detail.fp) return;
    ok.textContent = t('okAccepted');
    ok.hidden = false;
    if (kind === 'comments') $('#comment-text').value = '';
    detail.alertChanged(fp);
    clearTimeout(detail.histLater);
    detail.histLater = setTimeout(() => detail.loadHistory(), 5000);
  } catch (err) {
    if (fp !== detail.fp) return;
    bad.textContent = err.message;
    bad.hidden = false;
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

export function silenceFromAlert() {
  const a = S.alerts.get(detail.fp);
  if (!a) return;
  const q = new URLSearchParams();
  q.set('new', '1');
  for (const name of ['rule', 'area', 'source']) if (a[name]) q.set(name, a[name]);
  location.hash = '#/silences?' + q.toString();
}
