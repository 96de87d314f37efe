// QA batch uploads: drag and drop recordings or zips (with optional metadata.csv / metadata.json,
// beside the files or inside a zip), per-file agent / product / channel layout, upload progress,
// then live progress per batch and per call (polling), failures with their reason, and a summary.
import { api, h, t, label, toast, markLoaded } from './common.js';

const META_KEYS = ['agent_id', 'customer_id', 'product', 'campaign', 'call_time', 'agent_channel', 'language'];
const state = { files: [], meta: {}, batches: [], timer: null };
const $ = (id) => document.getElementById(id);
const defaults = $('defaults');

// --- metadata files ------------------------------------------------------------------------------
function parseCSV(text) {
  const rows = []; let row = [], cell = '', q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) { if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') q = false; else cell += c; }
    else if (c === '"') q = true; else if (c === ',') { row.push(cell); cell = ''; }
    else if (c === '\n' || c === '\r') { if (c === '\r' && text[i + 1] === '\n') i++; row.push(cell); rows.push(row); row = []; cell = ''; }
    else cell += c;
  }
  if (cell || row.length) { row.push(cell); rows.push(row); }
  const [head, ...rest] = rows.filter((r) => r.some((c) => c.trim()));
  if (!head) return {};
  const cols = head.map((c) => c.trim().replace(/^\ufeff/, '').toLowerCase());
  const fi = cols.findIndex((c) => c === 'filename' || c === 'file');
  if (fi < 0) throw new Error('metadata.csv needs a "filename" column');
  const out = {};
  for (const r of rest) {
    const entry = {};
    cols.forEach((c, i) => { if (META_KEYS.includes(c) && (r[i] || '').trim()) entry[c] = r[i].trim(); });
    out[baseName(r[fi].trim())] = entry;
  }
  return out;
}
function parseMeta(name, text) {
  if (name.toLowerCase().endsWith('.csv')) return parseCSV(text);
  const data = JSON.parse(text);
  const out = {};
  for (const [k, v] of Object.entries(data)) out[baseName(k)] = Object.fromEntries(Object.entries(v).filter(([kk]) => META_KEYS.includes(kk)));
  return out;
}
const baseName = (p) => p.replaceAll('\\', '/').split('/').pop();
const isMetaName = (n) => /^metadata\.(csv|json)$/i.test(baseName(n));

// metadata.csv / metadata.json inside a zip: read the central directory, inflate that one member
async function zipMeta(file) {
  const tail = new DataView(await file.slice(Math.max(0, file.size - 65557)).arrayBuffer());
  let eocd = -1;
  for (let i = tail.byteLength - 22; i >= 0; i--) if (tail.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) return { names: [], meta: {} };
  const count = tail.getUint16(eocd + 10, true), cdSize = tail.getUint32(eocd + 12, true), cdOff = tail.getUint32(eocd + 16, true);
  const cd = new DataView(await file.slice(cdOff, cdOff + cdSize).arrayBuffer());
  const dec = new TextDecoder();
  const names = []; let meta = {};
  for (let p = 0, n = 0; n < count && p + 46 <= cd.byteLength; n++) {
    const method = cd.getUint16(p + 10, true), csize = cd.getUint32(p + 20, true);
    const nlen = cd.getUint16(p + 28, true), xlen = cd.getUint16(p + 30, true), clen = cd.getUint16(p + 32, true);
    const local = cd.getUint32(p + 42, true);
    const name = dec.decode(new Uint8Array(cd.buffer, cd.byteOffset + p + 46, nlen));
    p += 46 + nlen + xlen + clen;
    if (name.endsWith('/') || name.split('/').some((s) => s.startsWith('.') || s === '__MACOSX')) continue;
    if (!isMetaName(name)) { names.push(baseName(name)); continue; }
    const lh = new DataView(await file.slice(local, local + 30).arrayBuffer());
    const start = local + 30 + lh.getUint16(26, true) + lh.getUint16(28, true);
    let blob = file.slice(start, start + csize);
    if (method === 8) blob = await new Response(blob.stream().pipeThrough(new DecompressionStream('deflate-raw'))).blob();
    else if (method !== 0) continue;
    meta = { ...meta, ...parseMeta(name, await blob.text()) };
  }
  return { names, meta };
}

