// iocstream operators' console (CONTRACT §9).
//
// Plain ES2020, no framework, no build step and nothing from the internet:
// IOC networks are closed and the page is embedded in iocd. The page's
// Content-Security-Policy forbids inline scripts and styles, so every event
// handler is attached here (one delegated listener per event type, keyed by
// data-action attributes) and no markup carries a style attribute.
//
// Safety rule: HTML is only ever produced by the html`` template tag, which
// passes every interpolated value through esc() unless it is itself the
// result of html``; setHTML() and addHTML() are the only places that turn
// strings into DOM.
(() => {
'use strict';

const I18N = {
  vi: {
    appName: 'iocstream · Trung tâm Giám sát, Điều hành',
    navBoard: 'Bảng cảnh báo',
    navMap: 'Bản đồ',
    navSilences: 'Tạm ẩn',
    navSources: 'Nguồn dữ liệu',
    connLive: 'Trực tuyến',
    connReconnecting: 'Đang kết nối lại…',
    connConnecting: 'Đang kết nối…',
    connUnauthorized: 'Cần mã truy cập',
    langSwitch: 'English',
    mute: 'Tắt âm',
    unmute: 'Bật âm',
    signOut: 'Đăng xuất',
    tokenTitle: 'Cần mã truy cập',
    tokenHelp: 'Máy chủ yêu cầu mã truy cập. Mã chỉ được giữ trong phiên trình duyệt này.',
    tokenLabel: 'Mã truy cập',
    tokenSubmit: 'Đăng nhập',
    tokenRejected: 'Mã truy cập không đúng hoặc đã bị thu hồi.',
    apiOpen: 'API mở (không cần mã)',
    roleViewer: 'Người xem',
    roleOperator: 'Điều hành viên',
    roleAdmin: 'Quản trị viên',
    sevCritical: 'Khẩn cấp',
    sevWarning: 'Cảnh báo',
    sevInfo: 'Thông tin',
    sevNone: 'Không có cảnh báo',
    catTraffic: 'Giao thông',
    catNaturalDisaster: 'Thiên tai',
    catWeather: 'Thời tiết',
    catEnvironment: 'Môi trường',
    catHealth: 'Y tế',
    catSecurity: 'An ninh',
    catAgriculture: 'Nông nghiệp',
    stFiring: 'Đang hoạt động',
    stResolved: 'Đã kết thúc',
    total: 'Tổng',
    all: 'Tất cả',
    fSeverity: 'Mức độ',
    fCategory: 'Lĩnh vực',
    fArea: 'Phường/xã',
    fText: 'Tìm kiếm',
    fTextPlaceholder: 'nội dung, quy tắc, nguồn…',
    fClear: 'Bỏ lọc',
    shown: 'Hiển thị {n}/{total}',
    colSeverity: 'Mức độ',
    colSummary: 'Quy tắc / nội dung',
    colArea: 'Phường/xã',
    colValue: 'Giá trị / ngưỡng',
    colAge: 'Thời gian',
    colAck: 'Tiếp nhận',
    colAssignee: 'Người xử lý',
    colSilenced: 'Tạm ẩn',
    colComments: 'Ghi chú',
    silenced: 'Tạm ẩn',
    noAlerts: 'Không có cảnh báo nào đang hoạt động.',
    noMatch: 'Không có cảnh báo khớp bộ lọc.',
    waitingData: 'Đang chờ dữ liệu…',
    bannerNew: 'CẢNH BÁO KHẨN CẤP MỚI ({n})',
    bannerOpen: 'Xem',
    bannerSeen: 'Đã thấy',
    staleMsg: 'Mất kết nối tới máy chủ. Dữ liệu cập nhật lần cuối lúc {at}.',
    staleNever: 'Chưa kết nối được tới máy chủ.',
    retryIn: 'Thử lại sau {n} giây.',
    durS: '{n} giây',
    durM: '{n} phút',
    durHM: '{h} giờ {m} phút',
    durDH: '{d} ngày {h} giờ',
    mapTitle: 'Bản đồ phường/xã theo mức cảnh báo cao nhất',
    mapHint: 'Sơ đồ (không theo tỷ lệ ở khu trung tâm). Bấm vào một đơn vị để xem các cảnh báo.',
    legend: 'Chú giải',
    unitsWithAlerts: 'Đơn vị có cảnh báo',
    noAreas: 'Chưa có danh sách phường/xã.',
    alertsCount: '{n} cảnh báo',
    back: '← Quay lại',
    notFiring: 'Cảnh báo này không còn hoạt động (đã kết thúc hoặc không tồn tại).',
    dRule: 'Quy tắc',
    dStatus: 'Trạng thái',
    dSeverity: 'Mức độ',
    dCategory: 'Lĩnh vực',
    dKind: 'Loại / kiểu / chỉ số',
    dArea: 'Phường/xã',
    dSource: 'Nguồn',
    dValue: 'Giá trị / ngưỡng',
    dAgg: 'Phép gộp / cửa sổ',
    dStarts: 'Bắt đầu',
    dUpdated: 'Cập nhật',
    dAck: 'Tiếp nhận',
    dAssignee: 'Giao cho',
    dComments: 'Số ghi chú',
    dSilencedBy: 'Bị tạm ẩn bởi',
    dLabels: 'Nhãn',
    dId: 'Mã đợt / dấu vân tay',
    by: 'bởi',
    at: 'lúc',
    none: '—',
    btnAck: 'Tiếp nhận',
    btnUnack: 'Bỏ tiếp nhận',
    assignTo: 'Người / đơn vị nhận',
    assignHint: 'để trống để bỏ giao',
    btnAssign: 'Giao cho',
    commentLabel: 'Ghi chú',
    btnComment: 'Gửi ghi chú',
    btnSilence: 'Tạm ẩn…',
    okAccepted: 'Đã gửi. Thay đổi sẽ hiện khi máy chủ xác nhận.',
    errCommentEmpty: 'Ghi chú không được để trống.',
    viewerNote: 'Bạn đang dùng quyền xem: không thể thao tác.',
    history: 'Lịch sử',
    noHistory: 'Chưa có lịch sử.',
    loading: 'Đang tải…',
    chart: 'Diễn biến',
    chartHours: '{n} giờ',
    chartDays: '{n} ngày',
    noData: 'Không có dữ liệu trong khoảng này',
    threshold: 'ngưỡng',
    clearLevel: 'mức hết cảnh báo',
    tzNote: 'giờ Việt Nam (UTC+7)',
    actAck: 'Tiếp nhận',
    actUnack: 'Bỏ tiếp nhận',
    actAssign: 'Giao việc',
    actComment: 'Ghi chú',
    actSilence: 'Tạm ẩn',
    actUnsilence: 'Bỏ tạm ẩn',
    transition: 'Chuyển trạng thái',
    unassigned: '(bỏ giao)',
    silTitle: 'Tạo tạm ẩn',
    silList: 'Danh sách tạm ẩn',
    silName: 'Trường',
    silLabelKey: 'Tên nhãn',
    silOp: 'Phép so',
    silValue: 'Giá trị',
    silRegex: 'Biểu thức chính quy',
    silAdd: '+ Thêm điều kiện',
    silRemove: 'Xoá điều kiện',
    silStarts: 'Bắt đầu',
    silEnds: 'Kết thúc',
    silComment: 'Lý do',
    silSubmit: 'Tạo tạm ẩn',
    silCreated: 'Đã tạo tạm ẩn {id}.',
    silTz: 'Thời gian theo giờ máy này ({tz}).',
    silNone: 'Không có tạm ẩn nào.',
    colState: 'Trạng thái',
    colMatchers: 'Điều kiện',
    colStart: 'Bắt đầu',
    colEnd: 'Kết thúc',
    colCreator: 'Người tạo',
    colComment: 'Lý do',
    stateActive: 'Đang hiệu lực',
    statePending: 'Chờ hiệu lực',
    stateExpired: 'Đã hết hạn',
    btnExpire: 'Kết thúc ngay',
    errNoMatcher: 'Cần ít nhất một điều kiện.',
    errLabelKey: 'Điền tên nhãn cho điều kiện labels.',
    errBadTime: 'Thời gian bắt đầu hoặc kết thúc không hợp lệ.',
    srcTitle: 'Chất lượng nguồn dữ liệu',
    srcInfo: 'Cập nhật lúc {at} · hàng đợi chưa xử lý: {n} · tự làm mới mỗi 10 giây',
    colSource: 'Nguồn',
    colKind: 'Loại',
    colType: 'Kiểu',
    colFresh: 'Dữ liệu mới nhất cách đây',
    colAccepted: 'Đã nhận',
    colLate: 'Đến muộn',
    colCorrected: 'Hiệu chỉnh',
    colDropped: 'Bị loại (quá muộn)',
    colDuplicates: 'Trùng lặp',
    noSources: 'Chưa có nguồn nào gửi dữ liệu.',
    errNetwork: 'Không liên lạc được với máy chủ.',
  },
  en: {
    appName: 'iocstream · Intelligent Operations Centre',
    navBoard: 'Alert board',
    navMap: 'Map',
    navSilences: 'Silences',
    navSources: 'Data sources',
    connLive: 'Live',
    connReconnecting: 'Reconnecting…',
    connConnecting: 'Connecting…',
    connUnauthorized: 'Token needed',
    langSwitch: 'Tiếng Việt',
    mute: 'Mute',
    unmute: 'Unmute',
    signOut: 'Sign out',
    tokenTitle: 'Access token needed',
    tokenHelp: 'The server requires an access token. It is kept for this browser session only.',
    tokenLabel: 'Access token',
    tokenSubmit: 'Sign in',
    tokenRejected: 'The token is wrong or was revoked.',
    apiOpen: 'open API (no token)',
    roleViewer: 'Viewer',
    roleOperator: 'Operator',
    roleAdmin: 'Admin',
    sevCritical: 'Critical',
    sevWarning: 'Warning',
    sevInfo: 'Info',
    sevNone: 'No alert',
    catTraffic: 'Traffic',
    catNaturalDisaster: 'Natural disaster',
    catWeather: 'Weather',
    catEnvironment: 'Environment',
    catHealth: 'Health',
    catSecurity: 'Security',
    catAgriculture: 'Agriculture',
    stFiring: 'Firing',
    stResolved: 'Resolved',
    total: 'Total',
    all: 'All',
    fSeverity: 'Severity',
    fCategory: 'Category',
    fArea: 'Ward/commune',
    fText: 'Search',
    fTextPlaceholder: 'summary, rule, source…',
    fClear: 'Clear filters',
    shown: 'Showing {n}/{total}',
    colSeverity: 'Severity',
    colSummary: 'Rule / summary',
    colArea: 'Ward/commune',
    colValue: 'Value / threshold',
    colAge: 'Age',
    colAck: 'Acknowledged',
    colAssignee: 'Assignee',
    colSilenced: 'Silenced',
    colComments: 'Comments',
    silenced: 'Silenced',
    noAlerts: 'No firing alerts.',
    noMatch: 'No alert matches the filters.',
    waitingData: 'Waiting for data…',
    bannerNew: 'NEW CRITICAL ALERT ({n})',
    bannerOpen: 'Open',
    bannerSeen: 'Seen',
    staleMsg: 'Connection to the server lost. Data last updated at {at}.',
    staleNever: 'Could not reach the server yet.',
    retryIn: 'Retrying in {n} s.',
    durS: '{n} s',
    durM: '{n} min',
    durHM: '{h} h {m} min',
    durDH: '{d} d {h} h',
    mapTitle: 'Wards and communes by their worst firing alert',
    mapHint: 'Schematic (the centre is not to scale). Click a unit to see its alerts.',
    legend: 'Legend',
    unitsWithAlerts: 'Units with alerts',
    noAreas: 'The list of wards and communes is not available yet.',
    alertsCount: '{n} alerts',
    back: '← Back',
    notFiring: 'This alert is not firing (resolved or unknown).',
    dRule: 'Rule',
    dStatus: 'Status',
    dSeverity: 'Severity',
    dCategory: 'Category',
    dKind: 'Kind / type / metric',
    dArea: 'Ward/commune',
    dSource: 'Source',
    dValue: 'Value / threshold',
    dAgg: 'Aggregate / window',
    dStarts: 'Started',
    dUpdated: 'Updated',
    dAck: 'Acknowledged',
    dAssignee: 'Assignee',
    dComments: 'Comments',
    dSilencedBy: 'Silenced by',
    dLabels: 'Labels',
    dId: 'Episode id / fingerprint',
    by: 'by',
    at: 'at',
    none: '—',
    btnAck: 'Acknowledge',
    btnUnack: 'Unacknowledge',
    assignTo: 'Person / unit',
    assignHint: 'leave empty to unassign',
    btnAssign: 'Assign',
    commentLabel: 'Comment',
    btnComment: 'Add comment',
    btnSilence: 'Silence…',
    okAccepted: 'Sent. The change shows once the server confirms it.',
    errCommentEmpty: 'The comment is empty.',
    viewerNote: 'You are a viewer: actions are not available.',
    history: 'History',
    noHistory: 'No history yet.',
    loading: 'Loading…',
    chart: 'Trend',
    chartHours: '{n} h',
    chartDays: '{n} d',
    noData: 'No data in this range',
    threshold: 'threshold',
    clearLevel: 'clear level',
    tzNote: 'Vietnam time (UTC+7)',
    actAck: 'Acknowledged',
    actUnack: 'Unacknowledged',
    actAssign: 'Assigned',
    actComment: 'Comment',
    actSilence: 'Silenced',
    actUnsilence: 'Unsilenced',
    transition: 'Transition',
    unassigned: '(unassigned)',
    silTitle: 'New silence',
    silList: 'Silences',
    silName: 'Field',
    silLabelKey: 'Label name',
    silOp: 'Operator',
    silValue: 'Value',
    silRegex: 'Regular expression',
    silAdd: '+ Add matcher',
    silRemove: 'Remove matcher',
    silStarts: 'Starts',
    silEnds: 'Ends',
    silComment: 'Reason',
    silSubmit: 'Create silence',
    silCreated: 'Silence {id} created.',
    silTz: 'Times are in this computer\'s time zone ({tz}).',
    silNone: 'No silences.',
    colState: 'State',
    colMatchers: 'Matchers',
    colStart: 'Starts',
    colEnd: 'Ends',
    colCreator: 'Created by',
    colComment: 'Reason',
    stateActive: 'Active',
    statePending: 'Pending',
    stateExpired: 'Expired',
    btnExpire: 'Expire now',
    errNoMatcher: 'At least one matcher is needed.',
    errLabelKey: 'Fill in the label name of the labels. matcher.',
    errBadTime: 'The start or end time is not valid.',
    srcTitle: 'Data source quality',
    srcInfo: 'Updated at {at} · consumer backlog: {n} · refreshes every 10 s',
    colSource: 'Source',
    colKind: 'Kind',
    colType: 'Type',
    colFresh: 'Newest data age',
    colAccepted: 'Accepted',
    colLate: 'Late',
    colCorrected: 'Corrected',
    colDropped: 'Dropped (too late)',
    colDuplicates: 'Duplicates',
    noSources: 'No source has sent data yet.',
    errNetwork: 'Cannot reach the server.',
  },
};

// k marks a string literal as an i18n key for lookups through a table, so
// the test that checks every used key exists in both languages sees it.
const k = (key) => key;
const SEV_KEY = {critical: k('sevCritical'), warning: k('sevWarning'), info: k('sevInfo'), none: k('sevNone')};
const SEV_RANK = {critical: 0, warning: 1, info: 2};
const SEVERITIES = ['critical', 'warning', 'info'];
const SEV_COLOR = {critical: '#d32f2f', warning: '#f59e0b', info: '#3b82f6', none: '#3f7f5f', clear: '#94a3b8'};
const CAT_KEY = {
  traffic: k('catTraffic'), naturalDisaster: k('catNaturalDisaster'), weather: k('catWeather'),
  environment: k('catEnvironment'), health: k('catHealth'), security: k('catSecurity'),
  agriculture: k('catAgriculture'),
};
const ROLE_KEY = {viewer: k('roleViewer'), operator: k('roleOperator'), admin: k('roleAdmin')};
const STATUS_KEY = {firing: k('stFiring'), resolved: k('stResolved')};
const ACTION_KEY = {
  ack: k('actAck'), unack: k('actUnack'), assign: k('actAssign'), comment: k('actComment'),
  silence: k('actSilence'), unsilence: k('actUnsilence'),
};
const CONN_KEY = {
  live: k('connLive'), reconnecting: k('connReconnecting'), connecting: k('connConnecting'),
  unauthorized: k('connUnauthorized'),
};
const SIL_STATE_KEY = {active: k('stateActive'), pending: k('statePending'), expired: k('stateExpired')};
const SIL_STATE_RANK = {active: 0, pending: 1, expired: 2};
const MATCHER_NAMES = ['rule', 'severity', 'kind', 'type', 'metric', 'area', 'source', 'category', 'labels.'];
const OPS = {'>=': '≥', '<=': '≤', '>': '>', '<': '<', '==': '=', '=': '=', '!=': '≠'};
// Asia/Ho_Chi_Minh is UTC+7 all year (no daylight saving since 1975): a
// fixed offset is exact and does not depend on the browser's tz database
// or on the time zone of the machine showing the wall screen.
const VN_OFFSET = 7 * 3600e3;

// ---------------------------------------------------------------- escaping

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
function html(strings, ...vals) {
  let out = strings[0];
  for (let n = 0; n < vals.length; n++) out += show(vals[n]) + strings[n + 1];
  return new Safe(out);
}
function setHTML(el, frag) {
  if (el) el.innerHTML = show(frag);
}
function addHTML(el, frag) {
  if (el) el.insertAdjacentHTML('beforeend', show(frag));
}

// ------------------------------------------------------------------- utils

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
// Storage can be unavailable (sandboxed frames, some kiosk modes): the page
// then just forgets preferences.
const storage = (name) => { try { return window[name]; } catch { return null; } };
const LOCAL = storage('localStorage'), SESSION = storage('sessionStorage');
const store = {
  get(s, key) { try { return s.getItem(key); } catch { return null; } },
  set(s, key, v) { try { if (v == null) s.removeItem(key); else s.setItem(key, v); } catch { /* private mode */ } },
};

function t(key, vars) {
  const table = I18N[S.lang] || I18N.vi;
  let s = table[key] != null ? table[key] : (I18N.en[key] != null ? I18N.en[key] : key);
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, name) => (vars[name] != null ? String(vars[name]) : m));
  return s;
}
// i is t wrapped so a language switch can relabel it without a re-render.
function i(key) {
  return html`<span data-i18n="${key}">${t(key)}</span>`;
}
const label = (table, v) => (table[v] ? t(table[v]) : (v || t('none')));

