"""Project templates: what a tenant's container is cloned from, and its size."""
