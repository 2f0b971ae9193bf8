-- Token sums in the usage rollups as NUMERIC. Each observation's counts are bounded at ingest
-- (10^12), but a rollup cell adds up an unbounded number of them: in BIGINT a day of a busy model
-- could overflow (SQLSTATE 22003) and make every later observation of that cell unwritable.
-- NUMERIC cannot overflow here; the read path renders its value as a JSON number.
ALTER TABLE trace_model_usage
  ALTER COLUMN input_usage  TYPE NUMERIC,
  ALTER COLUMN output_usage TYPE NUMERIC,
  ALTER COLUMN total_usage  TYPE NUMERIC;
ALTER TABLE daily_models
  ALTER COLUMN input_usage  TYPE NUMERIC,
  ALTER COLUMN output_usage TYPE NUMERIC,
  ALTER COLUMN total_usage  TYPE NUMERIC;