// --- choosing files ---------------------------------------------------------------------------
async function addFiles(list) {
  for (const file of list) {
    try {
      if (isMetaName(file.name) || /\.(csv|json)$/i.test(file.name)) {
        Object.assign(state.meta, parseMeta(file.name, await file.text()));
        continue;
      }
      const entry = { file, name: file.name, zip: /\.zip$/i.test(file.name), agent_id: '', product: '', agent_channel: null, members: [] };
      if (entry.zip) { const z = await zipMeta(file); entry.members = z.names; entry.meta = z.meta; Object.assign(state.meta, z.meta); }
      if (!state.files.some((f) => f.name === entry.name && f.file.size === file.size)) state.files.push(entry);
    } catch (ex) { toast(`${file.name}: ${ex.message}`, true); }
  }
  renderFiles();
}

function renderFiles() {
  const n = Object.keys(state.meta).length;
  $('meta-note').textContent = n ? t('batch.meta.loaded', { n }) : '';
  $('file-count').textContent = state.files.length ? `(${state.files.length})` : '';
  $('upload-btn').disabled = !state.files.length;
  $('file-body').replaceChildren(...state.files.map((f, i) => {
    const m = state.meta[f.name] || {};
    const input = (key, ph) => h('input', { value: f[key] || m[key] || '', placeholder: ph || defaults.elements[key].value || '—', 'aria-label': key,
      oninput: (e) => { f[key] = e.target.value; } });
    const layout = h('select', { 'aria-label': 'agent_channel', onchange: (e) => { f.agent_channel = e.target.value; } },
      h('option', { value: '' }, t('batch.useDefault')),
      h('option', { value: '0' }, t('batch.layout.0')), h('option', { value: '1' }, t('batch.layout.1')), h('option', { value: 'mono' }, t('batch.layout.auto')));
    layout.value = f.agent_channel ?? (m.agent_channel !== undefined ? String(m.agent_channel) : '');
    return h('tr', { dataset: { file: f.name } },
      h('td', { style: 'width:34%' }, h('div', { class: 'name', title: f.name }, f.zip ? '🗜 ' : '', f.name),
        h('span', { class: 'muted' }, `${(f.file.size / 1e6).toFixed(1)} MB${f.zip ? ` · ${f.members.length} files` : ''}`)),
      h('td', {}, f.zip ? h('span', { class: 'muted' }, '—') : input('agent_id', defaults.elements.agent_id.value)),
      h('td', {}, f.zip ? '' : input('product', defaults.elements.product.value)),
      h('td', { style: 'width:28%' }, f.zip ? '' : layout),
      h('td', { style: 'width:60px' }, h('button', { type: 'button', class: 'small', onclick: () => { state.files.splice(i, 1); for (const k of Object.keys(f.meta || {})) delete state.meta[k]; renderFiles(); } }, t('batch.remove'))));
  }));
}

const drop = $('dropzone');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); addFiles([...e.dataTransfer.files]); });
drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); $('file-input').click(); } });
$('file-input').addEventListener('change', (e) => { addFiles([...e.target.files]); e.target.value = ''; });
defaults.addEventListener('input', renderFiles);

