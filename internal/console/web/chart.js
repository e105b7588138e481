// The chart of an alert's series with its threshold levels.
import {html} from './dom.js';
import {t} from './i18n.js';
import {SEV_COLOR, VN_OFFSET, fmtNum, fmtClock, serverNow} from './format.js';

function niceStep(span, n) {
  const raw = span / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

// chartSVG draws the series with its threshold lines. Times on the axis
// are Vietnam time whatever the browser's zone.
export function chartSVG(ser, a, hours) {
  const W = 900, H = 340, L = 64, R = 180, T = 16, B = 44;
  const pw = W - L - R, ph = H - T - B;
  const pts = ((ser && ser.points) || []).map((p) => ({t: Date.parse(p.t), v: Number(p.v)}))
    .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v)).sort((x, y) => x.t - y.t);
  let x0 = Date.parse(ser && ser.from), x1 = Date.parse(ser && ser.to);
  if (!Number.isFinite(x0) || !Number.isFinite(x1) || x1 <= x0) {
    x1 = pts.length ? Math.max(pts[pts.length - 1].t, serverNow()) : serverNow();
    x0 = x1 - hours * 3600e3;
  }
  const lines = [];
  for (const l of (ser && ser.levels) || []) {
    if (l && Number.isFinite(Number(l.threshold))) lines.push({v: Number(l.threshold), name: l.name || t('threshold'), sev: l.severity || 'warning', dash: '8 5'});
  }
  if (!lines.length && a && Number.isFinite(a.threshold)) lines.push({v: a.threshold, name: t('threshold'), sev: a.severity, dash: '8 5'});
  if (ser && ser.clear != null && Number.isFinite(Number(ser.clear))) lines.push({v: Number(ser.clear), name: t('clearLevel'), sev: 'clear', dash: '3 4'});
  const vals = pts.map((p) => p.v).concat(lines.map((l) => l.v));
  let y0 = vals.length ? Math.min(...vals) : 0, y1 = vals.length ? Math.max(...vals) : 1;
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  const padV = (y1 - y0) * 0.08;
  const step = niceStep(y1 - y0 + 2 * padV, 5);
  y0 = Math.floor((y0 - padV) / step) * step;
  y1 = Math.ceil((y1 + padV) / step) * step;
  const X = (tm) => L + (tm - x0) / (x1 - x0) * pw;
  const Y = (v) => T + (1 - (v - y0) / (y1 - y0)) * ph;
  const f1 = (n) => n.toFixed(1);

  const grid = [];
  for (let n = 0; y0 + n * step <= y1 + step / 2; n++) {
    const v = y0 + n * step, y = f1(Y(v));
    grid.push(html`<line class="grid" x1="${L}" x2="${L + pw}" y1="${y}" y2="${y}"/><text x="${L - 6}" y="${y}" dy="4" text-anchor="end">${fmtNum(v)}</text>`);
  }
  const XSTEPS = [3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5, 1728e5];
  const xs = XSTEPS.find((s) => (x1 - x0) / s <= 7) || 6048e5;
  const withDate = x1 - x0 > 24 * 3600e3;
  // Ticks fall on round Vietnam-time hours, not round UTC hours.
  for (let tm = Math.ceil((x0 + VN_OFFSET) / xs) * xs - VN_OFFSET; tm <= x1; tm += xs) {
    const x = f1(X(tm));
    grid.push(html`<line class="grid" x1="${x}" x2="${x}" y1="${T}" y2="${T + ph}"/><text x="${x}" y="${T + ph + 18}" text-anchor="middle">${fmtClock(tm, withDate)}</text>`);
  }

  // Break the line where data is missing instead of drawing across the gap.
  const gaps = pts.slice(1).map((p, n) => p.t - pts[n].t).sort((p, q) => p - q);
  const gapLimit = gaps.length ? gaps[Math.floor(gaps.length / 2)] * 3 : Infinity;
  let d = '';
  pts.forEach((p, n) => { d += `${n === 0 || p.t - pts[n - 1].t > gapLimit ? 'M' : 'L'}${f1(X(p.t))} ${f1(Y(p.v))} `; });
  const last = pts[pts.length - 1];

  // Level labels sit right of the plot, nudged apart when levels are close.
  const lbl = lines.map((l) => ({...l, y: Y(l.v), ly: Y(l.v)})).sort((p, q) => p.ly - q.ly);
  for (let n = 1; n < lbl.length; n++) if (lbl[n].ly - lbl[n - 1].ly < 14) lbl[n].ly = lbl[n - 1].ly + 14;

  return html`<svg class="chart-svg" data-testid="series-chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${t('chart')}">
<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="#0d1628" stroke="#26344f"/>
<g class="axis">${grid}</g>
${lbl.map((l) => html`<g data-testid="level-line" data-level="${l.name}" data-value="${l.v}">
<line x1="${L}" x2="${L + pw}" y1="${f1(l.y)}" y2="${f1(l.y)}" stroke="${SEV_COLOR[l.sev] || SEV_COLOR.warning}" stroke-width="1.5" stroke-dasharray="${l.dash}"/>
<text class="lvl" x="${L + pw + 6}" y="${f1(l.ly)}" dy="4" fill="${SEV_COLOR[l.sev] || SEV_COLOR.warning}">${l.name} (${fmtNum(l.v)})</text></g>`)}
${d ? html`<path class="line" d="${d.trim()}"/>` : ''}
${pts.length === 1 ? html`<circle cx="${f1(X(pts[0].t))}" cy="${f1(Y(pts[0].v))}" r="3" fill="#e2e8f0"/>` : ''}
${last ? html`<circle cx="${f1(X(last.t))}" cy="${f1(Y(last.v))}" r="4" fill="#fff"/>` : ''}
${pts.length ? '' : html`<text class="nodata" x="${L + pw / 2}" y="${T + ph / 2}" text-anchor="middle">${t('noData')}</text>`}
<text x="14" y="${T + ph / 2}" transform="rotate(-90 14 ${T + ph / 2})" text-anchor="middle">${[ser && ser.metric, ser && ser.agg].filter(Boolean).join(' · ')}</text>
</svg>`;
}
