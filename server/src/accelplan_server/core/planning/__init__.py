"""Placement and speed: sharding, quantization suggestion, the roofline, plan speed."""
