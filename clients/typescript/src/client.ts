// The client: every operation of docs/openapi.json, typed from it (openapi-fetch over the types
// openapi-typescript generates), and what a generator cannot write: the session token kept and
// sent, read-your-writes, safe retries, typed errors, cursor pagination as async iteration, record
// events with resume, Idempotency-Key and If-Match.
import createClient, { type Client, type FetchResponse } from 'openapi-fetch';

import { LiftoffError } from './errors.js';
import { retryingFetch, type RetryOptions } from './retry.js';
import type { components, paths } from './schema.js';
import { eventStream, type EventStreamOptions } from './sse.js';

export type Schemas = components['schemas'];
export type Paths = paths;
export type User = Schemas['User'];
export type IssuedSession = Schemas['IssuedSession'];
export type Notification = Schemas['Notification'];
type JsonBody<Operation> = Operation extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
export type SignupBody = JsonBody<paths['/v1/auth/signup']['post']>;
export type LoginBody = JsonBody<paths['/v1/auth/login']['post']>;

// A record whose data has the shape the caller declares (the collection's fields).
export type LiftoffRecord<T = Record<string, unknown>> = Omit<Schemas['Record'], 'data'> & { data: T };

export interface LiftoffOptions {
  // Where Liftoff answers, e.g. https://api.example.com (no trailing /v1).
  baseUrl: string;
  // A session token (ls_...) or an organization's API key (lk_...).
  token?: string;
  // Told whenever the token changes (login, signup, logout), e.g. to keep it in sessionStorage.
  onTokenChange?: (token: string | undefined) => void;
  // Retries of 429, 503 and 504 (see retry.ts), or false for none.
  retry?: RetryOptions | false;
  // Defaults to the global fetch.
  fetch?: (request: Request) => Promise<Response>;
}

type Result<T> = { data?: T; error?: unknown; response: Response };

// The data of a successful answer; any other answer becomes a LiftoffError (from its problem+json).
export async function ok<T>(call: Promise<Result<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  throw await LiftoffError.fromResponse(response, error);
}

// A record's ETag, as If-Match takes it: from the record, its version or an ETag as it came.
export type IfMatch = { version: number } | number | string;
export function etagOf(match: IfMatch): string {
  if (typeof match === 'string') return match;
  return `"${typeof match === 'number' ? match : match.version}"`;
}

