// The agent's own feedback: per call what was flagged (exact words, the second, playable), missing
// disclosures and the compliant wording; acknowledge or dispute; the agent's trend over time.
import { api, h, t, label, ME, fmtSec, fmtDateTime, sevBadge, statusBadge, toast, askNote, markLoaded } from './common.js';

const params = new URLSearchParams(location.search);
const agentId = ME.role === 'agent' ? ME.agent_id : params.get('agent');
const audio = document.getElementById('agent-audio');
let stopAt = null, chart = null;
audio.addEventListener('timeupdate', () => { if (stopAt !== null && audio.currentTime >= stopAt) { audio.pause(); stopAt = null; } });

function play(callId, item) {
  const src = `/api/v1/calls/${callId}/audio`;
  const go = () => { audio.currentTime = Math.max(0, item.start - 1.5); stopAt = item.end + 1.5; audio.play().catch(() => {}); };
  if (audio.getAttribute('src') !== src) { audio.src = src; audio.addEventListener('loadedmetadata', go, { once: true }); audio.load(); } else go();
}

function said(item) {
  const ctx = (item.context || '').replaceAll(`【${item.said}】`, item.said), i = item.said ? ctx.indexOf(item.said) : -1;
  if (i < 0) return [h('mark', {}, item.said || ctx)];
  return [ctx.slice(0, i), h('mark', {}, item.said), ctx.slice(i + item.said.length)];
}

async function appeal(item, action) {
  let note = null;
  if (action === 'dispute') { note = await askNote(t('act.dispute')); if (note === null) return; }
  try {
    const out = await api(`violations/${item.violation_id}/appeal`, { method: 'POST', body: { action, note } });
    toast(t('act.done', { status: label('st', out.status) }));
    await load();
  } catch (ex) { toast(ex.message, true); }
}

