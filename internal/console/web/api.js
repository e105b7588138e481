// Requests to /api/v1 with the operator's token, and their errors.
import {S} from './state.js';
import {t} from './i18n.js';

// A 401 asks for a token. The prompt stops and restarts the stream, which
// itself calls api(), so app.js plugs it in here instead of this module
// importing it: the imports then stay one-way.
let unauthorized = () => {};
export function onUnauthorized(fn) {
  unauthorized = fn;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(method, path, body) {
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
    unauthorized();
    throw new ApiError(401, reason);
  }
  if (!resp.ok) throw new ApiError(resp.status, reason);
  return data;
}

export const canAct = () => !!S.me && S.me.role !== 'viewer';
