"""Scheduling: node labels to inventories, ranking nodes by shape, right-sizing a workload."""
