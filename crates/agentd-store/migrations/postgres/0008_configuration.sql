-- An agent's configuration: its environment (a JSON object of strings, non-secret) and
-- the JSON Schemas of its input and output, which win over the manifest's when set.
ALTER TABLE agents ADD COLUMN env TEXT NOT NULL DEFAULT '{}';
ALTER TABLE agents ADD COLUMN input_schema TEXT;
ALTER TABLE agents ADD COLUMN output_schema TEXT;
-- The environment a run gets, resolved when the invocation is accepted (manifest, agent,
-- invoke), so every attempt and retry of it runs with the same one.
ALTER TABLE invocations ADD COLUMN env TEXT NOT NULL DEFAULT '{}';
