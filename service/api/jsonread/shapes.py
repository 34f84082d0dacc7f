"""Shapes of the arrays the scan passes, so a large numeric array needs no second walk.

While :func:`.scanner.scan` reads the body, every open array keeps how many entries it has
and whether they are all numbers or all arrays of one shape (``mode``), and the shape of its
first entry. When an array closes it knows whether NumPy would make a numeric array of it
(rectangular, numbers only, at most ``MAX_DIMENSIONS`` dimensions) and its shape. Arrays that
do, that are large (``RECORD_BYTES`` of text or more, by default) and shallow (``RECORD_DEPTH``: the
top-level values, their entries and their entries' entries), are recorded as a row
``END, DIMENSIONS, shape...``; rows come in order of their end, the key
:class:`~service.api.jsonread.json_array.JsonArray` looks them up by. Any other array is walked
on demand by :func:`.arrays.analyze`, which also explains the arrays that do not convert.

State is per nesting level, ``levels[level, column]``: the columns below, then the first
entry's shape.
"""

from service.kernels.jit import kernel

MAX_DIMENSIONS = 32
RECORD_BYTES = 4096
RECORD_DEPTH = 4  # levels below the top-level object: its values are at level 1
# modes
EMPTY, NUMBERS, ARRAYS, NEITHER = 0, 1, 2, 3
# columns of ``levels``
ENTRIES, MODE, OPENED_AT, ENTRY_DIMENSIONS, ENTRY_SHAPE = 0, 1, 2, 3, 4
LEVEL_COLUMNS = ENTRY_SHAPE + MAX_DIMENSIONS
# columns of a record
END, DIMENSIONS, SHAPE = 0, 1, 2
RECORD_COLUMNS = SHAPE + MAX_DIMENSIONS


def record_capacity(size: int, record_bytes: int) -> int:
    """At most ``size / record_bytes`` disjoint large arrays per level (an array takes two
    bytes at least), on levels 1 to ``RECORD_DEPTH``."""
    return RECORD_DEPTH * (size // max(record_bytes, 2) + 1)


@kernel
def open_array(levels, level, position):
    levels[level, ENTRIES] = 0
    levels[level, MODE] = EMPTY
    levels[level, OPENED_AT] = position


@kernel
def add_entries(levels, level, count, numbers):
    """``count`` more entries in the array at ``level``: numbers, or something else."""
    levels[level, ENTRIES] += count
    mode = levels[level, MODE]
    if numbers and mode in (EMPTY, NUMBERS):
        levels[level, MODE] = NUMBERS
    else:
        levels[level, MODE] = NEITHER


@kernel
def close_array(levels, level, position, parent_is_array, records, record_count, record_bytes):
    """The array at ``level`` ends at ``position``: record it if it converts and is large
    and shallow, and tell its parent array its shape. Returns the new record count."""
    mode = levels[level, MODE]
    dimensions = 1 + levels[level, ENTRY_DIMENSIONS] if mode == ARRAYS else 1
    converts = mode != NEITHER and dimensions <= MAX_DIMENSIONS
    large = position - levels[level, OPENED_AT] >= record_bytes
    room = record_count < records.shape[0]  # always, by record_capacity; never write past it
    if converts and large and 1 <= level <= RECORD_DEPTH and room:
        records[record_count, END] = position
        records[record_count, DIMENSIONS] = dimensions
        records[record_count, SHAPE] = levels[level, ENTRIES]
        for axis in range(1, dimensions):
            records[record_count, SHAPE + axis] = levels[level, ENTRY_SHAPE + axis - 1]
        record_count += 1
    if not parent_is_array:
        return record_count
    parent = level - 1
    parent_mode = levels[parent, MODE]
    if parent_mode == NEITHER:
        return record_count
    if not converts:
        levels[parent, MODE] = NEITHER
        return record_count
    if levels[parent, ENTRIES] == 1:  # the first entry: its shape is the one to match
        levels[parent, ENTRY_DIMENSIONS] = dimensions
        levels[parent, ENTRY_SHAPE] = levels[level, ENTRIES]
        for axis in range(1, dimensions):
            levels[parent, ENTRY_SHAPE + axis] = levels[level, ENTRY_SHAPE + axis - 1]
        return record_count
    same = levels[parent, ENTRY_DIMENSIONS] == dimensions
    same = same and levels[parent, ENTRY_SHAPE] == levels[level, ENTRIES]
    for axis in range(1, dimensions):
        if not same:
            break
        same = levels[parent, ENTRY_SHAPE + axis] == levels[level, ENTRY_SHAPE + axis - 1]
    if not same:
        levels[parent, MODE] = NEITHER
    return record_count


@kernel
def add_array_entry(levels, level):
    """An array opens inside the array at ``level``."""
    levels[level, ENTRIES] += 1
    mode = levels[level, MODE]
    levels[level, MODE] = ARRAYS if mode in (EMPTY, ARRAYS) else NEITHER
