"""Members of an object that is not the top-level one, found on demand.

The scan records only the top-level object's members. For a closed-key check of a nested
object (a loss's ``params``), :func:`key_starts` lists where its keys start, in two passes (count,
then fill) so the list is allocated at its exact size.
"""

import numpy as np

from service.api.jsonread.skipping import skip_value
from service.api.jsonread.text import skip_whitespace, string_end
from service.kernels.jit import kernel


@kernel
def _object_keys(data, start, out):
    count = 0
    position = skip_whitespace(data, start + 1)
    if data[position] == 125:
        return 0
    while True:
        if out.size > 0:
            out[count] = position
        count += 1
        position = skip_whitespace(data, string_end(data, position))  # the colon
        position = skip_whitespace(data, position + 1)
        position, _ = skip_value(data, position)
        position = skip_whitespace(data, position)
        if data[position] == 125:
            return count
        position = skip_whitespace(data, position + 1)


@kernel
def key_starts(data, start):
    """Positions of the keys of the (validated) object at ``start``, in order."""
    count = _object_keys(data, start, np.empty(0, np.int64))
    out = np.empty(count, np.int64)
    _object_keys(data, start, out)
    return out
