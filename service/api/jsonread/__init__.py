"""A JSON reader for request bodies: one validating pass in numba, values built on demand.

    document = read(body)                 # MalformedBody / StructureError as codec's decode
    document.keys()                       # top-level keys, first-occurrence order
    document.unknown_keys(allowed)        # closed-key check in bounded memory
    document.value("predictions", arrays={()}).to_array("predictions")

Python layer (the API; turns the kernels' status codes into the service's errors):
:mod:`.document` (``read``, ``Document``, the memory budget and the differences from
``codec.decode_json_object``), :mod:`.json_array` (``JsonArray``), :mod:`.build` (Python values
from tokens), :mod:`.status` (messages), :mod:`.warming` (``warm``).

Kernels (numba, no GIL, never raise on user input): :mod:`.scanner` (the validating pass),
:mod:`.text` (whitespace, strings, UTF-8), :mod:`.numbers` (number tokens) with
:mod:`.eisel_lemire` and :mod:`.decimal_fallback` (decimal -> double) and :mod:`.powers`
(their tables), :mod:`.shapes` (array shapes seen by the scan), :mod:`.arrays` (one array's
shape or first problem), :mod:`.walk` and :mod:`.costs` (building plan and its memory),
:mod:`.keys` and :mod:`.objects` (object keys), :mod:`.skipping`, :mod:`.bits`, :mod:`.jit`.
"""

from pathlib import Path

from service.api.jsonread.document import BUILD_FACTOR, BUILD_SLACK, Document, read
from service.api.jsonread.json_array import JsonArray
from service.api.jsonread.warming import warm
from service.kernels import cache

# The reader's kernels call each other across modules: their cached machine code is checked
# against these sources before any is called (service/kernels/cache.py).
cache.refresh(Path(__file__).parent, __name__ + ".", "jsonread")

__all__ = ["BUILD_FACTOR", "BUILD_SLACK", "Document", "JsonArray", "read", "warm"]