function weekOf(iso) {
  const d = new Date(iso); const day = (d.getDay() + 6) % 7; d.setDate(d.getDate() - day);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

function drawTrend(perCall, calls) {
  const byWeek = new Map();
  for (const fb of perCall) {
    const c = calls.get(fb.call_id);
    const wk = weekOf(fb.call_time || c?.created_at);
    const e = byWeek.get(wk) || { calls: 0, flags: 0, missing: 0, clean: 0 };
    e.calls += 1; e.flags += fb.flagged.length; e.missing += fb.missing_disclosures.length;
    e.clean += fb.flagged.length + fb.missing_disclosures.length === 0 ? 1 : 0;
    byWeek.set(wk, e);
  }
  const weeks = [...byWeek.keys()].sort();
  const rows = weeks.map((w) => byWeek.get(w));
  if (chart) chart.destroy();
  chart = new Chart(document.getElementById('trend-chart'), {
    data: { labels: weeks, datasets: [
      { type: 'line', label: t('agent.perCall'), data: rows.map((r) => +(r.flags / r.calls).toFixed(2)), borderColor: '#d9480f', backgroundColor: '#d9480f', yAxisID: 'y', tension: 0.2 },
      { type: 'line', label: t('agent.missing'), data: rows.map((r) => +(r.missing / r.calls).toFixed(2)), borderColor: '#b7791f', backgroundColor: '#b7791f', yAxisID: 'y', borderDash: [5, 4], tension: 0.2 },
      { type: 'bar', label: t('agent.calls'), data: rows.map((r) => r.calls), backgroundColor: 'rgba(76,127,208,.25)', yAxisID: 'y2', maxBarThickness: 48 }] },
    options: { maintainAspectRatio: false, animation: false, interaction: { mode: 'index', intersect: false }, plugins: { legend: { labels: { usePointStyle: true, boxHeight: 8 } } },
      scales: { y: { beginAtZero: true, title: { display: true, text: t('agent.perCall') } }, y2: { position: 'right', beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { precision: 0 } } } },
  });
}

async function load() {
  if (!agentId) { document.getElementById('agent-calls').replaceChildren(h('p', { class: 'muted' }, t('agent.nocalls'))); return; }
  const [fb, list] = await Promise.all([api(`agents/${encodeURIComponent(agentId)}/feedback`), api('calls', { params: { agent_id: agentId, page_size: 500 } })]);
  const calls = new Map(list.items.map((c) => [c.id, c]));
  if (ME.role !== 'agent') document.getElementById('agent-title').textContent = `${t('agent.titleFor')} · ${agentId}`;
  const missing = fb.per_call.reduce((n, c) => n + c.missing_disclosures.length, 0);
  document.getElementById('agent-stats').replaceChildren(
    ...[[fb.calls, t('agent.calls')], [fb.flagged, t('agent.flagged')], [fb.calls ? (fb.flagged / fb.calls).toFixed(1) : '0', t('agent.perCall')], [missing, t('agent.missing')]]
      .map(([v, l]) => h('div', { class: 'stat' }, h('b', {}, v), h('span', {}, l))));
  const tallies = [...fb.by_rule, ...fb.missing_disclosures];
  document.getElementById('by-rule').replaceChildren(...(tallies.length ? tallies.map((r) => h('div', { class: 'rule-tally' },
    h('b', {}, r.title), h('span', { class: 'muted' }, ` ×${r.count}`), r.compliant_wording ? h('div', { class: 'instead' }, '✓ ', r.compliant_wording) : null))
    : [h('p', { class: 'muted' }, t('dash.nodata'))]));
  if (fb.per_call.length) drawTrend(fb.per_call, calls);
  const cards = [...fb.per_call].reverse().map((c) => {
    const call = calls.get(c.call_id) || {};
    return h('section', { class: 'card call-fb', dataset: { call: c.call_id } },
      h('div', { class: 'head' }, h('h2', { style: 'margin:0' }, h('a', { href: `/app/calls/${c.call_id}` }, call.source_name || `#${c.call_id}`)),
        h('span', { class: 'muted' }, fmtDateTime(c.call_time || call.created_at)), c.product ? h('span', {}, c.product) : null,
        h('div', { class: 'spacer' }), h('span', { class: 'muted' }, `${t('agent.flagged')} ${c.flagged.length} · ${t('agent.missing')} ${c.missing_disclosures.length}`)),
      !c.flagged.length && !c.missing_disclosures.length ? h('p', { class: 'muted' }, t('agent.nothing')) : null,
      c.flagged.map((item) => h('div', { class: 'fb-item', dataset: { vid: item.violation_id } },
        h('div', {}, h('button', { type: 'button', class: 'small play-item', onclick: () => play(c.call_id, item) }, '▶ ', fmtSec(item.start)), h('div', { style: 'margin-top:4px' }, sevBadge(item.severity))),
        h('div', {}, h('span', { class: 'lbl' }, `${t('agent.said')} · ${item.title}`), h('div', { class: 'said' }, said(item)), ),
        h('div', {}, h('span', { class: 'lbl' }, t('agent.instead')), h('div', { class: 'instead' }, item.compliant_wording || '—'), item.regulation ? h('div', { class: 'muted' }, item.regulation) : null),
        h('div', { class: 'acts' }, statusBadge(item.status),
          item.status === 'confirmed' && ME.role === 'agent'
            ? h('div', { class: 'row' }, h('button', { type: 'button', class: 'small', onclick: () => appeal(item, 'acknowledge') }, t('act.acknowledge')),
              h('button', { type: 'button', class: 'small', onclick: () => appeal(item, 'dispute') }, t('act.dispute')))
            : item.status === 'open' || item.status === 'escalated' ? h('span', { class: 'muted', style: 'font-size:12px' }, t('agent.awaiting')) : null))),
      c.missing_disclosures.map((m) => h('div', { class: 'missing', dataset: { vid: m.violation_id } }, h('b', {}, `${t('call.absence')}：${m.title}`), ' ', statusBadge(m.status),
        m.compliant_wording ? h('div', { class: 'instead' }, `${t('agent.instead')}：${m.compliant_wording}`) : null)));
  });
  document.getElementById('agent-calls').replaceChildren(...(cards.length ? cards : [h('p', { class: 'muted' }, t('agent.nocalls'))]));
  markLoaded();
}

load().catch((ex) => document.getElementById('agent-calls').replaceChildren(h('p', { class: 'error' }, `${t('common.error')}: ${ex.message}`)));
