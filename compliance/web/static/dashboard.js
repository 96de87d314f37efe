// Dashboards: violations over time by category and by severity, top rules, agents by violations per
// call, per-rule precision from reviewers' decisions, review backlog and turnaround. Each chart has a
// CSV export of exactly what it shows. Chart.js 4 (vendored, /static/vendor).
import { api, h, t, label, downloadCSV, markLoaded } from './common.js';

const form = document.getElementById('dash-form');
const charts = {};
const tables = {}; // chart id -> [header, rows] as shown
const SEV_COLOR = { critical: '#a61e4d', high: '#d9480f', medium: '#e0a526', low: '#1971c2', info: '#868e96' };
const PALETTE = ['#1f5fbf', '#d9480f', '#2b8a3e', '#ae3ec9', '#e0a526', '#0c8599', '#c2255c', '#5c940d', '#7048e8', '#868e96', '#e8590c', '#1098ad'];
Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;
Chart.defaults.datasets.bar.maxBarThickness = 36;
Chart.defaults.plugins.legend.labels.usePointStyle = true;
Chart.defaults.plugins.legend.labels.boxHeight = 8;

function draw(id, config, header, rows) {
  charts[id]?.destroy();
  charts[id] = new Chart(document.getElementById(`chart-${id}`), config);
  tables[id] = [header, rows];
}
const stacked = { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } };
const hbar = (extra = {}) => ({ indexAxis: 'y', scales: { x: { beginAtZero: true, ...extra }, y: { ticks: { autoSkip: false } } }, plugins: { legend: { display: false } } });
const short = (s, n = 22) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

