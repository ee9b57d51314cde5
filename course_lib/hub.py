"""What ``make hub`` runs: the course on a real multi-user JupyterHub on 127.0.0.1.

One command stands up what a hub administrator would: an environment every user can
read (made from a Python outside any private home, with ``binder/requirements.txt``,
``binder/postBuild`` and JupyterHub), configurable-http-proxy from npm, nbgrader's
exchange folder, Unix users (one instructor and N students per course, and the
course's grader account), a course folder per course (the course's ``solutions/`` and
``lessons/`` and its own ``nbgrader_config.py``), and the two configuration files a
real deployment starts from, ``hub/jupyterhub_config.py`` and ``hub/nbgrader_config.py``,
with their settings filled in. Then it runs the hub until Ctrl-C, and stops every
process it started (the hub, the proxy, the users' servers and kernels) by PID.

Examples
--------
>>> plan = HubPlan("/opt/course-hub", courses=[Course("dmsa", ["ann"], ["bo", "cy"])])
>>> plan.users
['ann', 'bo', 'cy', 'grader-dmsa']
>>> plan.courses[0].folder
PosixPath('/home/grader-dmsa/dmsa')
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import http.cookiejar
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from importlib import metadata
from pathlib import Path

import psutil

from course_lib._processes import stop

__all__ = [
    "Course",
    "Hub",
    "HubPlan",
    "login",
    "missing",
    "prepare",
    "remove_users",
]

#: The JupyterHub release the course is tested with, and the proxy's major version.
JUPYTERHUB = "jupyterhub==6.1.1"
PROXY = "configurable-http-proxy@5"
#: The repository (templates, binder/, the course): make hub runs from a clone.
REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "hub"
BEGIN, END = "# BEGIN SETTINGS", "# END SETTINGS"
#: Seconds the hub may take to answer its API (12-24 s measured on 2 busy cores).
START_TIMEOUT = 180.0
_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,30}")


@dataclasses.dataclass
class Course:
    """One course on the hub: its id, people and grader service.

    Attributes
    ----------
    course_id : str
        nbgrader's ``course_id``; the groups are ``nbgrader-<id>`` and
        ``formgrade-<id>``, the grader account ``grader-<id>``.
    instructors, students : list of str
        Unix user names.
    source : Path
        The course root whose ``solutions/`` and ``lessons/`` the course folder gets
        (default: the repository).
    port : int
        Where the course's formgrader service listens (0: a free port).
    """

    course_id: str
    instructors: list
    students: list
    source: Path = REPO
    port: int = 0

    def __post_init__(self):
        for name in (self.course_id, *self.instructors, *self.students):
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a valid course or user name: lowercase letters, "
                    "digits, '_' and '-', at most 31 characters, not starting with a digit."
                )
        self.source = Path(self.source)

    @property
    def grader(self):
        return f"grader-{self.course_id}"

    @property
    def folder(self):
        """The course folder, in the grader account's home (nbgrader's layout)."""
        return Path("/home") / self.grader / self.course_id


@dataclasses.dataclass
class HubPlan:
    """Where and how the hub runs.

    Attributes
    ----------
    folder : Path
        Everything the hub needs that is not a user's: ``env/`` (the users'
        environment), ``proxy/``, ``exchange/``, ``state/``, the configuration. It
        must be outside any private home (every user reads ``env/``).
    courses : list of Course
    python : str
        The interpreter ``env/`` is made from: every user must be able to run it.
    ip, port : str, int
        Where users open the hub.
    password : str
        The try-out's one password, 8 characters or more (JupyterHub's
        SharedPasswordAuthenticator).
    """

    folder: Path
    courses: list = dataclasses.field(default_factory=list)
    python: str = "/usr/bin/python3"
    ip: str = "127.0.0.1"
    port: int = 8000
    password: str = "course-try-out"

    def __post_init__(self):
        self.folder = Path(self.folder)
        if not self.courses:
            raise ValueError("a hub needs at least one course")
        ids = [course.course_id for course in self.courses]
        if len(set(ids)) != len(ids):
            raise ValueError(f"course ids {ids} are not unique")

    @property
    def env(self):
        return self.folder / "env"

    @property
    def exchange(self):
        return self.folder / "exchange"

    @property
    def state(self):
        return self.folder / "state"

    @property
    def proxy(self):
        return self.folder / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"

    @property
    def config(self):
        return self.folder / "jupyterhub_config.py"

    @property
    def nbgrader_config(self):
        """The global nbgrader configuration every server of the hub reads."""
        return self.env / "etc" / "jupyter" / "nbgrader_config.py"

    @property
    def users(self):
        names = set()
        for course in self.courses:
            names |= {*course.instructors, *course.students, course.grader}
        return sorted(names)

    @property
    def url(self):
        return f"http://{self.ip}:{self.port}"


def _readable_by_all(path):
    """None if every user can run ``path``, else the folder or file that stops them."""
    path = Path(path).resolve()
    for folder in reversed(path.parents):
        if not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    mode = path.stat().st_mode
    return None if mode & stat.S_IROTH and mode & stat.S_IXOTH else path


def _oldest_python():
    """The lower bound of course_lib's ``Requires-Python``, e.g. ``(3, 11)``."""
    claim = metadata.metadata("course_lib")["Requires-Python"] or ""
    found = re.search(r">=\s*([0-9.]+)", claim)
    return tuple(int(p) for p in found.group(1).split(".")) if found else (3, 11)


