// The alarm for new critical alerts.
import {S, pub} from './state.js';

let actx = null;
let lastBeep = 0;

export function audio() {
  if (!actx) {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    try { actx = new AC(); } catch { return null; }
  }
  if (actx.state === 'suspended') actx.resume().catch(() => {});
  return actx;
}

// beep is generated, not a file: two-tone, repeated, like a pager.
export function beep(times = 3) {
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

// A snapshot full of new criticals is one alarm, not one per alert: the
// stream only notes that a beep is wanted and sounds it once per event.
let wantBeep = false;
export function queueBeep() {
  wantBeep = true;
}

export function maybeBeep() {
  if (!wantBeep) return;
  wantBeep = false;
  if (S.muted || Date.now() - lastBeep < 1500) return;
  lastBeep = Date.now();
  beep();
}
