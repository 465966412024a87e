-- Suspended organizations (docs/decisions/0025-operators-console.md): a platform operator's stop on
-- an organization's API access, with the operator's reason (shown to operators, never to the org).
-- NULL: not suspended. Control plane; columns without defaults rewrite nothing.
ALTER TABLE orgs ADD COLUMN suspended_at timestamptz,
                 ADD COLUMN suspended_reason text;
