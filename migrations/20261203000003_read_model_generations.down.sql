-- Forgets the generations and the record of rebuilds. The live tables stay in `public`
-- whatever generation they were; retired generations keep their `rm_g<n>` schemas (drop
-- them with `DROP SCHEMA rm_g<n> CASCADE` once they are not wanted), and Redis documents
-- of a key space other than 1 expire with their TTL.
ALTER TABLE projection_rebuilds RENAME TO projection_rebuilds_archived;
ALTER TABLE read_model_generations RENAME TO read_model_generations_archived;