// fold makes search insensitive to case and Vietnamese diacritics.
function fold(s) {
  return String(s || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '')
    .replace(/[đĐ]/g, 'd').toLowerCase();
}

function fmtNum(v) {
  if (v == null || v === '' || !Number.isFinite(Number(v))) return t('none');
  const n = Number(v), a = Math.abs(n);
  const d = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 2 : 3;
  return String(Number(n.toFixed(d)));
}
function fmtInt(v) {
  const n = Number(v);
  return Number.isFinite(n) ? n.toLocaleString(S.lang === 'vi' ? 'vi-VN' : 'en-GB') : t('none');
}
const pad2 = (n) => String(n).padStart(2, '0');
function vnParts(ms) {
  const d = new Date(ms + VN_OFFSET);
  return {y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds()};
}
function fmtDateTime(v) {
  const ms = typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(ms) || ms <= 0) return t('none');
  const p = vnParts(ms);
  return `${pad2(p.d)}/${pad2(p.mo)}/${p.y} ${pad2(p.h)}:${pad2(p.mi)}:${pad2(p.s)}`;
}
function fmtClock(ms, withDate) {
  const p = vnParts(ms);
  return (withDate ? `${pad2(p.d)}/${pad2(p.mo)} ` : '') + `${pad2(p.h)}:${pad2(p.mi)}`;
}
function dur(ms) {
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
const serverNow = () => Date.now() + S.skew;

function valueVs(a) {
  return `${fmtNum(a.value)} ${OPS[a.op] || a.op || ''} ${fmtNum(a.threshold)}`.trim();
}
function areaName(slug) {
  if (!slug) return t('none');
  const a = S.areas.get(slug);
  return a && a.name ? a.name : slug;
}
// datetime-local holds the browser's local wall time; the API wants UTC.
function localInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}
function localToISO(v) {
  if (!v) return '';
  const d = new Date(v); // a date-time without offset is local time (ECMA-262)
  return Number.isFinite(d.getTime()) ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '';
}
function tzName() {
  const off = -new Date().getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-', a = Math.abs(off);
  return `UTC${sign}${pad2(Math.floor(a / 60))}:${pad2(a % 60)}`;
}

