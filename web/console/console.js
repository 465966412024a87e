// The operators' console (docs/decisions/0025-operators-console.md): one page, no framework. The
// live charts read this server's own /metrics (Prometheus text) every two seconds and draw rates
// and quantiles of what changed since the last read; the other views read /v1/operator/...,
// which only platform operators may call. The session token lives in sessionStorage (this tab).
const tokenKey = 'liftoff.console.token';
const pollMs = 2000;
const windowPoints = 60; // two minutes of points
const colors = ['#0a58ca', '#b42318', '#1a7f37', '#9a6700', '#8250df', '#57606a'];
const $ = (id) => document.getElementById(id);
const views = ['login', 'overview', 'orgs', 'org', 'users', 'database', 'business'];

// A problem+json answer: its detail, then each field's error ("limits.seats: must be ...").
class ApiError extends Error {
  constructor(status, problem) {
    const fields = (problem?.errors ?? []).map((e) => `${e.field}: ${e.message}`);
    super([problem?.detail ?? problem?.title ?? `HTTP ${status}`, ...fields].join('; '));
    this.status = status;
  }
}

async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(tokenKey);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const answer = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, answer);
  return answer;
}

// ---- Prometheus text format 0.0.4: `name{label="value",...} number` per line.
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

const total = (samples, name, keep = () => true) =>
  samples.filter((s) => s.name === name && keep(s.labels)).reduce((a, s) => a + s.value, 0);

// A histogram's cumulative buckets summed over its series: [[upper bound, count], ...] by bound.
function buckets(samples, name) {
  const byBound = new Map();
  for (const s of samples) {
    if (s.name !== `${name}_bucket`) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    byBound.set(le, (byBound.get(le) ?? 0) + s.value);
  }
  return [...byBound].sort((a, b) => a[0] - b[0]);
}

// The q-quantile of what was observed between two reads of the buckets, interpolated linearly
// inside its bucket (as PromQL's histogram_quantile); null when nothing was observed.
export function quantile(q, now, before) {
  const counts = now.map(([le, c]) => [le, c - (before?.find(([b]) => b === le)?.[1] ?? 0)]);
  const observed = counts.at(-1)?.[1] ?? 0;
  if (observed <= 0) return null;
  const rank = q * observed;
  let lower = 0;
  let below = 0;
  for (const [le, c] of counts) {
    if (c >= rank) {
      if (le === Infinity) return lower;
      return lower + ((le - lower) * (rank - below)) / Math.max(c - below, 1e-12);
    }
    lower = le;
    below = c;
  }
  return lower;
}

// ---- Charts: SVG drawn from numbers only.
const svgNS = 'http://www.w3.org/2000/svg';
function svgEl(name, attrs, text) {
  const el = document.createElementNS(svgNS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * step) return m * step;
  return 10 * step;
}

const formatNumber = (v) =>
  v === null || v === undefined || Number.isNaN(v)
    ? '-'
    : Math.abs(v) >= 100
      ? v.toFixed(0)
      : Math.abs(v) >= 10
        ? v.toFixed(1)
        : v.toFixed(2);

