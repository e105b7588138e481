// The map (#/map): wards and communes coloured by their worst firing alert.
import {$, html, setHTML} from './dom.js';
import {S} from './state.js';
import {t, i, label, SEV_KEY} from './i18n.js';
import {SEV_RANK, SEV_COLOR} from './format.js';

// layoutMap projects lat/lon (equirectangular, corrected by cos(lat)) and
// then pushes overlapping unit boxes apart: Huế's central wards are a few
// hundred metres wide, so a true-scale map would stack their labels.
function layoutMap(areas) {
  const W = 1000, H = 760, pad = 40;
  if (!areas.length) return {nodes: [], vb: `0 0 ${W} ${H}`};
  const lat0 = areas.reduce((s, a) => s + a.lat, 0) / areas.length;
  const kx = Math.cos(lat0 * Math.PI / 180);
  const xs = areas.map((a) => a.lon * kx), ys = areas.map((a) => -a.lat);
  const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
  const sc = Math.min((W - 2 * pad) / ((maxX - minX) || 1), (H - 2 * pad) / ((maxY - minY) || 1));
  const nodes = areas.map((a, n) => {
    const x = pad + (xs[n] - minX) * sc, y = pad + (ys[n] - minY) * sc;
    const name = a.name || a.slug;
    return {a, x0: x, y0: y, x, y, w: Math.max(44, name.length * 7.4 + 10), h: 46};
  });
  for (let it = 0; it < 400; it++) {
    let moved = false;
    for (let p = 0; p < nodes.length; p++) {
      for (let q = p + 1; q < nodes.length; q++) {
        const A = nodes[p], B = nodes[q];
        let dx = B.x - A.x, dy = B.y - A.y;
        const ox = (A.w + B.w) / 2 - Math.abs(dx), oy = (A.h + B.h) / 2 - Math.abs(dy);
        if (ox <= 0 || oy <= 0) continue;
        moved = true;
        if (dx === 0 && dy === 0) { dx = (q % 2) - 0.5; dy = (p % 2) - 0.5; } // deterministic tie-break
        // Push along the axis that needs the smaller move.
        if (ox / (A.w + B.w) < oy / (A.h + B.h)) {
          const m = Math.sign(dx || 1) * (ox / 2 + 0.5);
          A.x -= m; B.x += m;
        } else {
          const m = Math.sign(dy || 1) * (oy / 2 + 0.5);
          A.y -= m; B.y += m;
        }
      }
    }
    if (!moved) break;
  }
  const x1 = Math.min(...nodes.map((n) => n.x - n.w / 2)) - 10, x2 = Math.max(...nodes.map((n) => n.x + n.w / 2)) + 10;
  const y1 = Math.min(...nodes.map((n) => n.y - 16)) - 10, y2 = Math.max(...nodes.map((n) => n.y + n.h)) + 4;
  return {nodes, vb: `${Math.floor(x1)} ${Math.floor(y1)} ${Math.ceil(x2 - x1)} ${Math.ceil(y2 - y1)}`};
}

function worstByArea() {
  const m = new Map();
  for (const a of S.alerts.values()) {
    const cur = m.get(a.area) || {worst: 'none', n: 0};
    cur.n++;
    if ((SEV_RANK[a.severity] ?? 3) < (SEV_RANK[cur.worst] ?? 3)) cur.worst = a.severity;
    m.set(a.area, cur);
  }
  return m;
}

export const mapView = {
  key: '',
  enter() {
    this.key = '';
    setHTML($('#view'), html`<section class="map" data-testid="map">
  <h2>${i('mapTitle')}</h2>
  <p class="hint">${i('mapHint')}</p>
  <div class="map-layout">
    <div id="map-svg"></div>
    <aside class="panel legend" data-testid="legend">
      <h3>${i('legend')}</h3>
      <ul>${['critical', 'warning', 'info', 'none'].map((s) => html`<li><span class="sw sw-${s}"></span><span data-i18n="${SEV_KEY[s]}">${t(SEV_KEY[s])}</span></li>`)}</ul>
      <h3>${i('unitsWithAlerts')}</h3>
      <ul id="map-list"></ul>
    </aside>
  </div>
</section>`);
  },
  render() {
    if (!S.areaList.length) {
      setHTML($('#map-svg'), html`<p class="empty">${t('noAreas')}</p>`);
      this.key = '';
      return;
    }
    if (!S.layout) S.layout = layoutMap(S.areaList);
    const worst = worstByArea();
    const key = `${S.lver}|${S.areaVer}|` + S.areaList.map((a) => { const w = worst.get(a.slug); return w ? w.worst + w.n : ''; }).join(',');
    if (key === this.key) return;
    this.key = key;
    const units = S.layout.nodes.map((nd) => {
      const a = nd.a, w = worst.get(a.slug) || {worst: 'none', n: 0};
      const r = w.worst === 'critical' ? 14 : 12;
      const moved = Math.hypot(nd.x - nd.x0, nd.y - nd.y0) > 6;
      return html`<g class="unit" data-testid="map-unit" data-area="${a.slug}" data-worst="${w.worst}" tabindex="0" role="link" aria-label="${a.name}: ${t('alertsCount', {n: w.n})}">
<title>${a.name} — ${label(SEV_KEY, w.worst)}${w.n ? ' · ' + t('alertsCount', {n: w.n}) : ''}</title>
${moved ? html`<line x1="${nd.x0.toFixed(1)}" y1="${nd.y0.toFixed(1)}" x2="${nd.x.toFixed(1)}" y2="${nd.y.toFixed(1)}" stroke="#3a4a6a" stroke-width="1"/><circle cx="${nd.x0.toFixed(1)}" cy="${nd.y0.toFixed(1)}" r="2" fill="#5b6b8a"/>` : ''}
<circle class="u" cx="${nd.x.toFixed(1)}" cy="${nd.y.toFixed(1)}" r="${r}" fill="${SEV_COLOR[w.worst] || SEV_COLOR.none}" stroke="#0d1628" stroke-width="2"/>
${w.n ? html`<text class="cnt" x="${nd.x.toFixed(1)}" y="${(nd.y + 4).toFixed(1)}" text-anchor="middle">${w.n > 99 ? '99+' : w.n}</text>` : ''}
<text x="${nd.x.toFixed(1)}" y="${(nd.y + r + 14).toFixed(1)}" text-anchor="middle">${a.name || a.slug}</text>
</g>`;
    });
    setHTML($('#map-svg'), html`<svg class="map-svg" data-testid="map-svg" viewBox="${S.layout.vb}" role="img" aria-label="${t('mapTitle')}">${units}</svg>`);
    const hot = S.areaList.filter((a) => worst.has(a.slug))
      .sort((a, b) => (SEV_RANK[worst.get(a.slug).worst] - SEV_RANK[worst.get(b.slug).worst]) || (worst.get(b.slug).n - worst.get(a.slug).n));
    // Alerts whose area is not one of the 40 units still need a way in.
    const unknown = [...worst.keys()].filter((slug) => !S.areas.has(slug)).map((slug) => ({slug, name: slug || t('none')}));
    setHTML($('#map-list'), [...hot, ...unknown].map((a) => {
      const w = worst.get(a.slug);
      return html`<li><span class="sw sw-${w.worst}"></span><a href="#/board?area=${encodeURIComponent(a.slug)}">${a.name}</a> <span class="muted">${w.n}</span></li>`;
    }));
  },
};
