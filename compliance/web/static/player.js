// The call player: an <audio> element with custom controls and a canvas that draws the waveform of
// each channel, the flagged stretches (coloured by severity) and the playhead. Click to seek.
import { api, h, t, fmtSec, label } from './common.js';

export const CONTEXT_BEFORE = 1.5; // seconds of lead-in when playing a flag
export const CONTEXT_AFTER = 1.5;
const SEV_COLOR = { critical: '#a61e4d', high: '#d9480f', medium: '#b7791f', low: '#1971c2', info: '#6c757d' };

export class Player {
  constructor(root, { callId, src, duration, flags = [], channelRoles = {} }) {
    this.root = root; this.callId = callId; this.duration = duration || 0; this.flags = flags;
    this.channelRoles = channelRoles; this.peaks = null; this.stopAt = null; this.selected = null;
    this.audio = h('audio', { id: 'call-audio', src, preload: 'auto' });
    this.btn = h('button', { type: 'button', class: 'primary', id: 'play-btn', onclick: () => this.toggle() }, t('player.play'));
    this.time = h('span', { class: 'time', id: 'play-time' }, `0:00 / ${fmtSec(this.duration)}`);
    const speed = h('select', { id: 'play-speed', 'aria-label': t('player.speed'), onchange: (e) => { this.audio.playbackRate = +e.target.value; } },
      ...[0.75, 1, 1.25, 1.5, 2].map((r) => h('option', { value: r, selected: r === 1 }, `${r}×`)));
    this.canvas = h('canvas', { id: 'wave-canvas' });
    this.wave = h('div', { class: 'wave', id: 'wave', title: '', onclick: (e) => this.onWaveClick(e) }, this.canvas);
    const legend = h('div', { class: 'legend' },
      ...['critical', 'high', 'medium', 'low'].map((s) => h('span', {}, h('i', { style: `background:${SEV_COLOR[s]}` }), label('sev', s))));
    root.replaceChildren(this.audio, h('div', { class: 'controls' }, this.btn, this.time,
      h('label', { class: 'row' }, t('player.speed'), speed), h('div', { class: 'spacer' }), legend), this.wave);
    const redraw = () => this.draw();
    for (const ev of ['timeupdate', 'seeked', 'loadedmetadata', 'play', 'pause']) this.audio.addEventListener(ev, () => this.onTick(ev));
    new ResizeObserver(redraw).observe(this.wave);
    this.listeners = [];
    this.loadPeaks();
  }

  async loadPeaks() {
    try { this.peaks = await api(`web/calls/${this.callId}/peaks`, { params: { n: 800 } }); }
    catch { this.peaks = null; }
    if (!this.duration && this.peaks) this.duration = this.peaks.duration;
    this.draw();
  }

  onTime(fn) { this.listeners.push(fn); }

  onTick(ev) {
    const a = this.audio;
    if (this.stopAt !== null && a.currentTime >= this.stopAt) { a.pause(); this.stopAt = null; }
    if (ev === 'loadedmetadata' && !this.duration) this.duration = a.duration;
    this.btn.textContent = a.paused ? t('player.play') : t('player.pause');
    this.time.textContent = `${fmtSec(a.currentTime)} / ${fmtSec(this.duration || a.duration)}`;
    this.listeners.forEach((fn) => fn(a.currentTime));
    this.draw();
  }

  toggle() { if (this.audio.paused) { this.stopAt = null; this.audio.play().catch(() => {}); } else this.audio.pause(); }
  seek(sec) { this.audio.currentTime = Math.max(0, Math.min(sec, (this.duration || 1e9) - 0.05)); this.draw(); }
  skip(dt) { this.seek(this.audio.currentTime + dt); }

  // jump to a flag's second with a little lead-in, play, and stop a little after it
  playFlag(v) {
    this.selected = v.id;
    const from = Math.max(0, v.start - CONTEXT_BEFORE);
    this.seek(from);
    this.root.dataset.lastSeek = from.toFixed(2);
    this.stopAt = v.kind === 'absence' ? null : v.end + CONTEXT_AFTER;
    this.audio.play().catch(() => {});
  }

  onWaveClick(e) {
    const rect = this.wave.getBoundingClientRect();
    const sec = ((e.clientX - rect.left) / rect.width) * (this.duration || 0);
    const hit = this.flags.find((v) => sec >= v.start - 0.3 && sec <= v.end + 0.3);
    if (hit && this.onFlag) { this.onFlag(hit); return; }
    this.stopAt = null; this.seek(sec);
  }

  draw() {
    const c = this.canvas, dpr = window.devicePixelRatio || 1;
    const w = this.wave.clientWidth, hgt = this.wave.clientHeight;
    if (!w) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(hgt * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(hgt * dpr); }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hgt);
    const dur = this.duration || (this.peaks && this.peaks.duration) || 1;
    const x = (sec) => (sec / dur) * w;
    // flagged stretches behind the waveform
    for (const v of this.flags) {
      const col = SEV_COLOR[v.severity] || SEV_COLOR.info;
      const x0 = x(v.start), x1 = Math.max(x(v.end), x0 + 3);
      g.globalAlpha = v.id === this.selected ? 0.35 : 0.18; g.fillStyle = col; g.fillRect(x0, 0, x1 - x0, hgt);
      g.globalAlpha = 1; g.fillRect(x0, 0, x1 - x0, 4);
      g.beginPath(); g.moveTo(x0 - 4, 0); g.lineTo(x0 + 4, 0); g.lineTo(x0, 8); g.fill();
    }
    // waveform: one lane per channel, the agent's channel in blue
    const chans = this.peaks ? this.peaks.channels : [];
    const lanes = Math.max(1, chans.length);
    chans.forEach((peaks, ch) => {
      const top = (hgt / lanes) * ch, mid = top + hgt / lanes / 2, amp = hgt / lanes / 2 - 3;
      g.fillStyle = this.channelRoles[ch] === 'agent' ? '#4c7fd0' : '#8a94a3';
      const n = peaks.length, bw = w / n;
      for (let i = 0; i < n; i++) { const a = Math.max(0.5, peaks[i] * amp * 1.6 > amp ? amp : peaks[i] * amp * 1.6); g.fillRect(i * bw, mid - a, Math.max(1, bw - 0.3), a * 2); }
      g.fillStyle = '#5f6b7a'; g.font = '11px system-ui, "Noto Sans CJK SC", sans-serif';
      if (this.channelRoles[ch]) g.fillText(label('role', this.channelRoles[ch]), 4, top + 13);
    });
    if (!chans.length) { g.fillStyle = '#dde2e8'; g.fillRect(0, hgt / 2 - 1, w, 2); }
    // playhead
    const px = x(this.audio.currentTime || 0);
    g.fillStyle = '#17324d'; g.fillRect(px - 1, 0, 2, hgt);
  }
}