// ------------------------------------------------------------------- state

const S = {
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
const pub = {
  conn: S.conn, alerts: 0, rendered: 0, lastSnapshot: null, route: 'board', lang: S.lang,
  muted: S.muted, user: '', role: '', newCritical: 0, beeps: 0, renders: 0, reconnects: 0, snapshots: 0,
};
window.iocConsole = Object.freeze({state: pub});

function bump() {
  S.ver++;
  pub.alerts = S.alerts.size;
  schedule();
}

// --------------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = {Accept: 'application/json'};
  if (S.token) headers.Authorization = 'Bearer ' + S.token;
  const init = {method, headers, cache: 'no-store', credentials: 'same-origin'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, t('errNetwork'));
  }
  const date = Date.parse(resp.headers.get('Date') || '');
  if (Number.isFinite(date)) {
    const skew = date - Date.now();
    S.skew = Math.abs(skew) > 3000 ? skew : 0; // Date has 1 s resolution
  }
  const text = await resp.text().catch(() => '');
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  const reason = (data && typeof data.error === 'string' && data.error) || text.trim().slice(0, 300) || `HTTP ${resp.status}`;
  if (resp.status === 401) {
    needToken();
    throw new ApiError(401, reason);
  }
  if (!resp.ok) throw new ApiError(resp.status, reason);
  return data;
}

