"""The catalog: every model modelyard knows, discovered or curated, with the user's overrides."""
