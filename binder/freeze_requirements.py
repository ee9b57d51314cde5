"""Print binder/requirements.txt: the course's dependency closure, pinned.

Run it with the interpreter of an environment where the course was tested
(``make test`` builds one in .venv)::

    .venv/bin/python binder/freeze_requirements.py > binder/requirements.txt

It starts from ``course_lib``'s own requirements plus its ``course`` extra
(what a student needs: JupyterLab, nbgrader, widgets) and follows every
requirement that applies on this platform, pinning each to the installed
version. Test tools (pytest, ruff, playwright, ...) are not part of it.

The header lists what pyproject.toml asked for when the pins were made
(``declared``): tests/test_binder.py fails when pyproject.toml no longer says the
same, so a changed dependency is never shipped to Binder with stale pins. The
script refuses to run in an environment installed from another pyproject.toml.

The pins hold on every Python the course claims, from requires-python's lower bound
on (``3.11`` means 3.11.0), not only on the one they were made with: a tested
version that needs a newer Python (soupsieve 4.1.3 needs 3.11.5, and Debian 12's
python3.11 is 3.11.2) is pinned to the newest release that supports the oldest
claimed Python, as uv resolves it for that Python with every other pin fixed
(``for_oldest_python``); the header names each one. tests/test_hub_install.py
resolves the whole file for the oldest claimed Python and installs it on Debian's.
"""

import platform
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = "course_lib"
EXTRAS = ("course", "cluster")
# Left to the image: pinning these would downgrade the base environment's own.
BUILD_TOOLS = {"pip", "setuptools", "wheel"}
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
HEADER = "# Made for these lines of pyproject.toml (tests/test_binder.py compares them):"


def _key(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist, extras):
    env = default_environment()
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None:
            yield req
            continue
        for extra in ("", *extras):
            if req.marker.evaluate({**env, "extra": extra}):
                yield req
                break


def closure(root=ROOT, extras=EXTRAS):
    """(name, version) of every distribution ``root[extras]`` needs, sorted."""
    pinned = {}
    seen = set()
    todo = list(_requirements(metadata.distribution(root), extras))
    while todo:
        req = todo.pop()
        name = _key(req.name)
        # A distribution reached again with new extras brings new requirements.
        wanted = {(name, extra) for extra in ("", *sorted(req.extras))} - seen
        if not wanted:
            continue
        seen |= wanted
        dist = metadata.distribution(req.name)
        if name not in BUILD_TOOLS:
            pinned[name] = (dist.metadata["Name"], dist.version)
        todo.extend(_requirements(dist, tuple(extra for _, extra in wanted if extra)))
    return sorted(pinned.values(), key=lambda item: _key(item[0]))


def declared(pyproject=PYPROJECT, extras=EXTRAS):
    """What ``pyproject`` asks for: requires-python, dependencies, ``extras``' ones.

    Examples
    --------
    >>> declared()[0]
    'requires-python >=3.11'
    """
    project = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))["project"]
    lines = [f"requires-python {project['requires-python']}"]
    lines += [str(Requirement(line)) for line in project["dependencies"]]
    for extra in extras:
        optional = project["optional-dependencies"][extra]
        lines += [f"[{extra}] {Requirement(line)}" for line in optional]
    return lines


def recorded(text):
    """The ``declared`` lines that a requirements file's header holds (empty if none)."""
    lines = text.splitlines()
    if HEADER not in lines:
        return []
    found = []
    for line in lines[lines.index(HEADER) + 1 :]:
        if not line.startswith("#   "):
            break
        found.append(line.removeprefix("#   "))
    return found


def _installed(extras=EXTRAS):
    """``declared``'s lines, read from the installed course_lib's metadata."""
    dist = metadata.distribution(ROOT)
    lines = {f"requires-python {dist.metadata['Requires-Python']}"}
    for line in dist.requires or []:
        req = Requirement(line)
        marker, req.marker = req.marker, None
        if marker is None:
            lines.add(str(req))
            continue
        for extra in extras:
            if marker.evaluate({"extra": extra}) and not marker.evaluate({"extra": ""}):
                lines.add(f"[{extra}] {req}")
    return lines


def oldest_python(pyproject=PYPROJECT):
    """The oldest Python ``requires-python`` admits, as a full version.

    Examples
    --------
    >>> oldest_python()
    '3.11.0'
    """
    claim = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))["project"]
    match = re.fullmatch(r">=\s*([0-9]+(?:\.[0-9]+)*)", claim["requires-python"].strip())
    if match is None:
        raise ValueError(f"requires-python {claim['requires-python']!r}: expected '>=X.Y[.Z]'")
    parts = [int(part) for part in match.group(1).split(".")]
    return ".".join(str(part) for part in (parts + [0, 0])[:3])


def too_new(pins, python):
    """``{name: Requires-Python}`` of the installed ``pins`` that exclude ``python``."""
    found = {}
    for name, _version in pins:
        needs = metadata.distribution(name).metadata.get("Requires-Python")
        if needs and not SpecifierSet(needs).contains(Version(python)):
            found[name] = needs
    return found


def for_oldest_python(pins, python, uv=(sys.executable, "-m", "uv")):
    """``pins`` where each that excludes ``python`` becomes the newest release that does not.

    uv resolves, for ``python``, every other pin fixed and each such one bounded by
    the version tested (``name<=version``), so the result installs as a whole.
    """
    excluded = too_new(pins, python)
    if not excluded:
        return list(pins), {}
    wanted = [f"{n}<={v}" if n in excluded else f"{n}=={v}" for n, v in pins]
    result = subprocess.run(
        [*uv, "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--no-deps"]
        + ["--python-version", python, "-"],
        input="\n".join(wanted) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"no pins hold on Python {python} (uv pip compile):\n{result.stderr}")
    resolved = {}
    for line in result.stdout.splitlines():
        name, _, version = line.strip().partition("==")
        if version:
            resolved[_key(name)] = version
    changed = {}
    out = []
    for name, version in pins:
        new = resolved.get(_key(name), version)
        if new != version:
            changed[name] = (version, excluded[name], new)
        out.append((name, new))
    return out, changed


def main():
    if _installed() != set(declared()):
        sys.exit(
            f"{ROOT} in this environment was installed from another pyproject.toml: "
            "reinstall it (make test does) and run this script again."
        )
    print("# Generated by binder/freeze_requirements.py from the environment the course was")
    print(f"# tested in (Python {platform.python_version()}, {sys.platform}). Do not edit by hand;")
    print("# regenerate it with")
    print("#   .venv/bin/python binder/freeze_requirements.py > binder/requirements.txt")
    print("# repo2docker installs it with pip before binder/postBuild installs course_lib itself.")
    python = oldest_python()
    pins, changed = for_oldest_python(closure(), python)
    print(f"# Every pin holds on Python {python} and newer (requires-python's lower bound);")
    print("# these tested versions need a newer Python and are pinned to an older release:")
    for name, (tested, needs, pinned) in sorted(changed.items()) or [("", ("", "", ""))]:
        print(f"# - {name} {tested} needs Python {needs}: {pinned}" if name else "# - none")
    print(HEADER)
    for line in declared():
        print(f"#   {line}")
    for name, version in pins:
        print(f"{name}=={version}")


if __name__ == "__main__":
    main()
