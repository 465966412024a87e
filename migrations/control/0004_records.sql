-- Records: the product's own business objects in tenant-scoped collections.
-- Storage design: docs/decisions/0003-records-storage.md. One table for every tenant's records,
-- with the record as jsonb plus a fixed set of generic typed "slot" columns: each indexed field of
-- a collection is assigned a slot of its type, and the shared slot indexes lead with
-- collection_id. Many small tenants add rows, never tables or indexes.

CREATE TABLE collections (
  id         uuid PRIMARY KEY,
  org_id     uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  name       text NOT NULL,
  fields     jsonb NOT NULL,  -- the schema: [{name, type, required, unique, indexed, slot, ...}]
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX collections_org_name_key ON collections (org_id, name);

CREATE TABLE records (
  collection_id uuid NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  id            uuid NOT NULL,
  org_id        uuid NOT NULL,
  version       bigint NOT NULL DEFAULT 1,
  data          jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  -- Slots: the values of indexed fields (text, enum, boolean -> t; integer, number -> n;
  -- datetime -> d) and of unique fields (u, their canonical text).
  t1 text, t2 text, t3 text,
  n1 numeric, n2 numeric,
  d1 timestamptz, d2 timestamptz,
  u1 text, u2 text,
  PRIMARY KEY (collection_id, id)
);
CREATE INDEX records_t1_idx ON records (collection_id, t1, id);
CREATE INDEX records_t2_idx ON records (collection_id, t2, id);
CREATE INDEX records_t3_idx ON records (collection_id, t3, id);
CREATE INDEX records_n1_idx ON records (collection_id, n1, id);
CREATE INDEX records_n2_idx ON records (collection_id, n2, id);
CREATE INDEX records_d1_idx ON records (collection_id, d1, id);
CREATE INDEX records_d2_idx ON records (collection_id, d2, id);
CREATE UNIQUE INDEX records_u1_key ON records (collection_id, u1) WHERE u1 IS NOT NULL;
CREATE UNIQUE INDEX records_u2_key ON records (collection_id, u2) WHERE u2 IS NOT NULL;

-- A retried POST with the same Idempotency-Key gets the first response (kept 24 h).
CREATE TABLE idempotency_keys (
  org_id      uuid NOT NULL,
  key         text NOT NULL,
  scope       text NOT NULL,  -- method and route the key was first used with
  request_hash bytea NOT NULL, -- SHA-256 of the request body: a different body with the key is a 422
  status      integer NOT NULL,
  body        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
