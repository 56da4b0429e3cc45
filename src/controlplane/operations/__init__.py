"""The hosting lifecycle: operations on a tenant's container, driven by their own workers."""