const canAct = () => !!S.me && S.me.role !== 'viewer';

// ------------------------------------------------------------------- token

function needToken() {
  closeStream();
  clearTimeout(retryTimer);
  setConn('unauthorized');
  const dlg = $('#token-dialog');
  const err = $('#token-error');
  err.textContent = S.token ? t('tokenRejected') : '';
  err.hidden = !S.token;
  if (dlg.hidden) {
    dlg.hidden = false;
    $('#token-input').value = '';
    $('#token-input').focus();
  }
}

function submitToken(e) {
  e.preventDefault();
  const v = $('#token-input').value.trim();
  if (!v) return;
  S.token = v;
  store.set(SESSION, 'ioc.token', v);
  $('#token-dialog').hidden = true;
  start();
}

function signOut() {
  S.token = '';
  store.set(SESSION, 'ioc.token', null);
  S.me = null;
  S.alerts = new Map();
  S.fresh.clear();
  closeStream();
  renderUser();
  bump();
  start();
}

// ------------------------------------------------------------ live stream

let es = null;
let retries = 0;
let retryTimer = 0;
let watchdog = 0;

async function loadMe() {
  let me;
  try {
    me = await api('GET', '/api/v1/whoami');
  } catch (err) {
    if (err.status !== 404) throw err;
    me = {name: '', role: 'operator', auth: !!S.token}; // an older iocd without whoami
  }
  if (!me || typeof me !== 'object') me = {name: '', role: 'operator', auth: false};
  const changed = !S.me || S.me.role !== me.role || S.me.name !== me.name;
  S.me = me;
  if (changed) {
    S.lver++;
    renderUser();
    schedule();
  }
}

