"""nbgrader's global configuration on a hub: every server of every user reads it.

`make hub` writes it to ``<ENV>/etc/jupyter/nbgrader_config.py`` (a deployment: there,
or ``/etc/jupyter/nbgrader_config.py``). It names the exchange, a folder every user's
server sees at the same path (``chmod 1777``-like: nbgrader makes ``inbound`` writable
and not listable, ``feedback`` readable only by name), and lets several courses share
it: each course's files live in ``<exchange>/<course>/``, and a student sees the
courses of the JupyterHub groups ``nbgrader-<course>`` they belong to
(``JupyterHubAuthPlugin``). Each course's own ``nbgrader_config.py``, in its course
folder, sets its ``course_id`` (and anything else of the course).
"""

from nbgrader.auth import JupyterHubAuthPlugin

c = get_config()  # noqa: F821

# BEGIN SETTINGS (make hub writes this block)
EXCHANGE = "/srv/nbgrader/exchange"
# END SETTINGS

c.Exchange.root = EXCHANGE
c.Exchange.path_includes_course = True
c.Authenticator.plugin_class = JupyterHubAuthPlugin
