# cython: language_level=3, boundscheck=False, wraparound=False
"""``rank.plain_order`` compiled: request positions ordered by their group's sort value, in one counting sort.

The plain path is ``rank.plain_order`` (a stable ``sorted`` with a key per position);
tests/unit/test_compiled.py holds this one to it. Sort values are small integers (100 - score,
or ``rank.INFEASIBLE``), so positions are counted into one slot per value and laid out in request
order within each: stable, as the plain sort is, and no call per position.
"""

from cpython.dict cimport PyDict_GetItem
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport PyObject
from libc.string cimport memset

cdef enum:
    SLOTS = 1024  # sort values must be below this (rank.INFEASIBLE is 1000)


def order(keys, dict sort_value, Py_ssize_t infeasible):
    """(positions of ``keys`` by ``sort_value[key]``, ties in request order; how many values are not ``infeasible``)."""
    cdef list key_list = keys if type(keys) is list else list(keys)
    cdef Py_ssize_t n = len(key_list), i, v, start, feasible = 0
    cdef Py_ssize_t counts[SLOTS]
    cdef Py_ssize_t* values = <Py_ssize_t*>PyMem_Malloc(max(n, 1) * sizeof(Py_ssize_t))
    cdef PyObject* found
    if values is NULL:
        raise MemoryError()
    try:
        memset(counts, 0, sizeof(counts))
        for i in range(n):
            found = PyDict_GetItem(sort_value, key_list[i])
            if found is NULL:
                raise KeyError(key_list[i])
            v = <object>found
            if v < 0 or v >= SLOTS:
                raise ValueError(f"sort value {v} outside 0..{SLOTS - 1}")
            values[i] = v
            counts[v] += 1
            if v != infeasible:
                feasible += 1
        start = 0
        for v in range(SLOTS):
            start, counts[v] = start + counts[v], start
        out = [None] * n
        for i in range(n):
            v = values[i]
            out[counts[v]] = i
            counts[v] += 1
        return out, feasible
    finally:
        PyMem_Free(values)
