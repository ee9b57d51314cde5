"""What the engines are: their hosts and PIDs, and one engine per host.

Engine introspection for :mod:`course_lib.cluster` (which exports these),
:mod:`course_lib.memory` and :mod:`course_lib.splits`: each helper once.
"""

from __future__ import annotations

import os
import socket

import ipyparallel


def _hostname_and_pid():
    return socket.gethostname(), os.getpid()


def _direct_view(client_or_view):
    """All engines of a client, or the engines of a DirectView."""
    if isinstance(client_or_view, ipyparallel.DirectView):
        return client_or_view
    return client_or_view[:]


def _hosts_and_pids(client_or_view):
    return _direct_view(client_or_view).apply_async(_hostname_and_pid).get_dict()


def engine_hosts(client):
    """Host name of every engine.

    Parameters
    ----------
    client : ipyparallel.Client or DirectView
        Every engine of a client, or those of a view.

    Returns
    -------
    dict
        ``{engine_id: hostname}``.
    """
    return {engine_id: host for engine_id, (host, _) in _hosts_and_pids(client).items()}


def engine_pids(client):
    """Process id of every engine: ``{engine_id: pid}`` (of a client, or of a DirectView)."""
    return {engine_id: pid for engine_id, (_, pid) in _hosts_and_pids(client).items()}


def one_engine_per_host(client):
    """A DirectView with exactly one engine on every host.

    Use it for work that must happen once per machine: copying data to a
    local disk, warming the page cache, measuring free memory.

    Parameters
    ----------
    client : ipyparallel.Client or DirectView
        Choose among every engine of a client, or among a view's engines.

    Returns
    -------
    ipyparallel.DirectView
        Blocking view on the lowest engine id of each host.
    """
    chosen = {}
    for engine_id, host in sorted(engine_hosts(client).items()):
        chosen.setdefault(host, engine_id)
    view = _direct_view(client).client[sorted(chosen.values())]
    view.block = True
    return view
