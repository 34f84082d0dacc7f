"""The protocol layer: adapters (``v1`` JSON, ``v2`` Open Inference Protocol), the route
table, problems, OpenAPI, and the HTTP machinery in front of them (connections, bodies, JSON)."""
