-- Removes the daily_traces cells refresh_derived.sql left without traces, so that the rollups
-- hold exactly the rows a rebuild from the base tables gives (which has no row for an empty
-- cell). Still empty is checked again: a concurrent writer may have filled the cell since.
--
-- $1 text[]   project_id   }
-- $2 text[]   environment  }  one element per cell, as refresh_derived.sql returned it
-- $3 date[]   day          }
-- $4 jsonb[]  dims         }
DELETE FROM daily_traces d
USING unnest($1::text[], $2::text[], $3::date[], $4::jsonb[]) AS z(project_id, environment, day,
                                                                  dims)
WHERE d.project_id = z.project_id AND d.environment = z.environment AND d.day = z.day
  AND d.dims = z.dims AND d.count_traces = 0
