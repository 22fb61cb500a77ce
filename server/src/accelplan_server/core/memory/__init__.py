"""Memory: serving (weights, KV cache, activations), capacity, fine-tuning, and ai-hwaccel's rules for bare counts."""