async function loadAreas() {
  try {
    const list = await api('GET', '/api/v1/areas');
    if (!Array.isArray(list)) return;
    S.areas = new Map(list.filter((a) => a && a.slug).map((a) => [a.slug, a]));
    S.areaList = [...S.areas.values()].sort((a, b) => String(a.name).localeCompare(String(b.name), 'vi'));
    S.layout = null;
    S.areaVer++;
    for (const a of S.alerts.values()) prep(a);
    bump();
  } catch { /* retried at the next (re)connection */ }
}

// start (re)establishes everything: identity first, because a 401 there
// asks for a token instead of hammering the stream with a bad one.
async function start() {
  clearTimeout(retryTimer);
  try {
    await loadMe();
  } catch (err) {
    if (err.status === 401) return; // the token prompt is up
    setConn('reconnecting');
    scheduleRetry();
    return;
  }
  if (!S.areas.size) loadAreas();
  openStream();
}

function openStream() {
  closeStream();
  const url = '/api/v1/alerts/stream' + (S.token ? '?access_token=' + encodeURIComponent(S.token) : '');
  const src = new EventSource(url);
  es = src;
  src.addEventListener('snapshot', (e) => { if (es === src) onSnapshot(e); });
  src.addEventListener('alert', (e) => { if (es === src) onAlert(e); });
  // Both connection failures and the server's own "event: error" land here.
  // The browser's built-in retry is not used: it has no back-off and gives
  // up on some errors, and the wall screen must recover by itself.
  src.addEventListener('error', (e) => { if (es === src) onStreamError(e); });
  // A proxy or a starting server can accept the connection and send
  // nothing; without a snapshot in time the connection counts as failed.
  watchdog = setTimeout(() => { if (es === src && S.conn !== 'live') onStreamError(null); }, 15000);
}

