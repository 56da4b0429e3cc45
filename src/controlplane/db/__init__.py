"""Database access: the pool, the gateway, named queries, migrations, embedded PostgreSQL."""

from controlplane.db.gateway import ConstraintViolation, Database, DatabaseError, Executor
from controlplane.db.queries import load_queries

__all__ = ["ConstraintViolation", "Database", "DatabaseError", "Executor", "load_queries"]
