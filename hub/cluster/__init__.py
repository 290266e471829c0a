"""Hubs that share one PostgreSQL database and split the sites among themselves (``claims``)."""
