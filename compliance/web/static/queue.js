// The officer's review queue: filters in the URL, one page of flags at a time (most severe first,
// then oldest call), keyboard review (j/k, c, d, e, space, Enter, [ ]).
import { api, h, t, label, ME, PAGE, fmtSec, fmtDateTime, sevBadge, statusBadge, toast, askNote, typing, markLoaded } from './common.js';

const PAGE_SIZE = 50;
const FILTERS = ['status', 'severity', 'rule_id', 'category', 'agent_id', 'product', 'date_from', 'date_to'];
const reviewer = ME.role === 'officer' || ME.role === 'admin';
const form = document.getElementById('filter-form');
const body = document.getElementById('queue-body');
const audio = document.getElementById('queue-audio');
const state = { items: [], total: 0, page: 1, sel: 0, facetsLoaded: false, stopAt: null, playing: null };

function readFilters() {
  const q = new URLSearchParams(location.search);
  if (!q.has('status') && !q.has('_')) q.set('status', 'open');
  for (const k of FILTERS) { const el = form.elements[k]; if (el) el.value = q.get(k) || ''; }
  state.page = Math.max(1, +(q.get('page') || 1));
}

function params() {
  const p = {};
  for (const k of FILTERS) { const v = form.elements[k].value; if (v) p[k] = v; }
  if (p.date_from) p.date_from += 'T00:00:00';
  if (p.date_to) p.date_to += 'T23:59:59';
  return p;
}

function pushUrl() {
  const q = new URLSearchParams({ _: '1' });
  for (const k of FILTERS) { const v = form.elements[k].value; if (v) q.set(k, v); }
  if (state.page > 1) q.set('page', state.page);
  history.replaceState(null, '', `${location.pathname}?${q}`);
}

function fillSelect(el, values, text) {
  const keep = el.value;
  el.replaceChildren(h('option', { value: '' }, t('common.all')), ...values.map((v) => h('option', { value: v.id }, `${text(v)} (${v.n})`)));
  el.value = keep;
}

function renderCounts(f) {
  const chip = (key, value, text, n) => h('button', { type: 'button', class: `chip${form.elements[key].value === value ? ' on' : ''}`, dataset: { key, value },
    onclick: () => { form.elements[key].value = form.elements[key].value === value ? '' : value; state.page = 1; load(); } }, text, h('b', {}, n));
  const sev = Object.entries(f.by_severity).filter(([, n]) => n > 0).map(([s, n]) => chip('severity', s, label('sev', s), n));
  const st = ['open', 'escalated', 'disputed', 'confirmed', 'dismissed'].filter((s) => f.by_status[s]).map((s) => chip('status', s, label('st', s), f.by_status[s]));
  document.getElementById('counts').replaceChildren(h('span', { class: 'total', id: 'queue-total' }, t('common.total', { n: state.total })), ...sev, h('span', { class: 'muted' }, '·'), ...st);
}

function row(v, i) {
  return h('tr', { class: i === state.sel ? 'sel' : '', dataset: { vid: v.id, i }, onclick: () => selectRow(i), ondblclick: () => openCall(v) },
    h('td', { class: 'c-sev' }, sevBadge(v.severity)),
    h('td', {}, h('span', { class: 'rule-title', title: v.title }, v.title), h('span', { class: 'rule-id' }, `${v.rule_id} · ${label('cat', v.category)}`)),
    h('td', { class: 'said', title: v.context }, h('mark', { class: `flag sev-${v.severity}` }, v.matched_text || '—'), ' ', h('span', { class: 'ctx' }, (v.context || '').replaceAll(`【${v.matched_text}】`, v.matched_text))),
    h('td', { class: 'c-agent' }, v.agent_id ? h('a', { href: `/app/agent?agent=${encodeURIComponent(v.agent_id)}`, title: t('nav.agent') }, v.agent_id) : '—'),
    h('td', { class: 'c-product', title: v.product || '' }, v.product || '—'),
    h('td', { class: 'c-when' }, fmtDateTime(v.call_time)),
    h('td', { class: 'c-at' }, h('a', { href: `/app/calls/${v.call_id}?v=${v.id}` }, fmtSec(v.start))),
    h('td', { class: 'c-status' }, statusBadge(v.status)));
}

function render() {
  if (!state.items.length) body.replaceChildren(h('tr', {}, h('td', { colspan: 8, class: 'muted' }, t('queue.empty'))));
  else body.replaceChildren(...state.items.map(row));
  const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
  document.getElementById('pager').replaceChildren(
    h('span', { class: 'muted' }, t('common.page', { page: state.page, pages })),
    h('button', { type: 'button', disabled: state.page <= 1, onclick: () => gotoPage(state.page - 1) }, t('common.prev')),
    h('button', { type: 'button', disabled: state.page >= pages, onclick: () => gotoPage(state.page + 1) }, t('common.next')));
}

