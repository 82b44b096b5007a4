-- pgfanout example: a dozen sample people around Berkeley and the San Francisco Bay, where the
-- seed's demo put its first person. Apply after schema.sql (and seed_trigger.sql, if you want
-- their arrival announced). Idempotent: a name already present is not added again.

INSERT INTO public.person (name, loc)
SELECT v.name, ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326)::geography
  FROM (VALUES
    ('Mischa',   -122.258740, 37.875565),   -- UC Berkeley campus (the seed's person)
    ('Ada',      -122.268460, 37.871590),   -- downtown Berkeley
    ('Grace',    -122.271110, 37.804363),   -- downtown Oakland
    ('Linus',    -122.419420, 37.774930),   -- San Francisco, Civic Center
    ('Barbara',  -122.478255, 37.819929),   -- Golden Gate Bridge
    ('Edsger',   -122.409530, 37.808673),   -- Fisherman's Wharf
    ('Margaret', -122.272747, 37.871853),   -- Berkeley BART
    ('Dennis',   -122.239500, 37.765200),   -- Alameda
    ('Ken',      -122.353000, 37.935800),   -- Richmond
    ('Frances',  -122.122300, 37.897900),   -- Orinda
    ('Radia',    -122.500000, 37.973500),   -- San Rafael
    ('Niklaus',  -122.271100, 37.530000)    -- San Mateo
  ) AS v (name, lon, lat)
 WHERE NOT EXISTS (SELECT 1 FROM public.person p WHERE p.name = v.name);
