// The call page: conversation transcript with flagged words highlighted, the player with the flags on
// its waveform, and per flag: rule, regulation, severity, play, review actions and audit history.
import { api, h, t, label, ME, PAGE, fmtSec, fmtDateTime, sevBadge, statusBadge, toast, askNote, typing, markLoaded } from './common.js';
import { Player } from './player.js';

const callId = PAGE.call_id;
const role = ME.role;
const reviewer = role === 'officer' || role === 'admin';
const SEV_RANK = { critical: 0, high: 1, medium: 2, low: 3, info: 4 };
const RESOLVED = new Set(['dismissed', 'appeal_granted']);
const state = { call: null, flags: [], audit: [], selected: null, player: null };

const CJK = /[\u3000-\u9fff\uff00-\uffef]/;
function joinWords(words) {
  const out = [];
  words.forEach((w, i) => {
    const prev = i ? words[i - 1].text : '';
    if (i && !(CJK.test(w.text[0] || '') || CJK.test(prev.slice(-1)) || /^[,.!?;:%，。！？；：、]/.test(w.text))) out.push(' ');
    out.push(w);
  });
  return out;
}

function flagWords(utt) {
  // word index -> the most severe flag whose time span covers it (same speaker)
  const hits = new Map();
  for (const v of state.flags) {
    if (v.kind === 'absence' || (v.speaker && v.speaker !== utt.speaker)) continue;
    if (v.end < utt.start - 0.05 || v.start > utt.end + 0.05) continue;
    utt.words.forEach((w, i) => {
      if (w.end > v.start - 0.05 && w.start < v.end + 0.05) {
        const cur = hits.get(i);
        if (!cur || (SEV_RANK[v.severity] ?? 9) < (SEV_RANK[cur.severity] ?? 9)) hits.set(i, v);
      }
    });
  }
  return hits;
}

function renderTranscript() {
  const box = document.getElementById('transcript');
  box.replaceChildren();
  for (const u of state.call.utterances) {
    const cls = u.role === 'agent' ? 'agent' : u.role === 'customer' ? 'customer' : 'other';
    const hits = flagWords(u);
    const bubble = h('div', { class: 'bubble' });
    if (!u.words.length) bubble.append(u.text);
    let mark = null, markFlag = null;
    const parts = joinWords(u.words);
    let wi = -1;
    for (const p of parts) {
      if (typeof p === 'string') { (mark || bubble).append(p); continue; }
      wi += 1;
      const v = hits.get(wi);
      const span = h('span', { class: 'w', dataset: { s: p.start } }, p.text);
      if (v) {
        if (!mark || markFlag !== v) {
          mark = h('mark', { class: `flag sev-${v.severity}${RESOLVED.has(v.status) ? ' resolved' : ''}`, dataset: { vid: v.id },
            title: `${v.title} · ${label('sev', v.severity)}${v.regulation ? ' · ' + v.regulation : ''}`, onclick: () => select(v, true) });
          markFlag = v; bubble.append(mark);
        }
        mark.append(span);
      } else { mark = null; markFlag = null; bubble.append(span); }
    }
    bubble.querySelectorAll('mark.flag').forEach(emphasise);
    const tags = [...new Set(hits.values())].map((v) => h('button', { type: 'button', class: 'small flag-tag', dataset: { vid: v.id }, onclick: () => select(v, true) },
      sevBadge(v.severity), ' ', v.title, v.regulation ? h('span', { class: 'muted' }, ` · ${v.regulation.length > 48 ? v.regulation.slice(0, 47) + '…' : v.regulation}`) : null));
    box.append(h('div', { class: `utt ${cls}`, dataset: { start: u.start, end: u.end } },
      h('div', { class: 'who' }, label('role', u.role), h('span', { class: 'muted' }, ` ${u.speaker}`),
        h('a', { href: '#', onclick: (e) => { e.preventDefault(); state.player.stopAt = null; state.player.seek(u.start); } }, fmtSec(u.start))),
      bubble, tags.length ? h('div', { class: 'tags' }, tags) : null));
  }
}

// inside a highlighted run of words, make the exact matched words stand out
function emphasise(mark) {
  const v = state.flags.find((f) => String(f.id) === mark.dataset.vid);
  const text = mark.textContent, m = v && v.matched_text;
  const i = m ? text.indexOf(m) : -1;
  if (i < 0 || m.length === text.length) return;
  mark.replaceChildren(text.slice(0, i), h('b', { class: 'hit' }, m), text.slice(i + m.length));
}

// call-level findings of a kind of their own: a badge beside the rule id
const KIND_LABEL = { absence: 'call.absence', silence: 'call.silence', overtalk: 'call.overtalk', rate: 'call.rate' };

export function saidWithContext(v) {
  const ctx = (v.context || '').replaceAll(`【${v.matched_text}】`, v.matched_text);
  const i = ctx && v.matched_text ? ctx.indexOf(v.matched_text) : -1;
  if (i < 0) return [h('mark', {}, v.matched_text || ctx)];
  return [ctx.slice(0, i), h('mark', {}, v.matched_text), ctx.slice(i + v.matched_text.length)];
}

