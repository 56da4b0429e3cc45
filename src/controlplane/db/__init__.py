"""Database access: the pool, the gateway, named queries, migrations, embedded PostgreSQL."""

from controlplane.db.gateway import Conflict, Database, DatabaseError
from controlplane.db.queries import load_queries

__all__ = ["Conflict", "Database", "DatabaseError", "load_queries"]
