// Compile-time checks (tsc -p test/tsconfig.json, part of `npm run build`): the client's types come
// from docs/openapi.json, so a path, parameter or body the document does not have is an error.
import { Liftoff, ok, type LiftoffRecord } from '../src/index.js';

interface Ticket {
  title: string;
  status?: 'open' | 'closed';
  priority?: number;
}

export async function typed(liftoff: Liftoff, org: string): Promise<void> {
  const me = await liftoff.me();
  const email: string = me.email;
  void email;

  const orgAnswer = await ok(liftoff.api.GET('/v1/orgs/{org}', { params: { path: { org } } }));
  const name: string = orgAnswer.name;
  void name;

  // @ts-expect-error: no such path
  void liftoff.api.GET('/v1/organisations/{org}', { params: { path: { org } } });
  // @ts-expect-error: the path parameter is required
  void liftoff.api.GET('/v1/orgs/{org}', {});
  // @ts-expect-error: a role the document does not have
  void liftoff.api.POST('/v1/orgs/{org}/api-keys', { params: { path: { org } }, body: { name: 'k', role: 'owner' } });
  // @ts-expect-error: count is none, exact or estimate
  void liftoff.api.GET('/v1/orgs/{org}/collections/{collection}/records', { params: { path: { org, collection: 'c' }, query: { count: 'all' } } });

  const tickets = liftoff.records<Ticket>(org, 'tickets');
  const created: LiftoffRecord<Ticket> = await tickets.create({ title: 'typed', status: 'open' });
  // @ts-expect-error: not a Ticket field value
  await tickets.create({ title: 'x', status: 'pending' });
  await tickets.update(created.id, { priority: 2 }, { ifMatch: created });
  for await (const record of tickets.all({ filter: "status = 'open'" })) {
    const title: string = record.data.title;
    void title;
  }
  for await (const event of tickets.events()) {
    if (event.type === 'updated') {
      const before: number = event.previous.version;
      void before;
    }
    // @ts-expect-error: a deleted event has no record, only previous
    if (event.type === 'deleted') void event.record;
  }
  for await (const member of liftoff.items(
    (cursor) => ok(liftoff.api.GET('/v1/orgs/{org}/members', { params: { path: { org }, query: { cursor } } })),
    'members',
  )) {
    const role: 'owner' | 'admin' | 'member' | 'viewer' = member.role;
    void role;
  }
}
