"""Composition root: settings, logging, the data converter, the database and the worker."""
