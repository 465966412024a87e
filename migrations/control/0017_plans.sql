-- Each organization's plan (a name from the catalogue in src/liftoff/plans/plans.cpp) and its
-- contract's overrides of that plan's limits (Enterprise: limit name -> value). New orgs start on
-- 'free'. Adding columns with constant defaults rewrites nothing.
ALTER TABLE orgs ADD COLUMN plan text NOT NULL DEFAULT 'free',
                 ADD COLUMN plan_limits jsonb NOT NULL DEFAULT '{}'
                   CONSTRAINT orgs_plan_limits_object CHECK (jsonb_typeof(plan_limits) = 'object');
