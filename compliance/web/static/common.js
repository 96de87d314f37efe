// Shared helpers for every page: UI strings, the JSON API (login cookie), DOM building, formatting.
const json = (id) => { const el = document.getElementById(id); return el ? JSON.parse(el.textContent || 'null') : null; };
export const I18N = json('i18n') || {};
export const ME = json('me');
export const PAGE = json('page-data') || {};
export const LANG = document.documentElement.lang || 'zh-CN';

export function t(key, vars) {
  let s = I18N[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, v);
  return s;
}
export const label = (prefix, value) => (I18N[`${prefix}.${value}`] ?? value ?? '');

export class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

export async function api(path, { method = 'GET', body, form, params } = {}) {
  let url = path.startsWith('/') ? path : `/api/v1/${path}`;
  if (params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString(); if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) { opts.headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body); }
  if (form) opts.body = form;
  const r = await fetch(url, opts);
  if (r.status === 401 && document.body.dataset.page !== 'login') {
    location.href = '/?next=' + encodeURIComponent(location.pathname + location.search);
    throw new ApiError(401, 'not logged in');
  }
  if (!r.ok) {
    let detail = r.statusText;
    try { const d = (await r.json()).detail; detail = typeof d === 'string' ? d : JSON.stringify(d); } catch { /* not JSON */ }
    throw new ApiError(r.status, detail);
  }
  if (r.status === 204) return null;
  return (r.headers.get('content-type') || '').includes('json') ? r.json() : r.text();
}

// h('div', {class: 'x', onclick: fn}, 'text', child, [children])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'html') el.innerHTML = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  const add = (c) => {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) c.forEach(add);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  };
  children.forEach(add);
  return el;
}

export const sevBadge = (s) => h('span', { class: `sev sev-${s}` }, label('sev', s));
export const statusBadge = (s) => h('span', { class: `status status-${s}`, dataset: { status: s } }, label('st', s));

export function fmtSec(sec) {
  sec = Math.max(0, sec || 0);
  const m = Math.floor(sec / 60), s = Math.floor(sec % 60);
  return `${m}:${String(s).padStart(2, '0')}`;
}
export function fmtDateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso.endsWith('Z') || /[+-]\d\d:\d\d$/.test(iso) ? iso : iso + 'Z');
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

let toastTimer;
export function toast(msg, bad = false) {
  const el = document.getElementById('toast');
  el.textContent = msg; el.className = 'toast show' + (bad ? ' bad' : '');
  clearTimeout(toastTimer); toastTimer = setTimeout(() => { el.className = 'toast'; }, bad ? 6000 : 2500);
}

export function downloadCSV(name, header, rows) {
  const cell = (v) => { const s = v === null || v === undefined ? '' : String(v); return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s; };
  const text = '\ufeff' + [header, ...rows].map((r) => r.map(cell).join(',')).join('\n') + '\n';
  const a = h('a', { href: URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' })), download: `${name}.csv` });
  document.body.append(a); a.click(); a.remove();
}

// the page has rendered its data: tests wait for this; bench/web.py reads the time it took
export function markLoaded() {
  if (!document.body.dataset.loadedMs) document.body.dataset.loadedMs = performance.now().toFixed(1);
  document.body.dataset.loaded = '1';
}

// typing in a field must not trigger page shortcuts
export const typing = (e) => e.target.closest && e.target.closest('input, textarea, select, [contenteditable]');

// a note dialog: resolves the note, or null when cancelled
export function askNote(title, { required = true, placeholder = t('act.note.placeholder') } = {}) {
  return new Promise((resolve) => {
    const area = h('textarea', { placeholder, id: 'note-input' });
    const err = h('p', { class: 'error', hidden: true }, t('act.note.required'));
    const dlg = h('dialog', { id: 'note-dialog' },
      h('h2', {}, title), area, err,
      h('div', { class: 'row' }, h('div', { class: 'spacer' }),
        h('button', { type: 'button', onclick: () => { dlg.close(); } }, t('common.cancel')),
        h('button', { type: 'button', class: 'primary', id: 'note-submit', onclick: submit }, t('common.save'))));
    let done = false;
    function submit() {
      const note = area.value.trim();
      if (required && !note) { err.hidden = false; area.focus(); return; }
      done = true; dlg.close(); resolve(note);
    }
    area.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); } });
    dlg.addEventListener('close', () => { dlg.remove(); if (!done) resolve(null); });
    document.body.append(dlg); dlg.showModal(); area.focus();
  });
}

// header: language toggle and logout
document.getElementById('lang-toggle')?.addEventListener('click', (e) => {
  document.cookie = `lang=${e.currentTarget.dataset.lang}; path=/; max-age=31536000; samesite=strict`;
  location.reload();
});
document.getElementById('logout')?.addEventListener('click', async () => {
  try { await api('auth/logout', { method: 'POST' }); } catch { /* already gone */ }
  location.href = '/';
});