function closeStream() {
  clearTimeout(watchdog);
  if (es) {
    es.close();
    es = null;
  }
}

function onStreamError(e) {
  if (e && typeof e.data === 'string' && e.data) {
    try { S.streamError = JSON.parse(e.data).error || e.data; } catch { S.streamError = e.data; }
  }
  closeStream();
  setConn('reconnecting');
  scheduleRetry();
}

function scheduleRetry() {
  clearTimeout(retryTimer);
  const delay = Math.min(1000 * 2 ** retries, 10000); // 1 s, 2 s, 4 s, 8 s, 10 s, 10 s…
  retries++;
  pub.reconnects++;
  S.retryAt = Date.now() + delay;
  retryTimer = setTimeout(start, delay);
  renderStale();
}

function prep(a) {
  a._start = Date.parse(a.startsAt) || 0;
  a._search = fold([a.summary, a.rule, a.area, areaName(a.area), a.source, a.assignee, a.acknowledgedBy,
    a.category, a.subCategory, a.type, a.metric, ...Object.values(a.labels || {})].join(' '));
  return a;
}

let wantBeep = false;

// noteSeen decides what is a NEW critical: a fingerprint or firing episode
// (id) not seen critical before in this page session, not yet acknowledged.
function noteSeen(a) {
  const fp = a.fingerprint;
  const prev = S.seen.get(fp);
  if (a.severity === 'critical' && !a.acknowledgedBy) {
    if (!prev || prev.severity !== 'critical' || prev.id !== a.id) {
      S.fresh.add(fp);
      wantBeep = true;
    }
  } else {
    S.fresh.delete(fp);
  }
  S.seen.set(fp, {id: a.id, severity: a.severity});
}