// Redraws `figure` with `series` ([{name, points: [value|null ...]}]), the newest point last and
// each point `pollMs` apart. Keeps a one-line text of the latest values (read by screen readers
// and by the browser test) and the point count in data-points.
function drawLines(figure, series, note = '') {
  const W = 360;
  const H = 150;
  const left = 36;
  const bottom = 14;
  const top = 6;
  const right = 6;
  const values = series.flatMap((s) => s.points).filter((v) => v !== null);
  const max = niceMax(Math.max(0, ...values));
  const x = (i) => left + ((W - left - right) * i) / (windowPoints - 1);
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-hidden': 'true' });
  for (const v of [0, max / 2, max]) {
    svg.append(svgEl('line', { class: 'grid', x1: left, x2: W - right, y1: y(v), y2: y(v) }));
    svg.append(svgEl('text', { x: 2, y: y(v) + 3 }, formatNumber(v)));
  }
  svg.append(svgEl('text', { x: left, y: H - 2 }, `-${((windowPoints - 1) * pollMs) / 1000}s`));
  svg.append(svgEl('text', { x: W - right - 20, y: H - 2 }, 'now'));
  series.forEach((s, k) => {
    const offset = windowPoints - s.points.length;
    const runs = [[]];
    s.points.forEach((v, i) => {
      if (v === null) runs.push([]);
      else runs.at(-1).push(`${x(offset + i).toFixed(1)},${y(v).toFixed(1)}`);
    });
    for (const run of runs.filter((r) => r.length > 0)) {
      svg.append(svgEl('polyline', { points: run.join(' '), stroke: colors[k % colors.length] }));
    }
  });
  const legend = document.createElement('div');
  legend.className = 'legend';
  const latest = document.createElement('p');
  latest.className = 'note latest';
  latest.textContent = note || series.map((s) => `${s.name}: ${formatNumber(s.points.at(-1))}`).join(', ');
  series.forEach((s, k) => {
    const item = document.createElement('span');
    const swatch = document.createElement('i');
    swatch.style.background = colors[k % colors.length];
    item.append(swatch, s.name);
    legend.append(item);
  });
  const caption = figure.querySelector('figcaption');
  figure.replaceChildren(caption, svg, legend, latest);
  figure.dataset.points = String(Math.max(0, ...series.map((s) => s.points.filter((v) => v !== null).length)));
}

// ---- The live overview.
const live = { timer: null, previous: null, history: new Map() };

function remember(key, value) {
  const points = live.history.get(key) ?? [];
  points.push(value);
  while (points.length > windowPoints) points.shift();
  live.history.set(key, points);
  return points;
}

async function readMetrics() {
  const res = await fetch('/metrics');
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  return { at: performance.now(), samples: parseMetrics(await res.text()) };
}

function drawOverview(read) {
  const before = live.previous;
  live.previous = read;
  if (!before) return;
  const seconds = (read.at - before.at) / 1000;
  const rate = (name, keep) =>
    Math.max(0, total(read.samples, name, keep) - total(before.samples, name, keep)) / seconds;
  const klass = (c) => (labels) => labels.class === c;
  drawLines($('chart-requests'), [
    { name: 'all', points: remember('req', rate('http_requests_total')) },
    { name: '4xx', points: remember('4xx', rate('http_requests_total', klass('4xx'))) },
    { name: '5xx', points: remember('5xx', rate('http_requests_total', klass('5xx'))) },
  ]);
  const now = buckets(read.samples, 'http_request_duration_seconds');
  const then = buckets(before.samples, 'http_request_duration_seconds');
  const ms = (q) => {
    const v = quantile(q, now, then);
    return v === null ? null : v * 1000;
  };
  drawLines($('chart-latency'), [
    { name: 'p50', points: remember('p50', ms(0.5)) },
    { name: 'p95', points: remember('p95', ms(0.95)) },
    { name: 'p99', points: remember('p99', ms(0.99)) },
  ]);
  drawLines($('chart-database'), [
    { name: 'statement s/s', points: remember('dbtime', rate('db_query_duration_seconds_sum')) },
    { name: 'pool in use', points: remember('inuse', total(read.samples, 'db_pool_in_use')) },
    { name: 'pool waiting', points: remember('waiters', total(read.samples, 'db_pool_waiters')) },
  ]);
  const lags = read.samples.filter((s) => s.name === 'db_replica_lag_milliseconds');
  drawLines(
    $('chart-replicas'),
    lags.map((s) => {
      const name = Object.values(s.labels).join('/') || 'replica';
      return { name, points: remember(`lag:${name}`, s.value) };
    }),
    lags.length === 0 ? 'No replicas configured on this server.' : '',
  );
  drawLines($('chart-jobs'), [
    { name: 'ready', points: remember('ready', total(read.samples, 'jobs_ready')) },
    { name: 'running', points: remember('running', total(read.samples, 'jobs_running')) },
    { name: 'finished/s', points: remember('finished', rate('jobs_finished_total')) },
  ]);
}

