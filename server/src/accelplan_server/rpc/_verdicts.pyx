# cython: language_level=3, boundscheck=False, wraparound=False
"""``rank_wire.encode_verdicts`` compiled: RankNodesResponse.verdicts written in one buffer.

The plain path is ``rank_wire.plain_encode_verdicts``; tests/unit/test_compiled.py holds this one
to it. Per node: its name field and its group's verdict tail copied after a tag and a length.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject
from libc.string cimport memcpy

cdef enum:
    VERDICTS_TAG = 0x0A  # RankNodesResponse.verdicts: field 1, length-delimited


cdef inline Py_ssize_t _varint_size(Py_ssize_t n):
    cdef Py_ssize_t size = 1
    while n > 0x7F:
        n >>= 7
        size += 1
    return size


cdef inline char* _put_varint(char* p, Py_ssize_t n):
    while n > 0x7F:
        p[0] = <char>((n & 0x7F) | 0x80)
        p += 1
        n >>= 7
    p[0] = <char>n
    return p + 1


def encode_verdicts(order, keys, heads, dict tail_of):
    """The verdicts of the request positions in ``order`` (see ``rank_wire.plain_encode_verdicts``)."""
    cdef list positions = order if type(order) is list else list(order)
    cdef list key_list = keys if type(keys) is list else list(keys)
    cdef list head_list = heads if type(heads) is list else list(heads)
    cdef Py_ssize_t n = len(positions), nk = len(key_list), nh = len(head_list)
    cdef Py_ssize_t i, pos, body, total = 0
    cdef list picked_heads = [None] * n
    cdef list picked_tails = [None] * n
    cdef object head, tail
    cdef PyObject* found
    for i in range(n):
        pos = positions[i]
        if pos < 0 or pos >= nk or pos >= nh:
            raise IndexError(f"position {pos} outside the request's {min(nk, nh)} nodes")
        head = head_list[pos]
        found = PyDict_GetItem(tail_of, key_list[pos])
        if found is NULL:
            raise KeyError(key_list[pos])
        tail = <object>found
        if type(head) is not bytes or type(tail) is not bytes:
            raise TypeError("name fields and verdict tails must be bytes")
        picked_heads[i] = head
        picked_tails[i] = tail
        body = PyBytes_GET_SIZE(head) + PyBytes_GET_SIZE(tail)
        total += 1 + _varint_size(body) + body
    out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* p = PyBytes_AS_STRING(out)
    cdef Py_ssize_t head_size, tail_size
    for i in range(n):
        head = picked_heads[i]
        tail = picked_tails[i]
        head_size = PyBytes_GET_SIZE(head)
        tail_size = PyBytes_GET_SIZE(tail)
        p[0] = VERDICTS_TAG
        p = _put_varint(p + 1, head_size + tail_size)
        memcpy(p, PyBytes_AS_STRING(head), head_size)
        p += head_size
        memcpy(p, PyBytes_AS_STRING(tail), tail_size)
        p += tail_size
    return out
