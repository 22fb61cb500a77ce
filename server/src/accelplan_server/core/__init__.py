"""The planning core: plain Python, no gRPC or protobuf imports.

Every function here takes and returns plain values and dataclasses, so the
calculations can be tested directly and reused by any transport.
"""
