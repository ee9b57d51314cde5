"""The grading kernels' ipykernel, without its ten-second stall at shutdown.

``python -m course_lib.grading._kernel -f CONNECTION_FILE ...`` starts what
``python -m ipykernel_launcher`` starts, but for one step of its shutdown.
ipykernel 7 stops its IOPub thread at exit (an ``atexit`` handler, run
before the one that closes the kernel) while the control thread may still be
publishing the status that follows its reply to ``shutdown_request``; that
send then blocks on a thread that is gone, until the kernel manager's patience
runs out and it signals the kernel. Seen in about one grading task in six with
two tasks at once on 2 cores (py-spy: the control thread in
``IOPubThread.schedule`` or ``OutStream.flush``, no IOPub thread left): up to
15 idle seconds of a grading slot, and a sandbox stopped by SIGTERM. Here, once
the kernel's loop has stopped, the control thread gets to end first (it ends by
itself once the reply is out), and only then does the interpreter exit.

The checker kernel runs it with ``python -P``: the folder it starts in is the
student's, and nothing there may be imported by the checker.
"""

import sys
from pathlib import Path

#: Seconds the exit waits for the control thread to end by itself.
CONTROL_GRACE = 2.0


def app_class():
    """``IPKernelApp`` whose ``start`` lets the control thread end before it returns."""
    from ipykernel.kernelapp import IPKernelApp

    class GradingKernelApp(IPKernelApp):
        def start(self):
            super().start()  # returns when the kernel's loop has stopped
            control = self.control_thread
            if control is not None and control.is_alive():
                control.join(CONTROL_GRACE)

    return GradingKernelApp


def main():
    # As ipykernel_launcher: not the current folder while ipykernel is imported
    # (IPython puts it back unless the interpreter runs with -P).
    if sys.path and sys.path[0] in ("", str(Path.cwd())):
        del sys.path[0]
    # This module by its own name, not as __main__: what the kernel holds is named
    # after the course (the checker's audit lists the types it holds).
    from course_lib.grading import _kernel

    _kernel.app_class().launch_instance()


if __name__ == "__main__":
    main()