function auditFor(v) {
  // a role switch replaced every flag of the call, and SQLite may give a new flag an old flag's id:
  // only entries after the last switch belong to the current flags
  const swaps = state.audit.filter((e) => e.action === 'call.roles');
  const since = swaps.length ? swaps[swaps.length - 1].id : 0;
  return state.audit.filter((e) => e.entity_type === 'violation' && e.entity_id === String(v.id) && e.id > since);
}

function actionsFor(v) {
  const note = h('textarea', { class: 'note', placeholder: t('act.note.placeholder'), 'aria-label': t('act.note') });
  const btns = [];
  const add = (name, cls, fn) => btns.push(h('button', { type: 'button', class: `small ${cls}`, dataset: { action: name }, onclick: fn }, t(`act.${name}`)));
  if (reviewer && (v.status === 'open' || v.status === 'escalated')) {
    add('confirm', 'confirm', () => review(v, 'confirm', note.value));
    add('dismiss', 'dismiss', () => review(v, 'dismiss', note.value));
    if (v.status === 'open') add('escalate', '', () => review(v, 'escalate', note.value));
  }
  if (reviewer && v.status === 'disputed') {
    add('uphold', 'confirm', () => decide(v, 'uphold', note.value));
    add('overturn', 'dismiss', () => decide(v, 'overturn', note.value));
  }
  if (role === 'agent' && v.status === 'confirmed') {
    add('acknowledge', '', () => appeal(v, 'acknowledge', note.value));
    add('dispute', '', () => appeal(v, 'dispute', note.value));
  }
  return btns.length ? [note, h('div', { class: 'actions' }, btns)] : [];
}

function renderFlags() {
  const box = document.getElementById('flags');
  document.getElementById('flag-count').textContent = `(${state.flags.length})`;
  if (!state.flags.length) { box.replaceChildren(h('p', { class: 'muted' }, t('call.noflags'))); return; }
  box.replaceChildren(...state.flags.map((v) => {
    const entries = auditFor(v);
    return h('article', { class: `flag-card sev-${v.severity}`, id: `flag-${v.id}`, dataset: { vid: v.id }, tabindex: -1, onclick: (e) => { if (!e.target.closest('button, textarea, summary, a')) select(v, false); } },
      h('div', { class: 'head' }, sevBadge(v.severity), h('span', { class: 'title' }, v.title), statusBadge(v.status), h('div', { class: 'spacer' }),
        h('button', { type: 'button', class: 'small play-flag', dataset: { vid: v.id }, onclick: () => { select(v, false); state.player.playFlag(v); } }, '▶ ', t('call.play', { t: fmtSec(v.start) }))),
      h('div', { class: 'rid' }, `${v.rule_id} · ${label('cat', v.category) || v.category}`, KIND_LABEL[v.kind] ? ` · ${t(KIND_LABEL[v.kind])}` : ''),
      v.kind === 'absence' ? null : h('div', { class: 'said' }, saidWithContext(v)),
      h('dl', {},
        v.regulation ? [h('dt', {}, t('call.regulation')), h('dd', { class: 'regulation' }, v.regulation)] : null,
        v.reason ? [h('dt', {}, t('call.reason')), h('dd', {}, v.reason)] : null,
        v.suggestion ? [h('dt', {}, t('call.suggestion')), h('dd', {}, v.suggestion)] : null),
      actionsFor(v),
      role === 'agent' ? null : h('details', { class: 'audit', dataset: { vid: v.id }, open: entries.length > 0 && state.openAudit === v.id },
        h('summary', {}, `${t('call.audit')} (${entries.length})`),
        entries.length ? h('ul', { class: 'audit-list' }, entries.map((e) => h('li', { class: 'audit-entry', dataset: { action: e.action } },
          `${fmtDateTime(e.at)} · ${e.actor} (${label('role', e.actor_role)}) · ${e.action}`,
          e.before && e.after ? ` · ${label('st', e.before.status)} → ${label('st', e.after.status)}` : '',
          e.note ? h('span', { class: 'note' }, `“${e.note}”`) : null)))
          : h('p', { class: 'muted' }, t('call.audit.none'))));
  }));
  if (state.selected) markSelected();
}

function markSelected() {
  document.querySelectorAll('.flag-card.selected, mark.flag.selected').forEach((el) => el.classList.remove('selected'));
  const id = state.selected;
  document.getElementById(`flag-${id}`)?.classList.add('selected');
  document.querySelectorAll(`mark.flag[data-vid="${id}"]`).forEach((el) => el.classList.add('selected'));
  state.player.selected = id; state.player.draw();
}

function select(v, scrollCard) {
  state.selected = v.id;
  markSelected();
  const card = document.getElementById(`flag-${v.id}`);
  if (scrollCard) card?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  document.querySelector(`mark.flag[data-vid="${v.id}"]`)?.scrollIntoView({ block: 'center', behavior: 'smooth' });
  const u = new URL(location.href); u.searchParams.set('v', v.id); history.replaceState(null, '', u);
}

