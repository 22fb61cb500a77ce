"""Caps on what one request may ask for, so every request's work is bounded."""

MAX_PARAMETER_COUNT = 10**18
"""Largest parameter count accepted: a million times today's largest models, and small
enough that every byte count the service derives stays below 2**64."""
MAX_FLEET_ACCELERATORS = 4096
"""Most accelerators in one fleet."""
MAX_FLEET_INTERCONNECTS = 64
"""Most interconnect entries in one fleet."""
MAX_STRING_LENGTH = 256
"""Longest free-text or id string accepted."""
MAX_MEMORY_BYTES = 1 << 50
"""Largest memory_bytes accepted for one device (1 PiB)."""
MAX_BANDWIDTH_GBPS = 1e6
"""Largest bandwidth accepted, in GB/s (1 PB/s)."""
MAX_TPU_CHIPS = 65536
"""Most TPU chips in one device entry."""
MAX_FLEET_TPU_CHIPS = 16384
"""Most TPU chips in one fleet, all devices together (a tensor-parallel plan has one shard per chip)."""
MAX_TERAFLOPS = 1e6
"""Largest peak accepted, in teraFLOPS."""
MAX_CONFIG_JSON_CHARS = 65536
"""Longest hf_config_json accepted."""
MAX_CONTEXT_LENGTH = 1 << 24
"""Longest context accepted, in tokens (16M)."""
MAX_BATCH_SIZE = 1 << 20
"""Most concurrent sequences accepted."""
MAX_PARALLEL_DEGREE = 4096
"""Largest tensor- or pipeline-parallel degree accepted."""
MAX_GROUP_SIZE = 1 << 16
"""Largest quantization group accepted."""
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
"""Largest response sent: what gRPC clients accept by default (grpc.max_receive_message_length)."""
MAX_PAGE_BYTES = MAX_RESPONSE_BYTES - 64 * 1024
"""A page of a list RPC ends before its items pass this (room for the rest of the response)."""
DEFAULT_PAGE_SIZE_MODELS = 50
MAX_PAGE_SIZE_MODELS = 1000
DEFAULT_PAGE_SIZE_INSTANCES = 10
MAX_PAGE_SIZE_INSTANCES = 100
MAX_RANK_NODES = 10_000
"""Most nodes in one RankNodes request."""
MAX_NODE_LABELS = 512
"""Most labels on one node (Kubernetes nodes carry 20-100)."""
MAX_PRICE_PER_HOUR_USD = 1e6
"""Largest node price accepted, in US dollars per hour."""
MAX_SLO_VALUE = 1e9
"""Largest decode-speed or latency target accepted."""
