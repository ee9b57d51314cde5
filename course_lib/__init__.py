"""Helpers for the course "Distributed Model Selection and Assessment".

One module per idea: ``cluster`` (start and stop local engines), ``memory``,
``splits``, ``search``, ``text``, ``averaging``, ``datasets`` and ``quiz``.
"""

__version__ = "0.1.0"
