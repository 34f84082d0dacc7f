"""Connection guards in front of the ASGI app: ``protocol`` (uvicorn's httptools protocol with
bounded headers and a header deadline) and ``bound`` (the bound on open connections per worker
and which connection is closed to make room)."""
