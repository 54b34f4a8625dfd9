"""numpy + stdlib, imported by every environment: checkpoint metadata, observations, variants, the
artifact format, the content-addressed store, settings, code and machine identity."""
