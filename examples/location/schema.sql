-- pgfanout example: the location feed of the seed demo (people moving on a map).
--
-- The table is the seed's, unchanged, so the seed's demo works as it was:
--   CREATE EXTENSION postgis;
--   CREATE TABLE person (id serial PRIMARY KEY, name TEXT, loc GEOGRAPHY(POINT, 4326));
--
-- Idempotent: apply it as often as you like. The notification trigger is separate:
-- seed_trigger.sql is the seed's hand-written one; the daemon can install a generated one with
-- pgfanout.watch('public.person', ...) instead. people.sql adds sample people.

BEGIN;

CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE IF NOT EXISTS public.person (
  id   serial PRIMARY KEY,
  name TEXT,
  loc  GEOGRAPHY(POINT, 4326)
);

-- Not in the seed: lets a map page ask "who is inside this box / near this point" cheaply.
CREATE INDEX IF NOT EXISTS person_loc_idx ON public.person USING gist (loc);

COMMENT ON TABLE public.person IS 'pgfanout location example: a person and where they are (WGS 84 point).';

COMMIT;
