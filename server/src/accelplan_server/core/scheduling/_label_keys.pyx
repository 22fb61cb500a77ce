# cython: language_level=3, boundscheck=False, wraparound=False
"""``LabelTable.shapes``'s per-node loop compiled: each node's shape key, looked up among shapes read before.

The plain path is ``labels._key`` and ``LabelTable.plain_shapes``; tests/unit/test_compiled.py holds
this one to it. Nodes it does not key (labels that are not a ``dict``, MIG labels, whose key reads
every label) and keys not seen before come back as ``missed`` positions for the plain path.
Per node: the few dictionary lookups ``_key`` makes, one tuple, one lookup of it: no bytecode.
"""

from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject


cdef inline object _get(dict d, object key):
    cdef PyObject* found = PyDict_GetItem(d, key)
    if found is NULL:
        return None
    return <object>found


def shapes(list many, dict seen, tuple names):
    """(each node's shape from ``seen`` or None, the positions left None).

    ``names`` are ``labels.KEYS``, in that order; keys are built as ``labels._key`` builds them.
    """
    cdef object AP_SKU, AP_COUNT, AP_MEMORY, AP_INTERCONNECT, NV_PRODUCT, NV_COUNT, NV_MEMORY, NV_FAMILY
    cdef object NV_CLIQUE, NV_MIG, AMD_ID, AMD_PRODUCT, AMD_VRAM, TPU, TPU_TOPOLOGY, GKE, INSTANCE
    (AP_SKU, AP_COUNT, AP_MEMORY, AP_INTERCONNECT, NV_PRODUCT, NV_COUNT, NV_MEMORY, NV_FAMILY,
     NV_CLIQUE, NV_MIG, AMD_ID, AMD_PRODUCT, AMD_VRAM, TPU, TPU_TOPOLOGY, GKE, INSTANCE) = names
    cdef Py_ssize_t i, n = len(many)
    cdef list out = [None] * n
    cdef list missed = []
    cdef object labels, key, value, sku
    cdef dict d
    cdef PyObject* found
    for i in range(n):
        labels = many[i]
        if type(labels) is not dict:
            missed.append(i)
            continue
        d = <dict>labels
        value = _get(d, NV_PRODUCT)
        sku = _get(d, AP_SKU)
        if _get(d, NV_MIG) is not None:
            missed.append(i)
            continue
        if value is not None and sku is None:
            key = (NV_PRODUCT, value, _get(d, NV_COUNT), _get(d, NV_MEMORY), _get(d, NV_FAMILY), _get(d, NV_CLIQUE))
        elif sku is not None:
            key = (AP_SKU, sku, _get(d, AP_COUNT), _get(d, AP_MEMORY), _get(d, AP_INTERCONNECT))
        else:
            value = _get(d, AMD_ID)
            if value is not None or _get(d, AMD_PRODUCT) is not None:
                key = (AMD_ID, value, _get(d, AMD_PRODUCT), _get(d, AMD_VRAM), _get(d, AP_COUNT))
            else:
                value = _get(d, TPU)
                if value is not None:
                    key = (TPU, value, _get(d, TPU_TOPOLOGY), _get(d, AP_COUNT))
                else:
                    value = _get(d, GKE)
                    if value is not None:
                        key = (GKE, value, _get(d, INSTANCE), _get(d, AP_COUNT))
                    else:
                        key = (INSTANCE, _get(d, INSTANCE))
        found = PyDict_GetItem(seen, key)
        if found is NULL:
            missed.append(i)
        else:
            out[i] = <object>found
    return out, missed