let initial = PAGE.initial || null; // the first page, sent with the HTML (pages.queue_initial)

async function load() {
  pushUrl();
  const p = params();
  let page, facets;
  if (initial && initial.page_no === state.page) ({ page, facets } = initial);
  else [page, facets] = await Promise.all([
    api('violations', { params: { ...p, page: state.page, page_size: PAGE_SIZE } }), api('web/facets', { params: p })]);
  initial = null;
  state.items = page.items; state.total = page.total; state.sel = Math.min(state.sel, Math.max(0, page.items.length - 1));
  if (!state.facetsLoaded) {
    fillSelect(form.elements.rule_id, facets.rules, (r) => `${r.title} · ${r.id}`);
    fillSelect(form.elements.category, facets.categories, (c) => label('cat', c.id));
    fillSelect(form.elements.agent_id, facets.agents, (a) => a.id);
    fillSelect(form.elements.product, facets.products, (p2) => p2.id);
    state.facetsLoaded = true;
  }
  renderCounts(facets); render();
  markLoaded();
}

function gotoPage(n) { state.page = n; state.sel = 0; load(); }

function selectRow(i) {
  if (!state.items.length) return;
  state.sel = Math.max(0, Math.min(state.items.length - 1, i));
  body.querySelectorAll('tr.sel').forEach((tr) => tr.classList.remove('sel'));
  const tr = body.children[state.sel];
  tr.classList.add('sel');
  tr.scrollIntoView({ block: 'nearest' });
}

const openCall = (v) => { location.href = `/app/calls/${v.call_id}?v=${v.id}`; };

function playToggle(v) {
  if (!audio.paused && state.playing === v.id) { audio.pause(); return; }
  const src = `/api/v1/calls/${v.call_id}/audio`;
  const start = () => { audio.currentTime = Math.max(0, v.start - 1.5); state.stopAt = v.end + 1.5; audio.play().catch(() => {}); };
  state.playing = v.id;
  if (audio.getAttribute('src') !== src) { audio.src = src; audio.addEventListener('loadedmetadata', start, { once: true }); audio.load(); }
  else start();
}
audio.addEventListener('timeupdate', () => { if (state.stopAt !== null && audio.currentTime >= state.stopAt) { audio.pause(); state.stopAt = null; } });

async function review(v, action) {
  if (!reviewer) { toast(t('common.forbidden'), true); return; }
  let note = null;
  if (action === 'dismiss') { note = await askNote(t('act.dismiss.title')); if (note === null) return; }
  try {
    const out = await api(`violations/${v.id}/review`, { method: 'POST', body: { action, note } });
    Object.assign(v, out);
    body.children[state.sel]?.replaceWith(row(v, state.sel));
    toast(t('act.done', { status: label('st', out.status) }));
    selectRow(state.sel + 1);
  } catch (ex) { toast(ex.message, true); }
}

document.addEventListener('keydown', (e) => {
  if (typing(e) || e.ctrlKey || e.metaKey || e.altKey || document.querySelector('dialog[open]')) return;
  const v = state.items[state.sel];
  switch (e.key) {
    case 'j': case 'ArrowDown': e.preventDefault(); selectRow(state.sel + 1); break;
    case 'k': case 'ArrowUp': e.preventDefault(); selectRow(state.sel - 1); break;
    case ' ': e.preventDefault(); if (v) playToggle(v); break;
    case 'Enter': case 'o': if (v) openCall(v); break;
    case 'c': if (v) review(v, 'confirm'); break;
    case 'd': if (v) review(v, 'dismiss'); break;
    case 'e': if (v) review(v, 'escalate'); break;
    case ']': if (state.page * PAGE_SIZE < state.total) gotoPage(state.page + 1); break;
    case '[': if (state.page > 1) gotoPage(state.page - 1); break;
    default: return;
  }
});

form.addEventListener('submit', (e) => { e.preventDefault(); state.page = 1; state.sel = 0; load(); });
form.addEventListener('change', () => { state.page = 1; state.sel = 0; load(); });
document.getElementById('f-reset').addEventListener('click', () => { form.reset(); form.elements.status.value = 'open'; state.page = 1; load(); });

readFilters();
load().catch((ex) => body.replaceChildren(h('tr', {}, h('td', { colspan: 8, class: 'error' }, `${t('common.error')}: ${ex.message}`))));
