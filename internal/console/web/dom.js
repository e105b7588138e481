// Markup and element lookup.
//
// Safety rule: HTML is only ever produced by the html`` template tag, which
// passes every interpolated value through esc() unless it is itself the
// result of html``; setHTML() and addHTML() are the only places that turn
// strings into DOM.

const ESC = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;'};
function esc(v) {
  return v == null ? '' : String(v).replace(/[&<>"'`]/g, (c) => ESC[c]);
}
// Safe is markup built by html``; anything else is text to escape.
class Safe {
  constructor(s) { this.s = s; }
  toString() { return this.s; }
}
function show(v) {
  if (v instanceof Safe) return v.s;
  if (Array.isArray(v)) return v.map(show).join('');
  if (v == null || v === false) return '';
  return esc(v);
}
export function html(strings, ...vals) {
  let out = strings[0];
  for (let n = 0; n < vals.length; n++) out += show(vals[n]) + strings[n + 1];
  return new Safe(out);
}
export function setHTML(el, frag) {
  if (el) el.innerHTML = show(frag);
}
export function addHTML(el, frag) {
  if (el) el.insertAdjacentHTML('beforeend', show(frag));
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
