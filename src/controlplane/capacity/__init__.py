"""Capacity: what each node has, holds and uses, headroom in tenants, and a forecast."""