function render(d) {
  const ot = d.over_time;
  document.getElementById('dash-stats').replaceChildren(
    ...[[d.calls, t('dash.calls')], [d.violations, t('dash.count')], [d.backlog.open + d.backlog.escalated + d.backlog.disputed, t('dash.backlog')],
      [d.turnaround.median_h ?? '—', `${t('dash.turnaround')} · ${t('dash.median')}`]].map(([v, l]) => h('div', { class: 'stat' }, h('b', {}, v), h('span', {}, l))));

  draw('cat', { type: 'bar', data: { labels: ot.buckets, datasets: ot.categories.map((c, i) => ({ label: label('cat', c), data: ot.by_category[c], backgroundColor: PALETTE[i % PALETTE.length] })) },
    options: { scales: stacked, plugins: { legend: { position: 'right', labels: { boxWidth: 10 } } } } },
  [d.bucket, ...ot.categories], ot.buckets.map((b, i) => [b, ...ot.categories.map((c) => ot.by_category[c][i])]));

  draw('sev', { type: 'bar', data: { labels: ot.buckets, datasets: ot.severities.map((s) => ({ label: label('sev', s), data: ot.by_severity[s], backgroundColor: SEV_COLOR[s] || '#868e96' })) },
    options: { scales: stacked, plugins: { legend: { position: 'right', labels: { boxWidth: 10 } } } } },
  [d.bucket, ...ot.severities], ot.buckets.map((b, i) => [b, ...ot.severities.map((s) => ot.by_severity[s][i])]));

  const top = d.top_rules.slice(0, 10);
  draw('rules', { type: 'bar', data: { labels: top.map((r) => short(r.title)), datasets: [{ label: t('dash.count'), data: top.map((r) => r.count), backgroundColor: '#d9480f' }] },
    options: hbar({ ticks: { precision: 0 } }) }, ['rule_id', 'title', 'count'], top.map((r) => [r.rule_id, r.title, r.count]));

  const ag = d.agents.slice(0, 12);
  draw('agents', { type: 'bar', data: { labels: ag.map((a) => a.agent_id), datasets: [{ label: t('dash.perCall'), data: ag.map((a) => a.per_call), backgroundColor: '#1f5fbf' }] },
    options: { ...hbar(), plugins: { legend: { display: false }, tooltip: { callbacks: { afterLabel: (c) => `${ag[c.dataIndex].violations} / ${ag[c.dataIndex].calls} ${t('dash.calls')}` } } } } },
  ['agent_id', 'calls', 'violations', 'per_call'], ag.map((a) => [a.agent_id, a.calls, a.violations, a.per_call]));

  const pr = d.precision.filter((r) => r.reviewed > 0).sort((a, b) => a.precision - b.precision).slice(0, 12);
  draw('precision', { type: 'bar', data: { labels: pr.map((r) => `${short(r.title, 18)} ${r.confirmed}/${r.reviewed}`), datasets: [{ label: t('dash.precision'), data: pr.map((r) => Math.round(r.precision * 100)),
    backgroundColor: pr.map((r) => (r.precision < 0.5 ? '#c92a2a' : r.precision < 0.8 ? '#e0a526' : '#2b8a3e')) }] },
  options: { ...hbar({ max: 100, ticks: { callback: (v) => `${v}%` } }), plugins: { legend: { display: false }, tooltip: { callbacks: { afterLabel: (c) => `${t('dash.reviewed')}: ${pr[c.dataIndex].reviewed}` } } } } },
  ['rule_id', 'title', 'flagged', 'reviewed', 'confirmed', 'dismissed', 'precision'], pr.map((r) => [r.rule_id, r.title, r.flagged, r.reviewed, r.confirmed, r.dismissed, r.precision]));

  const bl = Object.entries(d.backlog);
  draw('backlog', { type: 'bar', data: { labels: bl.map(([s]) => label('st', s)), datasets: [{ label: t('dash.backlog'), data: bl.map(([, n]) => n), backgroundColor: ['#e8590c', '#ae3ec9', '#1971c2'] }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } },
  ['status', 'count'], bl);

  const tb = d.turnaround.buckets;
  draw('turnaround', { type: 'line', data: { labels: tb.map((b) => b.bucket), datasets: [
    { label: t('dash.median'), data: tb.map((b) => b.median_h), borderColor: '#1f5fbf', backgroundColor: '#1f5fbf' },
    { label: t('dash.p90'), data: tb.map((b) => b.p90_h), borderColor: '#d9480f', backgroundColor: '#d9480f', borderDash: [5, 4] }] },
  options: { scales: { y: { beginAtZero: true, title: { display: true, text: 'h' } } } } },
  [d.bucket, 'reviewed', 'median_h', 'p90_h'], tb.map((b) => [b.bucket, b.reviewed, b.median_h, b.p90_h]));

  for (const [id, [, rows]] of Object.entries(tables)) {
    const card = document.querySelector(`[data-chart="${id}"]`);
    card.querySelector('.nodata')?.remove();
    if (!rows.length) card.append(h('p', { class: 'muted nodata', style: 'margin:-140px 0 0; text-align:center; position:relative' }, t('dash.nodata')));
  }
  markLoaded();
}

async function load() {
  const q = new URLSearchParams(location.search);
  for (const k of ['date_from', 'date_to', 'bucket']) if (q.get(k)) form.elements[k].value = q.get(k);
  const p = { bucket: form.elements.bucket.value };
  if (form.elements.date_from.value) p.date_from = `${form.elements.date_from.value}T00:00:00`;
  if (form.elements.date_to.value) p.date_to = `${form.elements.date_to.value}T23:59:59`;
  render(await api('web/dashboard', { params: p }));
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const q = new URLSearchParams();
  for (const k of ['date_from', 'date_to', 'bucket']) if (form.elements[k].value) q.set(k, form.elements[k].value);
  history.replaceState(null, '', `?${q}`);
  load();
});
document.querySelectorAll('[data-csv]').forEach((b) => b.addEventListener('click', () => {
  const [header, rows] = tables[b.dataset.csv] || [[], []];
  downloadCSV(`dashboard-${b.dataset.csv}`, header, rows);
}));
load().catch((ex) => document.getElementById('dash-stats').replaceChildren(h('p', { class: 'error' }, `${t('common.error')}: ${ex.message}`)));
