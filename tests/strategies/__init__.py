"""Random inputs: domain-aware samplers for every loss (:data:`samplers.SAMPLERS`), their draws,
the registry-driven junk requests, and the JSON reader's Hypothesis strategies."""
