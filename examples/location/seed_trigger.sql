-- pgfanout example: the seed's hand-written notification trigger for public.person, kept as it
-- was so that the seed's demo and its listeners work unchanged. Apply after schema.sql.
--
-- On every INSERT or UPDATE of a person it sends, on channel "person_updated":
--   {"id": 1, "loc": {"type":"Point","coordinates":[-122.258740468,37.875565219]}}
--
-- Its flaws, left in on purpose (this file documents what the seed did; pgfanout.watch() is the
-- generated replacement that has none of them):
--   * A person without a location (loc IS NULL) makes the whole string NULL, because
--     text || NULL is NULL; pg_notify() then sends an EMPTY payload. A listener receives a
--     notification that names nobody. (Use concat() or json_build_object() to avoid it.)
--   * The JSON is glued together from strings, so nothing guarantees it is valid JSON.
--   * ST_AsGeoJSON is called unqualified: a session whose search_path lacks PostGIS's schema
--     cannot insert or update people at all, because the trigger fails.
--   * Every UPDATE notifies, also one that changes only the name or nothing at all, and the
--     name itself is never sent.
-- Idempotent: CREATE OR REPLACE for both the function and the trigger.

CREATE OR REPLACE FUNCTION update_person_table() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('person_updated',
                    '{"id": ' || CAST(NEW.id AS text)
                    || ', "loc": ' || ST_AsGeoJSON(NEW.loc)
                    || '}');
  RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER person_update_notify
  AFTER UPDATE OR INSERT ON person
  FOR EACH ROW EXECUTE FUNCTION update_person_table();
