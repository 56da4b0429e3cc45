"""Tenants: one container each, driven by the workers towards what the row says."""