// --- upload ----------------------------------------------------------------------------------------
function upload() {
  const fd = new FormData();
  const d = Object.fromEntries(new FormData(defaults));
  for (const f of state.files) fd.append('files', f.file, f.name);
  for (const [k, v] of Object.entries(d)) if (v !== '') fd.append(k, v);
  const per = {};
  const names = state.files.flatMap((f) => (f.zip ? f.members : [f.name]));
  for (const name of names) {
    const m = { ...(state.meta[name] || {}) };
    const f = state.files.find((x) => x.name === name);
    if (f) {
      if (f.agent_id) m.agent_id = f.agent_id;
      if (f.product) m.product = f.product;
      if (f.agent_channel === 'mono') m.agent_channel = null; else if (f.agent_channel) m.agent_channel = +f.agent_channel;
    }
    if (m.agent_channel === '' || m.agent_channel === 'mono') m.agent_channel = null;
    if (Object.keys(m).length) per[name] = m;
  }
  if (Object.keys(per).length) fd.append('metadata', JSON.stringify(per));
  const bar = $('upload-bar'), btn = $('upload-btn');
  btn.disabled = true; bar.hidden = false; $('upload-error').replaceChildren();
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/api/v1/uploads');
  xhr.responseType = 'json';
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) setBar(bar, (100 * e.loaded) / e.total, t('batch.uploading', { p: Math.round((100 * e.loaded) / e.total) })); };
  xhr.onload = () => {
    bar.hidden = true; btn.disabled = false;
    const out = xhr.response || {};
    if (xhr.status === 201) {
      state.files = []; state.meta = {}; renderFiles();
      if (out.rejected?.length) showRejected(out.rejected);
      refresh();
    } else {
      $('upload-error').textContent = `${xhr.status}: ${typeof out.detail === 'string' ? out.detail : JSON.stringify(out.detail || out)}`;
    }
  };
  xhr.onerror = () => { bar.hidden = true; btn.disabled = false; $('upload-error').textContent = t('common.error'); };
  xhr.send(fd);
}
$('upload-btn').addEventListener('click', upload);

function showRejected(list) {
  $('upload-error').replaceChildren(h('b', {}, t('batch.rejected')), h('ul', {}, list.map((r) => h('li', {}, r.reason.startsWith(r.filename) ? r.reason : `${r.filename}: ${r.reason}`))));
}

// --- batches and their jobs ---------------------------------------------------------------------
function setBar(el, pct, text, cls = '') {
  el.className = `bar ${el.classList.contains('small') ? 'small ' : ''}${cls}`;
  el.querySelector('i').style.width = `${Math.max(0, Math.min(100, pct))}%`;
  el.querySelector('span').textContent = text ?? `${Math.round(pct)}%`;
}
const bar = (pct, cls, text, small = false) => { const el = h('div', { class: `bar${small ? ' small' : ''}`, role: 'progressbar', 'aria-valuenow': Math.round(pct) }, h('i'), h('span')); setBar(el, pct, text, cls); return el; };

function renderBatch(b) {
  const done = b.counts.done || 0, failed = b.counts.failed || 0;
  return h('section', { class: 'card batch', dataset: { batch: b.id, finished: b.finished ? '1' : '0' } },
    h('div', { class: 'head' }, h('b', { title: b.name || b.id }, b.name || b.id.slice(0, 8)), h('span', { class: 'muted' }, new Date(b.created_at).toLocaleString()),
      bar(b.progress, b.finished ? (failed && !done ? 'failed' : 'done') : '', null)),
    b.finished ? h('div', { class: 'summary', dataset: { summary: '1' } }, t('batch.summary', { done, failed, flags: b.flags })) : null,
    b.jobs.map((j) => h('div', { class: 'job', dataset: { job: j.id, status: j.status } },
      h('div', { class: 'name', title: j.filename }, j.call_id ? h('a', { href: `/app/calls/${j.call_id}` }, j.filename) : j.filename,
        h('div', { class: 'stage' }, [j.agent_id, j.product].filter(Boolean).join(' · '))),
      h('span', { class: `status status-${j.status === 'failed' ? 'confirmed' : j.status === 'done' ? 'dismissed' : 'open'}` }, t(`job.${j.status}`)),
      h('div', {}, bar(j.progress, j.status === 'done' ? 'done' : j.status === 'failed' ? 'failed' : '', null, true), h('div', { class: 'stage' }, j.status === 'running' ? j.stage : '')),
      h('span', {}, j.status === 'done' ? h('a', { href: `/app/calls/${j.call_id}` }, t('job.flags', { n: j.flags })) : ''),
      j.error ? h('div', { class: 'reason' }, j.error) : null)));
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    state.batches = await api('web/batches', { params: { limit: 8 } });
    const box = $('batches');
    box.replaceChildren(...(state.batches.length ? state.batches.map(renderBatch) : [h('p', { class: 'muted' }, t('batch.none'))]));
    markLoaded();
  } catch (ex) { $('batches').replaceChildren(h('p', { class: 'error' }, ex.message)); }
  // poll faster while something is still running
  state.timer = setTimeout(refresh, state.batches.some((b) => !b.finished) ? 1000 : 10000);
}
refresh();
