-- Removes the daily_models cells refresh_derived.sql left without traces (see
-- drop_empty_daily_traces.sql).
--
-- $1 text[]   project_id   }
-- $2 text[]   environment  }
-- $3 date[]   day          }  one element per cell, as refresh_derived.sql returned it
-- $4 jsonb[]  dims         }
-- $5 text[]   model        }
DELETE FROM daily_models d
USING unnest($1::text[], $2::text[], $3::date[], $4::jsonb[], $5::text[])
      AS z(project_id, environment, day, dims, model)
WHERE d.project_id = z.project_id AND d.environment = z.environment AND d.day = z.day
  AND d.dims = z.dims AND d.model = z.model AND d.count_traces = 0