function onSnapshot(e) {
  let list;
  try { list = JSON.parse(e.data); } catch { return; }
  const next = new Map();
  for (const a of Array.isArray(list) ? list : []) {
    if (a && a.fingerprint && a.status !== 'resolved') next.set(a.fingerprint, prep(a));
  }
  S.alerts = next;
  for (const fp of [...S.fresh]) if (!next.has(fp)) S.fresh.delete(fp);
  // Only firing fingerprints are remembered, so a wall screen left on for
  // weeks does not grow without bound.
  for (const fp of [...S.seen.keys()]) if (!next.has(fp)) S.seen.delete(fp);
  for (const a of next.values()) noteSeen(a);
  S.lastSnapshot = Date.now();
  S.streamError = '';
  retries = 0;
  pub.snapshots++;
  pub.lastSnapshot = new Date(S.lastSnapshot).toISOString();
  setConn('live');
  clearTimeout(watchdog);
  bump();
  onAlertsChanged(null);
  maybeBeep();
}

function onAlert(e) {
  let a;
  try { a = JSON.parse(e.data); } catch { return; }
  if (!a || !a.fingerprint) return;
  const fp = a.fingerprint;
  if (a.status === 'resolved') {
    const cur = S.alerts.get(fp);
    // A late resolution of an older episode must not remove a newer one.
    if (cur && (!a.id || !cur.id || cur.id === a.id)) {
      S.alerts.delete(fp);
      S.fresh.delete(fp);
      S.seen.delete(fp); // a new episode has a new id and counts as new anyway
    }
  } else {
    S.alerts.set(fp, prep(a));
    noteSeen(a);
  }
  bump();
  onAlertsChanged(fp);
  maybeBeep();
}

function setConn(c) {
  S.conn = c;
  pub.conn = c;
  const el = $('[data-testid="conn"]');
  el.dataset.state = c;
  const txt = $('.conn-text', el);
  txt.dataset.i18n = CONN_KEY[c];
  txt.textContent = t(CONN_KEY[c]);
  renderStale();
}

// ------------------------------------------------------------------- sound

let actx = null;
let lastBeep = 0;

function audio() {
  if (!actx) {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    try { actx = new AC(); } catch { return null; }
  }
  if (actx.state === 'suspended') actx.resume().catch(() => {});
  return actx;
}

// beep is generated, not a file: two-tone, repeated, like a pager.
function beep(times = 3) {
  const ctx = audio();
  if (!ctx) return;
  const t0 = ctx.currentTime + 0.03;
  for (let n = 0; n < times * 2; n++) {
    const at = t0 + n * 0.22;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = 'square';
    osc.frequency.value = n % 2 ? 660 : 988;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.2, at + 0.015);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
    osc.connect(gain).connect(ctx.destination);
    osc.start(at);
    osc.stop(at + 0.2);
  }
  pub.beeps++;
}

function maybeBeep() {
  if (!wantBeep) return;
  wantBeep = false;
  if (S.muted || Date.now() - lastBeep < 1500) return;
  lastBeep = Date.now();
  beep();
}

// -------------------------------------------------------------- rendering

let frame = 0;

// schedule coalesces any number of changes into one render per frame; a
// hidden tab gets no animation frames, so it falls back to a timer (the
// title and banner must still be right when someone looks).
function schedule() {
  if (frame) return;
  const run = () => { frame = 0; render(); };
  frame = document.hidden ? setTimeout(run, 500) : requestAnimationFrame(run);
}

function render() {
  pub.renders++;
  renderBanner();
  if (view && view.render) view.render();
}

let bannerKey = '';
function renderBanner() {
  const el = $('#banner');
  const fresh = [...S.fresh].map((fp) => S.alerts.get(fp)).filter(Boolean);
  pub.newCritical = fresh.length;
  document.title = (fresh.length ? `(${fresh.length}) ` : '') + t('appName');
  if (!fresh.length) {
    el.hidden = true;
    bannerKey = '';
    return;
  }
  fresh.sort((a, b) => b._start - a._start);
  const a = fresh[0];
  const key = `${S.lver}|${fresh.length}|${a.fingerprint}|${a.summary}`;
  if (key !== bannerKey) {
    bannerKey = key;
    setHTML(el, html`<span class="banner-text">${t('bannerNew', {n: fresh.length})}: ${a.summary || a.rule} — ${areaName(a.area)}</span>
      <a class="btn small" data-testid="banner-open" href="#/alert/${encodeURIComponent(a.fingerprint)}">${t('bannerOpen')}</a>
      <button type="button" class="btn small" data-testid="banner-seen">${t('bannerSeen')}</button>`);
  }
  el.hidden = false;
}

function renderUser() {
  const el = $('[data-testid="user"]');
  const me = S.me;
  pub.user = me ? me.name : '';
  pub.role = me ? me.role : '';
  if (!me) {
    setHTML(el, '');
  } else {
    setHTML(el, html`<b>${me.name || t('none')}</b> · ${label(ROLE_KEY, me.role)}${me.auth ? '' : html` <span class="hint">(${t('apiOpen')})</span>`}`);
  }
  $('#signout').hidden = !S.token;
}