def missing(plan):
    """What this machine lacks to run ``plan``, one sentence each (empty: nothing).

    Checked before anything is made: root (users are made and servers run as them),
    npm (configurable-http-proxy), useradd, and a Python every user can run that is as
    new as the course needs.
    """
    problems = []
    if os.geteuid() != 0:
        problems.append(
            "make hub makes Unix users and runs each user's server as that user: run it "
            "as root (sudo -E make hub)"
        )
    for tool, why in (("npm", "to install configurable-http-proxy"), ("useradd", "")):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is not installed{' (' + why + ')' if why else ''}")
    python = shutil.which(plan.python)
    if python is None:
        problems.append(f"the hub's Python {plan.python!r} does not exist")
    else:
        blocked = _readable_by_all(python)
        if blocked is not None:
            problems.append(
                f"the hub's Python {python} is not usable by every user ({blocked} is not "
                "open to them; a Python in a private home gives 'bad interpreter'): name "
                "another with HUB_PYTHON="
            )
        else:
            found = subprocess.run(
                [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            oldest = _oldest_python()
            if not found or tuple(map(int, found.split("."))) < oldest:
                problems.append(
                    f"the hub's Python {python} is {found or 'not runnable'}; the course "
                    f"needs {'.'.join(map(str, oldest))} or newer: name another with "
                    "HUB_PYTHON="
                )
    existing = next(p for p in (plan.folder, *plan.folder.parents) if p.exists())
    if _readable_by_all(existing):
        problems.append(
            f"the hub's folder {plan.folder} is not open to every user: choose one outside "
            "any private home with HUB_DIR="
        )
    return problems


def free_ports(count, host="127.0.0.1"):
    """``count`` distinct ports that nothing listens on (all held open while chosen).

    Examples
    --------
    >>> len(set(free_ports(3)))
    3
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def _run(command, **kwargs):
    kwargs.setdefault("check", True)
    return subprocess.run([str(part) for part in command], **kwargs)


def _uv():
    return [sys.executable, "-m", "uv"]


def build_env(plan, say=print):
    """The users' environment: the Binder pins, JupyterHub, course_lib (not editable).

    Made again whenever ``binder/``, ``course_lib`` or ``pyproject.toml`` change (a stamp
    file in it names their digest).
    """
    digest = hashlib.sha256()
    sources = sorted((REPO / "binder").iterdir()) + sorted((REPO / "course_lib").rglob("*.py"))
    for path in [*sources, REPO / "pyproject.toml"]:
        digest.update(path.read_bytes())
    stamp = plan.env / f".course-hub-{digest.hexdigest()[:16]}"
    if stamp.exists():
        return plan.env
    say(f"making the users' environment {plan.env} from {plan.python} ...")
    shutil.rmtree(plan.env, ignore_errors=True)
    _run([*_uv(), "venv", "--quiet", "--seed", "--python", plan.python, plan.env])
    python = plan.env / "bin" / "python"
    _run(
        [*_uv(), "pip", "install", "--quiet", "--python", python]
        + ["-r", REPO / "binder" / "requirements.txt", JUPYTERHUB, "copydetect>=0.5"]
    )
    # binder/postBuild: course_lib itself (not editable), the student's JupyterLab.
    env = {**os.environ, "PATH": f"{plan.env / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    _run(["bash", REPO / "binder" / "postBuild"], cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    stamp.touch()
    return plan.env


def install_proxy(plan, say=print):
    """configurable-http-proxy from npm, in ``<folder>/proxy`` (once)."""
    if not plan.proxy.exists():
        say(f"installing {PROXY} with npm ...")
        _run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund"]
            + ["--prefix", plan.folder / "proxy", PROXY],
            stdout=subprocess.DEVNULL,
        )
    return plan.proxy


def make_users(names):
    """Make the Unix users of ``names`` that do not exist; returns those it made."""
    made = []
    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            _run(["useradd", "--create-home", "--shell", "/bin/bash", name])
            made.append(name)
    return made


def remove_users(names):
    """Delete the Unix users ``names`` and their homes (only users this module made)."""
    for name in names:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            _run(["userdel", "--remove", name], stderr=subprocess.DEVNULL, check=False)


def _chown_tree(path, user):
    entry = pwd.getpwnam(user)
    for root, folders, files in os.walk(path):
        for name in [root, *(Path(root) / f for f in folders + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def make_course_folder(course):
    """The course folder of ``course``: solutions/, lessons/, its nbgrader_config.py.

    Owned by the grader account, whose formgrader service runs there; its
    ``.jupyter/`` turns on nbgrader's instructor extensions for that service only.
    """
    folder = course.folder
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("solutions", "lessons"):
        if not (folder / part).exists():
            shutil.copytree(course.source / part, folder / part)
    (folder / "nbgrader_config.py").write_text(
        '"""nbgrader configuration of the course folder (written by make hub)."""\n\n'
        "from pathlib import Path\n\n"
        "from course_lib.grading.config import configure_course\n\n"
        "c = get_config()  # noqa: F821\n"
        "configure_course(c, Path(__file__).resolve().parent)\n"
        f"c.CourseDirectory.course_id = {course.course_id!r}\n"
    )
    jupyter = folder / ".jupyter"
    jupyter.mkdir(exist_ok=True)
    extensions = {
        f"nbgrader.server_extensions.{name}": True
        for name in ("formgrader", "course_list", "assignment_list", "validate_assignment")
    }
    (jupyter / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": extensions}}, indent=2) + "\n"
    )
    _chown_tree(folder.parent, course.grader)
    return folder


def render(template, settings):
    """``template``'s text with its settings block replaced by ``settings``.

    Examples
    --------
    >>> text = "a = 1\\n# BEGIN SETTINGS (x)\\nB = 2\\n# END SETTINGS\\nc = 3\\n"
    >>> print(render(text, {"B": [4]}))
    a = 1
    # BEGIN SETTINGS (written by make hub)
    B = [4]
    # END SETTINGS
    c = 3
    <BLANKLINE>
    """
    head, _, rest = template.partition(BEGIN)
    _, _, tail = rest.partition(END)
    if not tail:
        raise ValueError(f"the template has no {BEGIN} ... {END} block")
    block = "\n".join(f"{name} = {value!r}" for name, value in settings.items())
    return f"{head}{BEGIN} (written by make hub)\n{block}\n{END}{tail}"


def write_configs(plan):
    """``jupyterhub_config.py`` in the hub's folder and the global ``nbgrader_config.py``."""
    hub_port, api_port, *ports = free_ports(2 + len(plan.courses))
    for course, port in zip(plan.courses, ports, strict=True):
        course.port = course.port or port
    courses = {
        course.course_id: {
            "instructors": list(course.instructors),
            "students": list(course.students),
            "port": course.port,
            "folder": str(course.folder),
        }
        for course in plan.courses
    }
    hub_settings = {
        "ENV": str(plan.env),
        "PROXY": str(plan.proxy),
        "STATE": str(plan.state),
        "IP": plan.ip,
        "PORT": plan.port,
        "HUB_PORT": hub_port,
        "PROXY_API_PORT": api_port,
        "COURSES": courses,
        "PASSWORD": plan.password,
    }
    text = (TEMPLATES / "jupyterhub_config.py").read_text()
    plan.config.write_text(render(text, hub_settings))
    plan.nbgrader_config.parent.mkdir(parents=True, exist_ok=True)
    plan.nbgrader_config.write_text(
        render((TEMPLATES / "nbgrader_config.py").read_text(), {"EXCHANGE": str(plan.exchange)})
    )
    return plan.config, plan.nbgrader_config


def prepare(plan, say=print):
    """Everything but the hub's process: environment, proxy, exchange, users, courses.

    Returns
    -------
    list of str
        The users it made (:func:`remove_users` deletes them).

    Raises
    ------
    RuntimeError
        Naming what the machine lacks (:func:`missing`), before anything is made.
    """
    problems = missing(plan)
    if problems:
        raise RuntimeError("cannot make the hub: " + "; ".join(problems) + ".")
    plan.folder.mkdir(parents=True, exist_ok=True)
    plan.folder.chmod(0o755)
    build_env(plan, say)
    install_proxy(plan, say)
    # nbgrader's exchange: every user's server writes there (nbgrader sets the
    # permissions of what it puts inside: inbound writable and not listable).
    plan.exchange.mkdir(exist_ok=True)
    plan.exchange.chmod(0o777)
    plan.state.mkdir(exist_ok=True)
    plan.state.chmod(0o700)
    made = make_users(plan.users)
    for course in plan.courses:
        make_course_folder(course)
    write_configs(plan)
    return made


class Hub:
    """The running hub: ``start``, ``stop`` (every process it started, by PID).

    Everything the hub starts (the proxy, the users' servers, the course services, the
    kernels and engines under them) runs as a hub user or below the hub's process;
    ``stop`` stops the hub, then whatever of those is left.
    """

    def __init__(self, plan):
        self.plan = plan
        self.process = None
        self.log = plan.folder / "jupyterhub.log"

    def start(self, timeout=START_TIMEOUT):
        self.plan.config.stat()
        handle = open(self.log, "ab")
        self.process = psutil.Popen(
            [str(self.plan.env / "bin" / "jupyterhub"), "-f", str(self.plan.config)],
            cwd=self.plan.state,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PATH": f"{self.plan.env / 'bin'}{os.pathsep}/usr/bin:/bin"},
        )
        handle.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the hub exited ({self.process.returncode}): {self.tail()}")
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(f"{self.plan.url}/hub/api", timeout=5) as reply:
                    return json.load(reply)
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the hub did not answer in {timeout:.0f} s: {self.tail()}")

    def tail(self, lines=20):
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def processes(self):
        """The hub's process tree and every process of the hub's users."""
        found = {}
        if self.process is not None and self.process.is_running():
            found[self.process.pid] = self.process
            for child in self.process.children(recursive=True):
                found[child.pid] = child
        uids = set()
        for name in self.plan.users:
            with contextlib.suppress(KeyError):
                uids.add(pwd.getpwnam(name).pw_uid)
        for process in psutil.process_iter(["uids"]):
            with contextlib.suppress(psutil.Error):
                if process.info["uids"] and process.info["uids"].real in uids:
                    found[process.pid] = process
        return list(found.values())

    def stop(self):
        """Stop the hub (it stops the proxy and the servers), then whatever is left."""
        if self.process is None:
            return []
        left = self.processes()
        with contextlib.suppress(psutil.Error):
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)
        survivors = stop([p for p in left if p.is_running()] + self.processes())
        self.process = None
        return survivors

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def login(url, user, password):
    """An opener holding ``user``'s hub cookies, through the hub's login form.

    Raises
    ------
    PermissionError
        The hub refused the password.
    """
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{url}/hub/login", timeout=30).read()
    xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
    data = urllib.parse.urlencode({"username": user, "password": password, "_xsrf": xsrf})
    try:
        opener.open(f"{url}/hub/login?next=", data.encode(), timeout=60).read()
    except urllib.error.HTTPError as exc:
        raise PermissionError(f"the hub refused {user!r}: HTTP {exc.code}") from exc
    opener.xsrf = xsrf
    return opener


def main(argv=None):
    """``python -m course_lib.hub``: what ``make hub`` runs."""
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.hub",
        description="The course on a multi-user JupyterHub on 127.0.0.1, for an instructor to try.",
    )
    parser.add_argument("--dir", default="/opt/course-hub", help="the hub's folder")
    parser.add_argument("--python", default="/usr/bin/python3", help="the users' Python")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--courses", nargs="+", default=["dmsa"], help="course ids")
    parser.add_argument("--students", type=int, default=2, help="students per course")
    parser.add_argument(
        "--password", default="course-try-out", help="every try-out user's password"
    )
    parser.add_argument("--prefix", default="", help="put before every user name it makes")
    parser.add_argument("--remove", action="store_true", help="delete the hub's users and folder")
    args = parser.parse_args(argv)
    if args.students < 1:
        parser.error(f"--students {args.students}: at least one student")
    prefix = args.prefix
    courses = [
        Course(
            course_id,
            [prefix + (f"instructor-{course_id}" if len(args.courses) > 1 else "instructor")],
            [f"{prefix}student{n}" for n in range(1, args.students + 1)],
        )
        for course_id in args.courses
    ]
    plan = HubPlan(args.dir, courses, python=args.python, port=args.port, password=args.password)
    record = plan.folder / "users.json"
    if args.remove:
        made = json.loads(record.read_text()) if record.exists() else []
        remove_users(made)
        shutil.rmtree(plan.folder, ignore_errors=True)
        print(f"removed {plan.folder} and the users make hub made: {made or 'none'}")
        return 0
    try:
        made = prepare(plan)
    except RuntimeError as exc:
        print(f"make hub: {exc}", file=sys.stderr)
        return 2
    earlier = json.loads(record.read_text()) if record.exists() else []
    record.write_text(json.dumps(sorted(set(earlier) | set(made))) + "\n")
    hub = Hub(plan)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        version = hub.start()
        print(f"JupyterHub {version['version']}: {plan.url}/hub/login, password {plan.password!r}")
        for course in plan.courses:
            print(
                f"  {course.course_id}: instructors {course.instructors}, students "
                f"{course.students}; formgrader {plan.url}/services/{course.course_id}/formgrader"
            )
        print(f"configuration: {plan.config}, {plan.nbgrader_config}; Ctrl-C stops it")
        while hub.process.poll() is None:
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        survivors = hub.stop()
        print(f"stopped the hub{': could not stop ' + str(survivors) if survivors else ''}")


if __name__ == "__main__":
    sys.exit(main())
