"""Storage: the engine, the typed models and the migrations that build them."""

from hubgate.db.engine import Database, create_database
from hubgate.db.models import Base

__all__ = ["Base", "Database", "create_database"]