function renderStale() {
  const el = $('#stale');
  const down = S.conn === 'reconnecting' || S.conn === 'connecting';
  document.body.classList.toggle('is-stale', down);
  if (!down) {
    el.hidden = true;
    return;
  }
  const secs = Math.max(0, Math.ceil((S.retryAt - Date.now()) / 1000));
  const parts = [S.lastSnapshot ? t('staleMsg', {at: fmtDateTime(S.lastSnapshot)}) : t('staleNever')];
  if (S.streamError) parts.push(S.streamError);
  if (S.retryAt > Date.now()) parts.push(t('retryIn', {n: secs}));
  el.textContent = parts.join(' ');
  el.hidden = S.conn === 'connecting' && !S.retryAt;
}

function applyStatic(root = document) {
  document.documentElement.lang = S.lang;
  for (const el of $$('[data-i18n]', root)) el.textContent = t(el.dataset.i18n);
  for (const el of $$('[data-i18n-placeholder]', root)) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of $$('[data-i18n-title]', root)) el.title = t(el.dataset.i18nTitle);
  $('#lang').textContent = t('langSwitch');
  const mute = $('#mute');
  mute.textContent = S.muted ? t('unmute') : t('mute');
  mute.setAttribute('aria-pressed', String(S.muted));
  mute.classList.toggle('danger', S.muted);
}

// The age ticker rewrites text only: no re-render, so 500 rows cost 500
// text comparisons a second.
function tick() {
  const now = serverNow();
  for (const el of $$('[data-since]')) {
    const txt = dur(now - Number(el.dataset.since));
    if (el.textContent !== txt) el.textContent = txt;
  }
  if (S.conn !== 'live') renderStale();
}

// ------------------------------------------------------------------ router

let view = null;

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
  if (!VIEWS[r.name] || (r.name === 'alert' && !r.arg)) r.name = 'board';
  if (view && view.leave) view.leave();
  S.route = r;
  pub.route = r.name;
  view = VIEWS[r.name];
  for (const a of $$('.nav a')) {
    const on = a.dataset.route === r.name || (r.name === 'alert' && a.dataset.route === 'board');
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  view.enter(r);
  render();
  window.scrollTo(0, 0);
}

function onAlertsChanged(fp) {
  if (view && view.alertChanged) view.alertChanged(fp);
}

// ------------------------------------------------------------------- board

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

const board = {
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

function setFilter(name, value) {
  if (S.filters[name] === value) return;
  S.filters[name] = value;
  S.fver++;
  history.replaceState(null, '', filterQuery());
  schedule();
}

// --------------------------------------------------------------------- map

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

const mapView = {
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

// ------------------------------------------------------------------ detail

const detail = {
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

async function act(kind) {
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

function silenceFromAlert() {
  const a = S.alerts.get(detail.fp);
  if (!a) return;
  const q = new URLSearchParams();
  q.set('new', '1');
  for (const name of ['rule', 'area', 'source']) if (a[name]) q.set(name, a[name]);
  location.hash = '#/silences?' + q.toString();
}

// ------------------------------------------------------------------- chart

function niceStep(span, n) {
  const raw = span / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

// chartSVG draws the series with its threshold lines. Times on the axis
// are Vietnam time whatever the browser's zone.
function chartSVG(ser, a, hours) {
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

// ---------------------------------------------------------------- silences

function matcherRow(n, m) {
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

function renumberMatchers() {
  $$('#sil-matchers [data-matcher]').forEach((row, n) => {
    for (const el of $$('[data-testid]', row)) el.dataset.testid = el.dataset.testid.replace(/-\d+$/, '-' + n);
  });
}

function fmtMatcher(m) {
  const op = (m.isEqual === false ? '!' : '=') + (m.isRegex ? '~' : (m.isEqual === false ? '=' : ''));
  return `${m.name}${op}"${m.value}"`;
}

const silences = {
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
    const key = `${S.lver}|${canAct()}|${this.err}|${JSON.stringify(this.list)}`;
    if (key === this.key) return;
    this.key = key;
    const errEl = $('#sil-list-error');
    errEl.textContent = this.err;
    errEl.hidden = !this.err;
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

async function submitSilence() {
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

async function expireSilence(id, btn) {
  btn.disabled = true;
  const errEl = $('#sil-list-error');
  try {
    await api('DELETE', `/api/v1/silences/${encodeURIComponent(id)}`);
    errEl.hidden = true;
  } catch (err) {
    errEl.textContent = err.message;
    errEl.hidden = false;
    btn.disabled = false;
  }
  silences.load();
}

// ----------------------------------------------------------------- sources

const sources = {
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

const VIEWS = {board, map: mapView, alert: detail, silences, sources};

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
    bannerKey = '';
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
})();
