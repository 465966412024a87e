// The example page: sign in, list and filter a collection's records, add and close tickets, and
// see everyone else's changes as they happen. Everything goes through the typed client; nothing
// here knows HTTP.
import { Liftoff, LiftoffError, ok } from '/liftoff.min.js';

const $ = (selector) => document.querySelector(selector);
const show = (selector, visible) => ($(selector).hidden = !visible);

const liftoff = new Liftoff({
  baseUrl: location.origin,
  token: sessionStorage.getItem('liftoff.token') ?? undefined,
  onTokenChange: (token) =>
    token ? sessionStorage.setItem('liftoff.token', token) : sessionStorage.removeItem('liftoff.token'),
});

let tickets;          // Records of the org's `tickets`
let filter = '';
let cursor = null;    // the next page of the list
let live;             // AbortController of the event stream
const rows = new Map(); // record id -> <tr>

function report(error) {
  const box = $('#error');
  if (!error) {
    box.hidden = true;
    return;
  }
  let text = error.message;
  if (error instanceof LiftoffError && error.errors.length > 0)
    text += ' — ' + error.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  box.textContent = text;
  box.hidden = false;
}

async function run(action) {
  try {
    report(null);
    await action();
  } catch (error) {
    report(error);
  }
}

// --- signing in -----------------------------------------------------------------------------------

$('#sign-in').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  run(async () => {
    await liftoff.login({ email: form.get('email'), password: form.get('password') });
    await enter();
  });
});

$('#sign-in [name=signup]').addEventListener('click', () => {
  const form = new FormData($('#sign-in'));
  run(async () => {
    await liftoff.signup({ email: form.get('email'), password: form.get('password'), name: form.get('name') || 'New user' });
    await enter();
  });
});

$('#sign-out').addEventListener('click', () =>
  run(async () => {
    live?.abort();
    await liftoff.logout();
    location.reload();
  }),
);

// The user's first organization with its `tickets` collection; an owner without one gets both.
async function workspace() {
  const { orgs } = await ok(liftoff.api.GET('/v1/orgs'));
  const org = orgs[0] ?? (await ok(liftoff.api.POST('/v1/orgs', { body: { name: 'Example Co' } })));
  try {
    await ok(liftoff.api.GET('/v1/orgs/{org}/collections/{collection}', { params: { path: { org: org.id, collection: 'tickets' } } }));
  } catch (error) {
    if (!(error instanceof LiftoffError && error.is('not-found'))) throw error;
    await ok(
      liftoff.api.POST('/v1/orgs/{org}/collections', {
        params: { path: { org: org.id } },
        body: {
          name: 'tickets',
          fields: [
            { name: 'title', type: 'text', required: true },
            { name: 'status', type: 'enum', values: ['open', 'closed'], indexed: true, default: 'open' },
            { name: 'priority', type: 'integer', indexed: true },
          ],
        },
      }),
    );
  }
  return org;
}

async function enter() {
  const me = await liftoff.me();
  const org = await workspace();
  tickets = liftoff.records(org.id, 'tickets');
  $('#who').textContent = me.email;
  $('#org').textContent = `${org.name} (${org.role})`;
  show('#sign-in', false);
  show('#workspace', true);
  show('#sign-out', true);
  await reload();
}

// --- the list -------------------------------------------------------------------------------------

function row(record) {
  const tr = document.createElement('tr');
  tr.dataset.id = record.id;
  for (const value of [record.data.title, record.data.status ?? '', record.data.priority ?? '', record.version]) {
    const td = document.createElement('td');
    td.textContent = String(value);
    tr.append(td);
  }
  const actions = document.createElement('td');
  if (record.data.status !== 'closed') {
    const close = document.createElement('button');
    close.textContent = 'Close';
    // Only if nobody changed it since it was shown: a stale version is a 412, said as such.
    close.addEventListener('click', () => run(() => tickets.update(record.id, { status: 'closed' }, { ifMatch: record })));
    actions.append(close);
  }
  tr.append(actions);
  return tr;
}

function put(record, { first = false, flash = false } = {}) {
  const tr = row(record);
  if (flash) tr.className = 'changed';
  const old = rows.get(record.id);
  if (old) old.replaceWith(tr);
  else if (first) $('#tickets').prepend(tr);
  else $('#tickets').append(tr);
  rows.set(record.id, tr);
}

function remove(id) {
  rows.get(id)?.remove();
  rows.delete(id);
}

async function page() {
  const answer = await tickets.list({ filter: filter || undefined, sort: '-created_at', limit: 25, cursor: cursor ?? undefined });
  for (const record of answer.records) put(record);
  cursor = answer.next_cursor;
  show('#more', cursor !== null);
}

async function reload() {
  live?.abort();
  rows.clear();
  $('#tickets').replaceChildren();
  cursor = null;
  await page();
  follow();
}

$('#more button').addEventListener('click', () => run(page));

$('#search').addEventListener('submit', (event) => {
  event.preventDefault();
  filter = new FormData(event.target).get('filter').trim();
  run(reload);
});

$('#new-ticket').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  run(async () => {
    const created = await tickets.create({ title: form.get('title'), priority: Number(form.get('priority')) });
    event.target.reset();
    // Shown now; its `created` event finds it shown. (With a filter, the event decides.)
    if (!filter) put(created, { first: true });
  });
});

// --- live changes ---------------------------------------------------------------------------------

// Every change to the tickets the filter selects, as it commits, from whoever made it (this page's
// own writes too: the list shows what the server holds). The stream resumes by itself after a
// dropped connection; a reset means the position was too old: reload the list.
async function follow() {
  const controller = new AbortController();
  live = controller;
  const status = $('#live');
  status.textContent = 'live';
  status.className = 'on';
  try {
    for await (const event of tickets.events({ filter: filter || undefined, signal: controller.signal })) {
      if (event.type === 'created') put(event.record, { first: true, flash: true });
      else if (event.type === 'updated') {
        // With a filter, an update may take the record out of the view: the list decides.
        if (filter) run(reload);
        else put(event.record, { flash: true });
      } else if (event.type === 'deleted') remove(event.previous.id);
      else if (event.type === 'reset') run(reload);
    }
  } catch (error) {
    report(error);
  } finally {
    if (live === controller) {
      status.textContent = 'not live';
      status.className = 'off';
    }
  }
}

// --- start ----------------------------------------------------------------------------------------

if (liftoff.token) {
  enter().catch((error) => {
    // A session that ended meanwhile: sign in again.
    if (error instanceof LiftoffError && error.status === 401) liftoff.setToken(undefined);
    else report(error);
    show('#sign-in', true);
  });
} else {
  show('#sign-in', true);
}
