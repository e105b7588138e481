// The access token: asked for on a 401, kept in sessionStorage, dropped on
// sign-out.
import {$} from './dom.js';
import {S, SESSION, store} from './state.js';
import {t} from './i18n.js';
import {bump, renderUser, setConn} from './render.js';
import {start, closeStream, cancelRetry} from './stream.js';

export function needToken() {
  closeStream();
  cancelRetry();
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

export function submitToken(e) {
  e.preventDefault();
  const v = $('#token-input').value.trim();
  if (!v) return;
  S.token = v;
  store.set(SESSION, 'ioc.token', v);
  $('#token-dialog').hidden = true;
  renderUser(); // the sign-out button, even when the identity is the one before
  start();
}

export function signOut() {
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
