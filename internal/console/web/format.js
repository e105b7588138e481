// How values are ordered and written: severities, numbers, durations,
// Vietnam time, area names.
import {S} from './state.js';
import {t} from './i18n.js';

export const SEV_RANK = {critical: 0, warning: 1, info: 2};
export const SEVERITIES = ['critical', 'warning', 'info'];
export const SEV_COLOR = {critical: '#d32f2f', warning: '#f59e0b', info: '#3b82f6', none: '#3f7f5f', clear: '#94a3b8'};
const OPS = {'>=': '≥', '<=': '≤', '>': '>', '<': '<', '==': '=', '=': '=', '!=': '≠'};
// Asia/Ho_Chi_Minh is UTC+7 all year (no daylight saving since 1975): a
// fixed offset is exact and does not depend on the browser's tz database
// or on the time zone of the machine showing the wall screen.
export const VN_OFFSET = 7 * 3600e3;

// fold makes search insensitive to case and Vietnamese diacritics.
export function fold(s) {
  return String(s || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '')
    .replace(/[đĐ]/g, 'd').toLowerCase();
}

export function fmtNum(v) {
  if (v == null || v === '' || !Number.isFinite(Number(v))) return t('none');
  const n = Number(v), a = Math.abs(n);
  const d = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 2 : 3;
  return String(Number(n.toFixed(d)));
}
export function fmtInt(v) {
  const n = Number(v);
  return Number.isFinite(n) ? n.toLocaleString(S.lang === 'vi' ? 'vi-VN' : 'en-GB') : t('none');
}
const pad2 = (n) => String(n).padStart(2, '0');
function vnParts(ms) {
  const d = new Date(ms + VN_OFFSET);
  return {y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds()};
}
export function fmtDateTime(v) {
  const ms = typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(ms) || ms <= 0) return t('none');
  const p = vnParts(ms);
  return `${pad2(p.d)}/${pad2(p.mo)}/${p.y} ${pad2(p.h)}:${pad2(p.mi)}:${pad2(p.s)}`;
}
export function fmtClock(ms, withDate) {
  const p = vnParts(ms);
  return (withDate ? `${pad2(p.d)}/${pad2(p.mo)} ` : '') + `${pad2(p.h)}:${pad2(p.mi)}`;
}
export function dur(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return t('durS', {n: s});
  const m = Math.floor(s / 60);
  if (m < 60) return t('durM', {n: m});
  const h = Math.floor(m / 60);
  if (h < 24) return t('durHM', {h, m: m % 60});
  return t('durDH', {d: Math.floor(h / 24), h: h % 24});
}
// The server's clock decides ages: a wall PC with a wrong clock would
// otherwise show wrong ages. The skew comes from HTTP Date headers.
export const serverNow = () => Date.now() + S.skew;

export function valueVs(a) {
  return `${fmtNum(a.value)} ${OPS[a.op] || a.op || ''} ${fmtNum(a.threshold)}`.trim();
}
export function areaName(slug) {
  if (!slug) return t('none');
  const a = S.areas.get(slug);
  return a && a.name ? a.name : slug;
}
// datetime-local holds the browser's local wall time; the API wants UTC.
export function localInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}
export function localToISO(v) {
  if (!v) return '';
  const d = new Date(v); // a date-time without offset is local time (ECMA-262)
  return Number.isFinite(d.getTime()) ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '';
}
export function tzName() {
  const off = -new Date().getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-', a = Math.abs(off);
  return `UTC${sign}${pad2(Math.floor(a / 60))}:${pad2(a % 60)}`;
}
