-- Foundation: facts about this Liftoff installation.
CREATE TABLE liftoff_installation (
  id          boolean PRIMARY KEY DEFAULT true CHECK (id),  -- exactly one row
  installed_at timestamptz NOT NULL DEFAULT now(),
  install_id  uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO liftoff_installation DEFAULT VALUES;
