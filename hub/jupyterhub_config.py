"""JupyterHub configuration for the course: start a real deployment from this file.

`make hub` writes a copy of it, with the settings below filled in, and runs the hub on
127.0.0.1 for an instructor to try (README, "On a JupyterHub"). For a deployment, copy it
next to your hub, change the settings, and replace the authenticator: the try-out's
SharedPasswordAuthenticator lets everyone listed in COURSES in with one password.

What it sets up, as nbgrader documents for several courses on one hub
(nbgrader's demos/demo_multiple_classes):

* every user's server runs as that Unix user (LocalProcessSpawner), from the course's
  environment (ENV), which every user can read; students' servers have nbgrader's
  assignment list and validate, and no instructor tool (binder/postBuild locks them off
  in ENV);
* per course, the group ``nbgrader-<course>`` (its students: the Assignment List shows
  them the course) and ``formgrade-<course>`` (its instructors), and a hub service
  ``<course>``: a Jupyter server run as the course's grader account ``grader-<course>``
  in the course folder, with the formgrader on. Members of ``formgrade-<course>`` open it
  at ``/services/<course>/formgrader``, in its own browser tab: JupyterHub >= 4.1 forbids
  framing its pages (``frame-ancestors 'none'``), so the formgrader's JupyterLab panel
  (an iframe) stays blank under a hub, and nbgrader's docs say to open it in a tab.
"""

from pathlib import Path

c = get_config()  # noqa: F821

# BEGIN SETTINGS (make hub writes this block)
#: The users' environment: jupyterhub-singleuser, nbgrader and the course (readable by all).
ENV = "/opt/course-hub/env"
#: configurable-http-proxy (npm).
PROXY = "/opt/course-hub/proxy/node_modules/.bin/configurable-http-proxy"
#: The hub's own state: its database, cookie secret, PID file.
STATE = "/opt/course-hub/state"
#: Where users open the hub, and where the hub and the proxy's API listen.
IP = "127.0.0.1"
PORT = 8000
HUB_PORT = 8081
PROXY_API_PORT = 8001
#: {course: {"instructors": [...], "students": [...], "port": N, "folder": path}}; the
#: grader account of a course is grader-<course>, its course folder `folder`.
COURSES = {
    "dmsa": {
        "instructors": ["instructor"],
        "students": ["student1", "student2"],
        "port": 9990,
        "folder": "/home/grader-dmsa/dmsa",
    },
}
#: The try-out's one password (8 characters or more). A deployment replaces the authenticator.
PASSWORD = "change-me-now"
# END SETTINGS

c.JupyterHub.ip = IP
c.JupyterHub.port = PORT
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = HUB_PORT
c.ConfigurableHTTPProxy.command = [PROXY]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PROXY_API_PORT}"
c.JupyterHub.db_url = f"sqlite:///{Path(STATE) / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(Path(STATE) / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(Path(STATE) / "jupyterhub.pid")

# Who may log in. The try-out: one password for every listed user (JupyterHub's
# SharedPasswordAuthenticator). A deployment uses its own authenticator (PAM, OAuth, LTI)
# and keeps the lists and groups below.
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = PASSWORD
users = set()
for course, people in COURSES.items():
    users |= {*people["instructors"], *people["students"], f"grader-{course}"}
c.Authenticator.allowed_users = users

# Every server runs as its Unix user, from ENV, with one BLAS thread per process (the
# lessons' engines are the parallelism) and ENV first on PATH (terminals too).
c.Spawner.cmd = [f"{ENV}/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
# A server importing JupyterLab, nbgrader and ipyparallel on a busy host takes more than
# JupyterHub's default 30 s to answer.
c.Spawner.start_timeout = 300
c.Spawner.http_timeout = 300
c.Spawner.environment = {
    "PATH": f"{ENV}/bin:/usr/local/bin:/usr/bin:/bin",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
# A lesson with its 2-engine cluster stays under 1.5 GB: spawners that enforce limits
# (systemd, Docker, Kubernetes) read these; LocalProcessSpawner does not.
c.Spawner.mem_limit = "2G"
c.Spawner.cpu_limit = 1

# nbgrader's groups and roles, per course.
c.JupyterHub.load_groups = {}
roles = [
    # A server's token may do what its user may (nbgrader's JupyterHubAuthPlugin reads
    # the user's groups to list their courses).
    {"name": "server", "scopes": ["inherit"]},
]
services = []
for course, people in COURSES.items():
    grader = f"grader-{course}"
    c.JupyterHub.load_groups[f"nbgrader-{course}"] = {"users": sorted(people["students"])}
    c.JupyterHub.load_groups[f"formgrade-{course}"] = {
        "users": sorted({*people["instructors"], grader})
    }
    roles.append(
        {
            "name": f"formgrade-{course}",
            "groups": [f"formgrade-{course}"],
            "scopes": [
                f"access:services!service={course}",
                "list:services",
                f"read:services!service={course}",
            ],
        }
    )
    # What the course's service may ask the hub: users and their groups (nbgrader's
    # JupyterHubAuthPlugin reads them to list the course's students), and the members of
    # nbgrader-<course> (the formgrader adds a student there).
    roles.append(
        {
            "name": f"grader-{course}",
            "services": [course],
            "scopes": [
                "list:users",
                "read:users",
                "read:users:groups",
                "list:groups",
                "read:groups",
                f"groups!group=nbgrader-{course}",
            ],
        }
    )
    # The course's formgrader: a Jupyter server of the grader account, in the course
    # folder, with nbgrader's instructor extensions on (its own JUPYTER_CONFIG_DIR,
    # which `make hub` writes; ENV keeps them off for everyone else).
    folder = people["folder"]
    services.append(
        {
            "name": course,
            "url": f"http://127.0.0.1:{people['port']}",
            "command": [f"{ENV}/bin/jupyterhub-singleuser", f"--ServerApp.root_dir={folder}"],
            "user": grader,
            "cwd": folder,
            "environment": {
                **c.Spawner.environment,
                "JUPYTER_CONFIG_DIR": str(Path(folder) / ".jupyter"),
                "JUPYTERHUB_DEFAULT_URL": "/formgrader",
            },
            "oauth_no_confirm": True,
            # Seconds the hub waits for it at start-up (it exits when they run out).
            "timeout": 300,
        }
    )
c.JupyterHub.load_roles = roles
c.JupyterHub.services = services

# Anything else of your deployment goes below.