// A random Idempotency-Key (a UUID v4), also where crypto.randomUUID is not (insecure contexts).
export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// Two Liftoff-Consistency tokens as one: each cluster's later position. A token is a pg_lsn
// ("0/3000148", main's) or one per shard ("main:0/3000148;eu-1:0/9A0"); positions only grow, so
// answers that arrive out of order never move the client back. A token of another form is taken as
// it came.
export function mergeConsistency(current: string | undefined, received: string): string {
  if (current === undefined) return received;
  const parse = (token: string) => {
    const positions = new Map<string, bigint>();
    for (const part of token.split(';')) {
      const colon = part.indexOf(':');
      const [shard, lsn] = colon < 0 ? ['main', part] : [part.slice(0, colon), part.slice(colon + 1)];
      const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
      if (!match) return undefined;
      positions.set(shard, (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`));
    }
    return positions;
  };
  const a = parse(current);
  const b = parse(received);
  if (!a || !b) return received;
  for (const [shard, position] of b) if ((a.get(shard) ?? -1n) < position) a.set(shard, position);
  const lsn = (p: bigint) => `${(p >> 32n).toString(16).toUpperCase()}/${(p & 0xffffffffn).toString(16).toUpperCase()}`;
  if (a.size === 1 && a.has('main') && !received.includes(':')) return lsn(a.get('main')!);
  return Array.from(a, ([shard, p]) => `${shard}:${lsn(p)}`).join(';');
}

type Page = { next_cursor?: string | null };
type ItemOf<List> = List extends readonly (infer Item)[] ? Item : never;

export class Liftoff {
  // Every operation, typed: `await ok(liftoff.api.GET('/v1/orgs/{org}', {params: {path: {org}}}))`.
  readonly api: Client<paths>;
  readonly baseUrl: string;
  #token: string | undefined;
  #consistency: string | undefined;
  readonly #options: LiftoffOptions;
  readonly #fetch: (request: Request) => Promise<Response>;

  constructor(options: LiftoffOptions) {
    this.#options = options;
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
    // Bound late: a browser's fetch called off `window` throws.
    this.#fetch = options.fetch ?? ((request) => globalThis.fetch(request));
    const send = options.retry === false ? this.#fetch : retryingFetch(this.#fetch, options.retry);
    this.api = createClient<paths>({ baseUrl: this.baseUrl, fetch: send });
    this.api.use({
      onRequest: ({ request }) => {
        this.#prepare(request.headers);
        return request;
      },
      onResponse: ({ response }) => {
        this.#observe(response);
        return response;
      },
    });
  }

  get token(): string | undefined {
    return this.#token;
  }

  setToken(token: string | undefined): void {
    if (token === this.#token) return;
    this.#token = token;
    this.#options.onTokenChange?.(token);
  }

  // The position of this client's last write: its reads see that write (docs/api.md, "Consistency").
  get consistency(): string | undefined {
    return this.#consistency;
  }

  #prepare(headers: Headers): void {
    if (this.#token && !headers.has('Authorization')) headers.set('Authorization', `Bearer ${this.#token}`);
    if (this.#consistency && !headers.has('Liftoff-Consistency')) headers.set('Liftoff-Consistency', this.#consistency);
  }

  #observe(response: Response): void {
    const position = response.headers.get('Liftoff-Consistency');
    if (position) this.#consistency = mergeConsistency(this.#consistency, position);
  }

  // --- sessions -----------------------------------------------------------------------------------

  async signup(body: SignupBody): Promise<IssuedSession> {
    const session = await ok(this.api.POST('/v1/auth/signup', { body }));
    this.setToken(session.token);
    return session;
  }

  async login(body: LoginBody): Promise<IssuedSession> {
    const session = await ok(this.api.POST('/v1/auth/login', { body }));
    this.setToken(session.token);
    return session;
  }

  // Ends the session on the server and forgets its token (also when the server no longer knew it).
  async logout(): Promise<void> {
    try {
      await ok(this.api.POST('/v1/auth/logout'));
    } catch (error) {
      if (!(error instanceof LiftoffError && error.status === 401)) throw error;
    } finally {
      this.setToken(undefined);
    }
  }

  async me(): Promise<User> {
    return ok(this.api.GET('/v1/me'));
  }

  // A client acting with an organization's API key (lk_...), sharing this one's options.
  withToken(token: string): Liftoff {
    const { onTokenChange: _ignored, ...options } = this.#options;
    return new Liftoff({ ...options, token });
  }

  // --- lists --------------------------------------------------------------------------------------

  // Every page of a cursor-paginated list, following next_cursor until it is null:
  //   for await (const page of liftoff.pages((cursor) =>
  //       ok(liftoff.api.GET('/v1/orgs/{org}/members', {params: {path: {org}, query: {cursor}}}))))
  async *pages<P extends Page>(fetchPage: (cursor: string | undefined) => Promise<P>): AsyncGenerator<P, void, undefined> {
    let cursor: string | undefined;
    do {
      const page = await fetchPage(cursor);
      yield page;
      cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined);
  }

  // Every item of such a list: the pages' `key` arrays, in order.
  async *items<K extends string, P extends Page & { [key in K]?: readonly unknown[] }>(
    fetchPage: (cursor: string | undefined) => Promise<P>,
    key: K,
  ): AsyncGenerator<ItemOf<NonNullable<P[K]>>, void, undefined> {
    for await (const page of this.pages(fetchPage)) {
      yield* (page[key] ?? []) as Iterable<ItemOf<NonNullable<P[K]>>>;
    }
  }

  // --- records ------------------------------------------------------------------------------------

  records<T = Record<string, unknown>>(org: string, collection: string): Records<T> {
    return new Records<T>(this, org, collection);
  }

  // --- events -------------------------------------------------------------------------------------

  // A server-sent event stream of this API (path and query as the document has them), resumed
  // after each disconnection.
  stream(path: string, query: Record<string, string | undefined>, options: EventStreamOptions = {}) {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(name, value);
    return eventStream(async (headers, signal) => {
      this.#prepare(headers);
      const response = await this.#fetch(new Request(url, { headers, signal }));
      this.#observe(response);
      return response;
    }, options);
  }

  // The signed-in user's notifications as they are delivered, and the unread count as it changes.
  async *notifications(options: EventStreamOptions = {}): AsyncGenerator<NotificationEvent, void, undefined> {
    for await (const event of this.stream('/v1/me/notifications/events', {}, options)) {
      yield { ...JSON.parse(event.data), type: event.type, eventId: event.lastEventId } as NotificationEvent;
    }
  }
}

// `eventId` is the stream's position after the event (what a resumed stream starts after).
export type NotificationEvent = { eventId: string } & (
  | ({ type: 'notification' } & Notification)
  | { type: 'unread'; unread: number; seq: number }
  | { type: 'reset'; reason: string }
);

// `id` is the record's; `eventId` the stream's position after the event (the org's audit sequence).
export type RecordEvent<T> = { eventId: string } & (
  | { type: 'created'; id: string; record: LiftoffRecord<T> }
  | { type: 'updated'; id: string; record: LiftoffRecord<T>; previous: LiftoffRecord<T> }
  | { type: 'deleted'; id: string; previous: LiftoffRecord<T> }
  | { type: 'reset'; reason: string }
);

export interface ListQuery {
  filter?: string;
  q?: string;
  sort?: string;
  limit?: number;
  cursor?: string;
  fields?: string;
  count?: 'none' | 'exact' | 'estimate';
  expand?: string;
}

export interface RecordPage<T> {
  records: LiftoffRecord<T>[];
  next_cursor: string | null;
  count?: number;
}

export type BatchOperation<T> =
  | { op: 'create'; data: Partial<T> }
  | { op: 'update'; id: string; data: Partial<T>; if_match?: string }
  | { op: 'replace'; id: string; data: T; if_match?: string }
  | { op: 'delete'; id: string; if_match?: string };

export interface BatchResult<T> {
  status: number;
  id: string;
  version?: number;
  record?: LiftoffRecord<T>;
}

// One collection's records.
export class Records<T> {
  readonly #path: { org: string; collection: string };

  constructor(
    private readonly liftoff: Liftoff,
    readonly org: string,
    readonly collection: string,
  ) {
    this.#path = { org, collection };
  }

  // One page.
  async list(query: ListQuery = {}): Promise<RecordPage<T>> {
    const page = await ok(
      this.liftoff.api.GET('/v1/orgs/{org}/collections/{collection}/records', {
        params: { path: this.#path, query },
      }),
    );
    return page as RecordPage<T>;
  }

  // Every record the query selects, page after page.
  all(query: Omit<ListQuery, 'cursor'> = {}): AsyncGenerator<LiftoffRecord<T>, void, undefined> {
    return this.liftoff.items<'records', RecordPage<T>>((cursor) => this.list({ ...query, cursor }), 'records');
  }

  async get(id: string, options: { expand?: string } = {}): Promise<LiftoffRecord<T>> {
    const query = options.expand ? { expand: options.expand } : {};
    const record = await ok(
      this.liftoff.api.GET('/v1/orgs/{org}/collections/{collection}/records/{id}', {
        params: { path: { ...this.#path, id }, query },
      }),
    );
    return record as LiftoffRecord<T>;
  }

  // Created once however often it is retried: every create carries an Idempotency-Key (a new one
  // unless given), which is what lets a 503 be retried.
  async create(data: T, options: { idempotencyKey?: string } = {}): Promise<LiftoffRecord<T>> {
    const record = await ok(
      this.liftoff.api.POST('/v1/orgs/{org}/collections/{collection}/records', {
        params: { path: this.#path },
        headers: { 'Idempotency-Key': options.idempotencyKey ?? newIdempotencyKey() },
        body: data as Record<string, unknown>,
      }),
    );
    return record as LiftoffRecord<T>;
  }

  // Changes the given fields (null removes one); with ifMatch, only if the record is still at that
  // version (else a LiftoffError with status 412).
  async update(id: string, data: Partial<T>, options: { ifMatch?: IfMatch } = {}): Promise<LiftoffRecord<T>> {
    const record = await ok(
      this.liftoff.api.PATCH('/v1/orgs/{org}/collections/{collection}/records/{id}', {
        params: { path: { ...this.#path, id } },
        headers: ifMatchHeader(options.ifMatch),
        body: data as Record<string, unknown>,
      }),
    );
    return record as LiftoffRecord<T>;
  }

  async replace(id: string, data: T, options: { ifMatch?: IfMatch } = {}): Promise<LiftoffRecord<T>> {
    const record = await ok(
      this.liftoff.api.PUT('/v1/orgs/{org}/collections/{collection}/records/{id}', {
        params: { path: { ...this.#path, id } },
        headers: ifMatchHeader(options.ifMatch),
        body: data as Record<string, unknown>,
      }),
    );
    return record as LiftoffRecord<T>;
  }

  async delete(id: string, options: { ifMatch?: IfMatch } = {}): Promise<void> {
    await ok(
      this.liftoff.api.DELETE('/v1/orgs/{org}/collections/{collection}/records/{id}', {
        params: { path: { ...this.#path, id } },
        headers: ifMatchHeader(options.ifMatch),
      }),
    );
  }

  // Every operation in order in one transaction: all applied, or none (a LiftoffError naming the
  // item, e.g. operations[3].title).
  async batch(operations: BatchOperation<T>[], options: { representation?: boolean } = {}): Promise<BatchResult<T>[]> {
    const answer = await ok(
      this.liftoff.api.POST('/v1/orgs/{org}/collections/{collection}/records:batch', {
        params: { path: this.#path },
        headers: options.representation ? { Prefer: 'return=representation' } : {},
        body: { operations } as never,
      }),
    );
    return (answer as { results: BatchResult<T>[] }).results;
  }

  // The collection's changes as they commit, from now (or after `lastEventId`), resumed after every
  // disconnection without losing or repeating one; a `reset` says the position was too old to
  // resume from: reload the list.
  async *events(options: EventStreamOptions & { filter?: string } = {}): AsyncGenerator<RecordEvent<T>, void, undefined> {
    const { filter, ...streamOptions } = options;
    const path = `/v1/orgs/${encodeURIComponent(this.org)}/collections/${encodeURIComponent(this.collection)}/events`;
    for await (const event of this.liftoff.stream(path, { filter }, streamOptions)) {
      yield { ...JSON.parse(event.data), type: event.type, eventId: event.lastEventId } as RecordEvent<T>;
    }
  }
}

function ifMatchHeader(match: IfMatch | undefined): Record<string, string> {
  return match === undefined ? {} : { 'If-Match': etagOf(match) };
}

export type { FetchResponse };