async function pollOverview() {
  try {
    drawOverview(await readMetrics());
    $('overview-status').textContent = `Updated ${new Date().toLocaleTimeString()}, every ${pollMs / 1000} s.`;
  } catch (e) {
    $('overview-status').textContent = `Cannot read /metrics: ${e.message}`;
  }
}

function startOverview() {
  if (live.timer) return;
  pollOverview();
  live.timer = setInterval(pollOverview, pollMs);
}

function stopOverview() {
  clearInterval(live.timer);
  live.timer = null;
  live.previous = null;
}

// ---- Lists and figures from /v1/operator.
const day = (t) => (t ? t.slice(0, 10) : '-');

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// Rows of `items`, a cell per column: [text of item, class name] or [item => element].
function fillRows(tbody, items, columns) {
  const rows = items.map((item) => {
    const tr = document.createElement('tr');
    tr.append(
      ...columns.map(([value, className]) => {
        const made = value(item);
        if (!(made instanceof Node)) return cell(made, className);
        const td = document.createElement('td');
        td.append(made);
        return td;
      }),
    );
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = cell('Nothing found.');
    td.colSpan = columns.length;
    tr.append(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

const lists = {
  orgs: [
    [(o) => orgLink(o)],
    [(o) => o.plan],
    [(o) => String(o.members)],
    [(o) => o.shard],
    [(o) => day(o.created_at)],
    [(o) => status(o)],
    [(o) => o.id, 'id'],
    [(o) => suspensionButton(o)],
  ],
  users: [
    [(u) => u.email],
    [(u) => u.name],
    [(u) => (u.email_verified ? 'yes' : 'no')],
    [(u) => String(u.orgs)],
    [(u) => day(u.last_seen_at)],
    [(u) => day(u.created_at)],
  ],
};

// The org's name, linking to its page.
function orgLink(org) {
  const span = document.createElement('span');
  const a = document.createElement('a');
  a.href = `#org/${org.id}`;
  a.textContent = org.name;
  span.append(a, org.deleted_at ? ' (deleted)' : '');
  return span;
}

function status(org) {
  if (!org.suspended_at) return 'active';
  const span = document.createElement('span');
  span.className = 'suspended';
  span.textContent = `suspended ${day(org.suspended_at)}: ${org.suspended_reason}`;
  return span;
}

// Suspend (asking the reason) or restore one organization, then show the list again.
function suspensionButton(org) {
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = org.suspended_at ? 'Restore' : 'Suspend';
  button.setAttribute('aria-label', `${button.textContent} ${org.name}`);
  button.addEventListener('click', async () => {
    try {
      if (org.suspended_at) {
        await api(`/v1/operator/orgs/${org.id}/suspension`, { method: 'DELETE' });
      } else {
        const reason = await askReason(org);
        if (reason === null) return;
        await api(`/v1/operator/orgs/${org.id}/suspension`, { method: 'POST', body: { reason } });
      }
      await search('orgs', document.querySelector('form[data-list="orgs"] input').value);
    } catch (e) {
      if (!handleAuthError(e)) $('orgs-error').textContent = e.message;
    }
  });
  return button;
}

// The operator's reason to suspend `org`, from the dialog; null when cancelled.
function askReason(org) {
  const dialog = $('suspend-dialog');
  const form = $('suspend-form');
  $('suspend-name').textContent = org.name;
  form.reset();
  return new Promise((resolve) => {
    const done = (value) => {
      dialog.removeEventListener('close', closed);
      $('suspend-cancel').removeEventListener('click', cancelled);
      resolve(value);
    };
    const closed = () => done(dialog.returnValue === 'suspend' ? new FormData(form).get('reason') : null);
    const cancelled = () => dialog.close('cancel');
    dialog.addEventListener('close', closed);
    $('suspend-cancel').addEventListener('click', cancelled);
    dialog.returnValue = '';
    dialog.showModal();
  });
}

async function search(list, text = '') {
  $(`${list}-error`).textContent = '';
  try {
    const answer = await api(`/v1/operator/${list}?limit=50&q=${encodeURIComponent(text)}`);
    fillRows($(`${list}-rows`), answer[list], lists[list]);
  } catch (e) {
    if (!handleAuthError(e)) $(`${list}-error`).textContent = e.message;
  }
}

// Redraws `figure` as a bar per day of `days` ([{day: "YYYY-MM-DD", value}], oldest first), with
// a one-line text of their sum in `what` ("signups").
function drawBars(figure, days, what) {
  const W = 720;
  const H = 160;
  const bottom = 14;
  const max = niceMax(Math.max(0, ...days.map((d) => d.value)));
  const width = W / days.length;
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-hidden': 'true' });
  days.forEach((d, i) => {
    const h = ((H - bottom - 4) * d.value) / max;
    svg.append(svgEl('rect', { class: 'bar', x: i * width + 1, y: H - bottom - h, width: width - 2, height: h }));
  });
  svg.append(svgEl('text', { x: 0, y: H - 2 }, days[0]?.day ?? ''));
  svg.append(svgEl('text', { x: W, y: H - 2, 'text-anchor': 'end' }, days.at(-1)?.day ?? ''));
  const latest = document.createElement('p');
  latest.className = 'note latest';
  const sum = days.reduce((a, d) => a + d.value, 0);
  latest.textContent = `${sum} ${what} in ${days.length} days, at most ${formatNumber(max)} a day on this scale`;
  figure.replaceChildren(figure.querySelector('figcaption'), svg, latest);
  figure.dataset.points = String(days.length);
}

// Fills a <dl class="figures"> with [[name, value], ...].
function fillFigures(dl, figures) {
  dl.replaceChildren(
    ...figures.map(([name, value]) => {
      const div = document.createElement('div');
      const dt = document.createElement('dt');
      const dd = document.createElement('dd');
      dt.textContent = name;
      dd.textContent = String(value);
      div.append(dt, dd);
      return div;
    }),
  );
}

// ---- One organization: its plan, limits and usage; setting its plan.
let catalogue = null; // /v1/plans, read once
const money = (cents) => `$${(cents / 100).toFixed(2)}`;
const bytes = (n) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let k = 0;
  while (n >= 1024 && k < units.length - 1) (n /= 1024), ++k;
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${units[k]}`;
};
const amount = (name, n) => (name === 'storage_bytes' ? bytes(n) : n.toLocaleString('en-US'));
const shareOf = (part, whole) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-');

// Every day of [from, to) (RFC 3339 midnights) with `rows`' value of `field` on it (0 without a row).
function perDay(from, to, rows, field) {
  const byDay = new Map(rows.map((r) => [r.start.slice(0, 10), r[field] ?? 0]));
  const days = [];
  for (let t = Date.parse(from); t < Date.parse(to); t += 86_400_000) {
    const day = new Date(t).toISOString().slice(0, 10);
    days.push({ day, value: byDay.get(day) ?? 0 });
  }
  return days;
}

async function loadOrg(id) {
  $('org-error').textContent = '';
  $('plan-status').textContent = '';
  try {
    catalogue ??= (await api('/v1/plans')).plans;
    const { org, plan, usage } = await api(`/v1/operator/orgs/${encodeURIComponent(id)}`);
    $('org-title').textContent = org.name + (org.deleted_at ? ' (deleted)' : '');
    fillFigures($('org-figures'), [
      ['Plan', plan ? plan.plan : '-'],
      ['Price a month', plan ? money(plan.monthly_price_cents) : '-'],
      ['Members', org.members],
      ['Shard', org.shard],
      ['Created', day(org.created_at)],
      ['Status', org.suspended_at ? `suspended ${day(org.suspended_at)}` : org.deleted_at ? 'deleted' : 'active'],
    ]);
    drawBars($('chart-org-requests'), perDay(usage.from, usage.to, usage.usage, 'api_requests'), 'API requests');
    const limits = plan ? Object.entries(plan.limits) : [];
    fillRows($('org-limits'), limits, [
      [([name]) => name.replaceAll('_', ' ')],
      [([name]) => (name in plan.usage ? amount(name, plan.usage[name]) : '-')],
      [([name, allowed]) => amount(name, allowed) + (name in plan.overrides ? ' (contract)' : '')],
      [([name, allowed]) => (name in plan.usage ? shareOf(plan.usage[name], allowed) : '-')],
    ]);
    const form = $('plan-form');
    form.dataset.org = org.id;
    form.hidden = !plan;
    const select = form.elements.plan;
    select.replaceChildren(
      ...catalogue.map((p) => {
        const option = document.createElement('option');
        option.value = p.name;
        option.textContent = `${p.name} (${money(p.monthly_price_cents)} a month)`;
        return option;
      }),
    );
    if (plan) {
      select.value = plan.plan;
      form.elements.limits.value = Object.keys(plan.overrides).length > 0 ? JSON.stringify(plan.overrides) : '';
    }
    form.elements.force.checked = false;
  } catch (e) {
    if (!handleAuthError(e)) $('org-error').textContent = e.message;
  }
}

async function setPlan(event) {
  event.preventDefault();
  const form = event.target;
  const fields = new FormData(form);
  const body = { plan: fields.get('plan'), force: fields.get('force') === 'on' };
  const limits = String(fields.get('limits') ?? '').trim();
  $('plan-status').textContent = '';
  try {
    if (limits) {
      try {
        body.limits = JSON.parse(limits);
      } catch {
        throw new Error('The contract limits are not JSON: write an object, as {"seats": 500}.');
      }
    }
    const state = await api(`/v1/operator/orgs/${form.dataset.org}/plan`, { method: 'PUT', body });
    await loadOrg(form.dataset.org);
    $('plan-status').textContent = `The plan is ${state.plan}.`;
  } catch (e) {
    if (!handleAuthError(e)) $('plan-status').textContent = e.message;
  }
}

// ---- The database: slow statements, the statements with the most time, index advice.
const ms = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

// A plan (EXPLAIN (FORMAT JSON)) as indented lines: each node, its relation and index, its
// estimated cost and rows, and its conditions.
export function planText(plan) {
  const lines = [];
  const conditions = ['Index Cond', 'Recheck Cond', 'Filter', 'Join Filter', 'Hash Cond', 'Merge Cond'];
  const walk = (node, depth) => {
    const pad = '  '.repeat(depth);
    let head = node['Node Type'];
    if (node['Index Name']) head += ` using ${node['Index Name']}`;
    if (node['Relation Name']) head += ` on ${node['Relation Name']}`;
    head += ` (cost=${node['Startup Cost']}..${node['Total Cost']} rows=${node['Plan Rows']})`;
    lines.push(pad + head);
    for (const c of conditions) if (node[c]) lines.push(`${pad}  ${c}: ${node[c]}`);
    for (const child of node.Plans ?? []) walk(child, depth + 1);
  };
  for (const top of Array.isArray(plan) ? plan : [plan]) if (top?.Plan) walk(top.Plan, 0);
  return lines.join('\n');
}

// A <details> showing `summary`, opening to `text` (preformatted).
function disclosure(summary, text) {
  const details = document.createElement('details');
  const s = document.createElement('summary');
  const pre = document.createElement('pre');
  s.textContent = summary;
  pre.textContent = text;
  details.append(s, pre);
  return details;
}

async function loadSlow() {
  try {
    const answer = await api('/v1/operator/slow-statements');
    $('slow-note').textContent =
      answer.threshold_ms > 0
        ? `Statements of ${answer.threshold_ms} ms or more (slow_statement_threshold), most total time first; the latest plan of each is kept.`
        : 'Slow statements are not recorded: slow_statement_threshold is 0 on this server.';
    fillRows($('slow-rows'), answer.statements, [
      [(s) => disclosure(s.statement, s.sql)],
      [(s) => s.node],
      [(s) => s.count.toLocaleString('en-US'), 'num'],
      [(s) => ms(s.mean_ms), 'num'],
      [(s) => ms(s.max_ms), 'num'],
      [(s) => s.last_at.slice(0, 19).replace('T', ' ')],
      [(s) => (s.plan ? disclosure(s.plan[0]?.Plan?.['Node Type'] ?? 'plan', planText(s.plan)) : 'not yet')],
    ]);
  } catch (e) {
    if (!handleAuthError(e)) $('slow-note').textContent = e.message;
  }
}

// A heading and a table (or the cluster's problem) for each cluster of an answer.
function perCluster(container, clusters, fill) {
  container.replaceChildren(
    ...clusters.map((c) => {
      const section = document.createElement('div');
      section.className = 'cluster';
      section.dataset.cluster = c.cluster;
      const h3 = document.createElement('h3');
      h3.textContent = `Cluster ${c.cluster}`;
      section.append(h3);
      if (c.problem) {
        const p = document.createElement('p');
        p.className = 'error';
        p.textContent = c.problem;
        section.append(p);
      } else {
        fill(section, c);
      }
      return section;
    }),
  );
}

function table(headings, items, columns) {
  const t = document.createElement('table');
  const head = document.createElement('thead');
  const tr = document.createElement('tr');
  for (const h of headings) {
    const th = document.createElement('th');
    th.textContent = h;
    tr.append(th);
  }
  head.append(tr);
  const body = document.createElement('tbody');
  fillRows(body, items, columns);
  t.append(head, body);
  return t;
}

async function loadStatements() {
  try {
    const answer = await api('/v1/operator/statements?limit=20');
    perCluster($('statements'), answer.clusters, (section, c) =>
      section.append(
        table(['Statement', 'Calls', 'Mean ms', 'Total ms', 'Share'], c.statements, [
          [(s) => (s.query.length > 160 ? disclosure(`${s.query.slice(0, 120)} ...`, s.query) : s.query), 'sql'],
          [(s) => s.calls.toLocaleString('en-US'), 'num'],
          [(s) => ms(s.mean_ms), 'num'],
          [(s) => ms(s.total_ms), 'num'],
          [(s) => `${(100 * s.share).toFixed(1)}%`, 'num'],
        ]),
      ),
    );
  } catch (e) {
    if (!handleAuthError(e)) $('statements').textContent = e.message;
  }
}

async function advise() {
  const button = $('advise');
  button.disabled = true;
  $('advice-status').textContent = 'Advising ...';
  try {
    const answer = await api('/v1/operator/index-advice', { method: 'POST' });
    perCluster($('advice'), answer.clusters, (section, c) => {
      const p = document.createElement('p');
      p.className = 'note';
      p.textContent = `${c.statements} statements considered (${ms(c.statements_ms)} ms of execution since the statistics were reset)${c.qualstats ? ', with pg_qualstats' : ''}.`;
      section.append(p);
      if (c.indexes.length === 0) {
        const none = document.createElement('p');
        none.className = 'advised-none';
        none.textContent = 'No index would help them enough.';
        section.append(none);
      }
      for (const index of c.indexes) {
        const statements = index.statements
          .map((s) => `${(100 * s.estimated_cost_saved).toFixed(0)}% cheaper: ${s.query}`)
          .join('\n');
        section.append(
          disclosure(
            `${index.create}; saves about ${(100 * index.estimated_gain).toFixed(0)}% of their planned cost, ${bytes(index.estimated_bytes)}`,
            statements,
          ),
        );
      }
      for (const note of c.notes) {
        const n = document.createElement('p');
        n.className = 'note';
        n.textContent = `Note: ${note}`;
        section.append(n);
      }
    });
    $('advice-status').textContent = `Advised at ${new Date().toLocaleTimeString()}.`;
    loadStatements(); // the advice creates pg_stat_statements where it was missing
  } catch (e) {
    if (!handleAuthError(e)) $('advice-status').textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

async function loadBusiness() {
  try {
    const b = await api('/v1/operator/business');
    const figures = [
      ['Users', b.users],
      ['Organizations', b.orgs],
      ['Active today', b.active_users.day],
      ['Active this week', b.active_users.week],
      ['Active this month', b.active_users.month],
      ['Paid organizations', b.paid_orgs],
      ['Conversion to paid', shareOf(b.paid_orgs, b.orgs)],
    ];
    fillFigures($('business-figures'), figures);
    drawBars(
      $('chart-signups'),
      b.signups.map((d) => ({ day: d.day, value: d.signups })),
      'signups',
    );
    fillRows($('plans-rows'), b.plans, [
      [(p) => p.plan],
      [(p) => String(p.orgs)],
      [(p) => shareOf(p.orgs, b.orgs)],
    ]);
    fillRows($('cohort-rows'), [...b.cohorts].reverse(), [
      [(c) => c.month],
      [(c) => String(c.orgs), 'num'],
      [(c) => String(c.deleted), 'num'],
      [(c) => String(c.paid), 'num'],
      [(c) => shareOf(c.paid, c.orgs), 'num'],
      [(c) => Object.entries(c.plans).map(([plan, n]) => `${plan} ${n}`).join(', ') || '-'],
    ]);
  } catch (e) {
    if (!handleAuthError(e)) $('business-figures').textContent = e.message;
  }
}

// ---- Signing in and out, and which view shows.
// `wanted`: a view's name, or "org/<id>" for one organization's page.
function show(wanted) {
  const [name, id] = wanted.split('/');
  const view = views.includes(name) && (name !== 'org' || id) ? name : 'overview';
  for (const v of views) $(v).hidden = v !== view;
  for (const a of document.querySelectorAll('nav a')) {
    const current = view === 'org' ? 'orgs' : view; // an org's page is under Organizations
    if (a.getAttribute('href') === `#${current}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (view === 'overview') startOverview();
  else stopOverview();
  if (view === 'orgs' || view === 'users') search(view, document.querySelector(`form[data-list="${view}"] input`).value);
  if (view === 'business') loadBusiness();
  if (view === 'database') {
    loadSlow();
    loadStatements();
  }
  if (view === 'org') loadOrg(decodeURIComponent(id));
}

// Back to the sign-in form. `endSession`: the session is also logged out (a user who is not an
// operator keeps no session from signing in here).
function signedOut(message = '', endSession = false) {
  if (endSession) api('/v1/auth/logout', { method: 'POST' }).catch(() => {});
  sessionStorage.removeItem(tokenKey);
  $('nav').hidden = true;
  $('signout').hidden = true;
  $('who').textContent = '';
  $('login-error').textContent = message;
  show('login');
}

// 401 and 403 send the operator back to the sign-in form; true when it did.
function handleAuthError(e) {
  if (!(e instanceof ApiError)) return false;
  if (e.status === 401) signedOut('Your session ended: sign in again.');
  else if (e.status === 403) signedOut('This account is not a platform operator.', true);
  else return false;
  return true;
}

async function enter() {
  try {
    const me = await api('/v1/operator/me');
    $('who').textContent = me.user.email;
    $('nav').hidden = false;
    $('signout').hidden = false;
    const view = location.hash.slice(1);
    show(view && !view.startsWith('login') ? view : 'overview');
  } catch (e) {
    if (!handleAuthError(e)) signedOut(e.message);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    $('login-error').textContent = '';
    try {
      const session = await api('/v1/auth/login', {
        method: 'POST',
        body: { email: form.get('email'), password: form.get('password') },
      });
      sessionStorage.setItem(tokenKey, session.token);
      await enter();
    } catch (e) {
      $('login-error').textContent = e.message;
    }
  });
  $('plan-form').addEventListener('submit', setPlan);
  $('advise').addEventListener('click', advise);
  for (const form of document.querySelectorAll('form.search')) {
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      search(form.dataset.list, new FormData(form).get('q'));
    });
  }
  $('signout').addEventListener('click', async () => {
    await api('/v1/auth/logout', { method: 'POST' }).catch(() => {});
    signedOut();
  });
  window.addEventListener('hashchange', () => {
    if (!$('nav').hidden) show(location.hash.slice(1) || 'overview');
  });
  if (sessionStorage.getItem(tokenKey)) enter();
  else signedOut();
});
