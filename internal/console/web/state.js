// State shared by every part of the page, and the browser storage it starts
// from. Lives apart from the code that renders it so that any module can
// read and change it without importing the views.

// Storage can be unavailable (sandboxed frames, some kiosk modes): the page
// then just forgets preferences.
const storage = (name) => { try { return window[name]; } catch { return null; } };
export const LOCAL = storage('localStorage');
export const SESSION = storage('sessionStorage');
export const store = {
  get(s, key) { try { return s.getItem(key); } catch { return null; } },
  set(s, key, v) { try { if (v == null) s.removeItem(key); else s.setItem(key, v); } catch { /* private mode */ } },
};

export const S = {
  lang: ['vi', 'en'].includes(store.get(LOCAL, 'ioc.lang')) ? store.get(LOCAL, 'ioc.lang') : 'vi',
  muted: store.get(LOCAL, 'ioc.muted') === '1',
  // The token lives in sessionStorage only: it dies with the tab, and a
  // shared wall PC does not keep an operator's credential.
  token: store.get(SESSION, 'ioc.token') || '',
  me: null,
  areas: new Map(),
  areaList: [],
  areaVer: 0,
  layout: null,
  alerts: new Map(),
  seen: new Map(), // fingerprint → {id, severity} seen in this page session
  fresh: new Set(), // new criticals nobody has marked seen here yet
  ver: 0, // bumped on every alert change; views re-render when it moves
  fver: 0, // filters
  lver: 0, // language, role
  filters: {severity: '', category: '', area: '', text: ''},
  conn: 'connecting',
  lastSnapshot: 0,
  retryAt: 0,
  streamError: '',
  skew: 0,
  route: {name: 'board', arg: '', params: new URLSearchParams()},
};

// window.iocConsole.state is for tests and for people poking at a wall
// screen's console; the page never reads it.
export const pub = {
  conn: S.conn, alerts: 0, rendered: 0, lastSnapshot: null, route: 'board', lang: S.lang,
  muted: S.muted, user: '', role: '', newCritical: 0, beeps: 0, renders: 0, reconnects: 0, snapshots: 0,
};
window.iocConsole = Object.freeze({state: pub});
