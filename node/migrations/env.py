"""Alembic environment: migrations run on the connection the index opened (``Index._migrate``),
inside its transaction, so a migration and the marking of its revision commit together."""

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
