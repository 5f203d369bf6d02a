"""Storage: SQLAlchemy Core tables, ordered migrations, one module per aggregate."""
