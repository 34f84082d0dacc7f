"""The validation stages: structure (Pydantic), shape contracts, domain checks, and the one
error hierarchy every stage raises."""
