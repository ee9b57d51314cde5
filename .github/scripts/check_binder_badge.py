"""Check that the README's Binder links open this repository.

The README's Binder badge names a GitHub repository (``mybinder.org/v2/gh/OWNER/REPO/...``):
the one whose lessons students get. A fork that keeps upstream's badge sends its students
to upstream's lessons. Usage, from a workflow::

    python3 .github/scripts/check_binder_badge.py README.md "$GITHUB_REPOSITORY" [--fork]

It prints one GitHub Actions annotation per problem and exits 1 on an error: a link to
another repository is an error in the repository itself and a warning in a fork; the
placeholder ``OWNER/REPO`` is a warning; a README without a Binder link is an error.

Example::

    $ python3 check_binder_badge.py README.md me/course --fork
    ::warning file=README.md,line=3::The Binder badge opens upstream/course, ...
"""

import argparse
import re
import sys
from pathlib import Path

LINK = re.compile(r"mybinder\.org/v2/gh/([^/\s)\"']+)/([^/\s)\"']+)")
PLACEHOLDER = "OWNER/REPO"


def problems(text, repository, fork):
    """(level, line number, message) for each Binder link that does not open ``repository``.

    Parameters
    ----------
    text : str
        The README.
    repository : str
        ``owner/name`` of the repository the workflow runs in (``github.repository``).
    fork : bool
        Whether that repository is a fork: a wrong link is then a warning, not an error.

    Returns
    -------
    list of tuple
        ``("error" | "warning", line, message)``, empty when every link is right.

    Examples
    --------
    >>> problems("[b](https://mybinder.org/v2/gh/me/course/HEAD)", "me/course", False)
    []
    """
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in LINK.finditer(line):
            target = f"{match.group(1)}/{match.group(2)}"
            if target == PLACEHOLDER:
                found.append(
                    ("warning", number, f"The Binder badge still says {PLACEHOLDER}: "
                     f"replace it with {repository} so that it opens this course.")
                )  # fmt: skip
            elif target.lower() != repository.lower():
                level = "warning" if fork else "error"
                found.append(
                    (level, number, f"The Binder badge opens {target}, not {repository}: "
                     f"students would get {target}'s lessons. Replace {target} with "
                     f"{repository} in the link.")
                )  # fmt: skip
    if not LINK.search(text):
        found.append(("error", 1, "No Binder badge (a mybinder.org/v2/gh/OWNER/REPO link)."))
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("readme", type=Path)
    parser.add_argument("repository", help="owner/name, as github.repository gives it")
    parser.add_argument("--fork", action="store_true", help="the repository is a fork")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repository):
        parser.error(f"repository must be owner/name, but got {args.repository!r}")
    found = problems(args.readme.read_text(encoding="utf-8"), args.repository, args.fork)
    for level, line, message in found:
        print(f"::{level} file={args.readme},line={line}::{message}")
    if not found:
        print(f"{args.readme}: the Binder badge opens {args.repository}")
    return 1 if any(level == "error" for level, _, _ in found) else 0


if __name__ == "__main__":
    sys.exit(main())