async function act(v, path, body, noteRequired, title) {
  if (noteRequired && !(body.note || '').trim()) {
    const note = await askNote(title || t('act.note.required'));
    if (note === null) return;
    body.note = note;
  }
  try {
    const out = await api(path, { method: 'POST', body });
    toast(t('act.done', { status: label('st', out.status) }));
    state.openAudit = v.id;
    await load(false);
  } catch (ex) { toast(ex.message, true); }
}
const review = (v, action, note) => act(v, `violations/${v.id}/review`, { action, note: note || null }, action === 'dismiss', t('act.dismiss.title'));
const appeal = (v, action, note) => act(v, `violations/${v.id}/appeal`, { action, note: note || null }, action === 'dispute', t('act.dispute'));
const decide = (v, decision, note) => act(v, `violations/${v.id}/decision`, { decision, note: note || '' }, true, t(`act.${decision}`));

function renderHead() {
  const c = state.call;
  const roles = Object.fromEntries(c.speakers.map((s) => [s.speaker, s.role]));
  document.getElementById('call-head').replaceChildren(
    h('h1', {}, c.source_name),
    h('div', { class: 'meta' },
      h('span', {}, t('f.agent'), h('b', { id: 'call-agent' }, c.agent_id || '—')),
      h('span', {}, t('f.product'), h('b', {}, c.product || '—')),
      h('span', {}, t('call.time'), h('b', {}, fmtDateTime(c.call_time || c.created_at))),
      h('span', {}, t('call.duration'), h('b', {}, fmtSec(c.duration))),
      h('span', {}, t('call.channels'), h('b', {}, c.speakers.map((s) => `${s.speaker}=${label('role', roles[s.speaker])}`).join(' · '))),
      c.masked ? h('span', {}, t('call.masked')) : null),
    role === 'agent' ? null : h('button', { type: 'button', id: 'swap-roles', onclick: swapRoles }, '⇄ ', t('call.swap')));
}

async function swapRoles() {
  if (!confirm(t('call.swap.confirm'))) return;
  try {
    await api(`web/calls/${callId}/roles`, { method: 'POST', body: { swap: true } });
    toast(t('call.swap.done'));
    state.selected = null;
    await load(true);
  } catch (ex) { toast(ex.message, true); }
}

async function load(first) {
  const [call, flags, audit] = await Promise.all([
    api(`calls/${callId}`), api(`calls/${callId}/violations`),
    role === 'agent' ? Promise.resolve([]) : api(`calls/${callId}/audit`)]);
  state.call = call; state.flags = flags; state.audit = audit;
  const channelRoles = Object.fromEntries(call.speakers.filter((s) => s.channel !== null).map((s) => [s.channel, s.role]));
  if (first || !state.player) {
    state.player = new Player(document.getElementById('player'), { callId, src: call.audio_url, duration: call.duration, flags, channelRoles });
    state.player.onFlag = (v) => { select(v, true); state.player.playFlag(v); };
    let current = null;
    state.player.onTime((sec) => {
      const utts = document.querySelectorAll('.utt');
      let found = null;
      for (const el of utts) if (sec >= +el.dataset.start && sec <= +el.dataset.end + 0.2) found = el;
      if (found !== current) { current?.classList.remove('playing'); found?.classList.add('playing'); current = found; }
    });
  } else {
    state.player.flags = flags; state.player.channelRoles = channelRoles; state.player.draw();
  }
  renderHead(); renderTranscript(); renderFlags();
  markLoaded();
}

function move(step) {
  if (!state.flags.length) return;
  const i = state.flags.findIndex((v) => v.id === state.selected);
  const next = state.flags[Math.max(0, Math.min(state.flags.length - 1, i < 0 ? 0 : i + step))];
  select(next, true);
}

document.addEventListener('keydown', (e) => {
  if (typing(e) || e.ctrlKey || e.metaKey || e.altKey || document.querySelector('dialog[open]')) return;
  const v = state.flags.find((f) => f.id === state.selected);
  const note = () => document.querySelector(`#flag-${state.selected} textarea`)?.value || '';
  switch (e.key) {
    case ' ': e.preventDefault(); if (e.target.closest('button')) e.target.blur(); state.player.toggle(); break;
    case 'j': move(1); break;
    case 'k': move(-1); break;
    case 'ArrowRight': state.player.skip(5); break;
    case 'ArrowLeft': state.player.skip(-5); break;
    case 'p': if (v) state.player.playFlag(v); break;
    case 'c': if (v && reviewer) review(v, 'confirm', note()); break;
    case 'd': if (v && reviewer) review(v, 'dismiss', note()); break;
    case 'e': if (v && reviewer) review(v, 'escalate', note()); break;
    default: return;
  }
});

(async () => {
  try {
    await load(true);
    const want = +new URLSearchParams(location.search).get('v');
    const v = state.flags.find((f) => f.id === want);
    if (v) { select(v, true); state.player.seek(Math.max(0, v.start - 1.5)); }
    const at = new URLSearchParams(location.search).get('t');
    if (at) state.player.seek(+at);
  } catch (ex) {
    document.getElementById('call-head').replaceChildren(h('p', { class: 'error' }, `${t('common.error')}: ${ex.message}`));
  }
})();
