"""The throw-away sshd of :mod:`course_lib._throwaway_sshd`, for the tests.

The class lives in ``course_lib`` so that ``bench/startup.py`` uses it without
importing ``tests/``.
"""

from course_lib._throwaway_sshd import (  # noqa: F401 (re-exported for the tests)
    ThrowawaySSHD,
    find_sshd,
)
