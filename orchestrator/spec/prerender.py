"""Get the template stack ready in a forked child while the parent still works out what to render.

A plan after a small edit renders a folder or two, but first needs the template stack: importing
Jinja2 and the Go dialect is ~0.1 s, a fifth of such a plan, and all of it on one core while the
other idles. So a plan that has a stored plan to build on gets a child that imports the stack
while the parent re-stats the trees and decodes its stored plan; once the parent knows that
something changed, it sends the child the shared templates and values (`setup`) and then the
folders, which the child renders and sends back (through `multiprocessing` connections: plain
data between this process and its own child).

The child is usually the re-stat's helper (`restat.restat(spare=...)`): it stats its smaller
share of the files, then becomes this child, so the import overlaps the parent's share instead
of following it. Without that helper (a small tree), `start` forks one.

The child is only a head start: if it cannot be forked, dies, or fails in any way, including
on a bad spec, the parent renders the folders itself (and reports any error the usual way).
"""
from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING, Any, NoReturn

from orchestrator.model import Package
from orchestrator.spec import workers
from orchestrator.spec.discover import PackageDir

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

Rendered = list[tuple[PackageDir, list[Package], list[str]]]
_SETUP_NOW = 60_000  # bytes: a setup this small fits an empty pipe, so sending it never waits


class Prerender:
    """A child that readies the template stack, then renders once for the parent."""

    def __init__(self) -> None:
        self._pid = 0
        self._to_child = self._from_child = -1  # the parent's ends
        self._child_ends = (-1, -1)  # the child's ends, until it is forked
        self._down: Connection | None = None
        self._late_setup: bytes | None = None

    @staticmethod
    def possible() -> bool:
        return workers.can_fork()

    @property
    def running(self) -> bool:
        return self._pid != 0

    def open(self) -> bool:
        """Make the pipes, before a fork (here or in `restat`)."""
        if self._child_ends[0] >= 0 or self._pid:
            return False
        try:
            down_r, down_w = os.pipe()
            up_r, up_w = os.pipe()
        except OSError:
            return False
        self._to_child, self._from_child, self._child_ends = down_w, up_r, (down_r, up_w)
        return True

    def become_child(self) -> NoReturn:
        """In the forked child: serve the parent, then out at once (nothing of the parent's flushed)."""
        try:
            os.close(self._to_child)
            os.close(self._from_child)
            _serve(*self._child_ends)
        finally:
            os._exit(0)

    def adopt(self, pid: int) -> None:
        """In the parent, after the fork: `pid` is the child."""
        for fd in self._child_ends:
            os.close(fd)
        self._child_ends = (-1, -1)
        self._pid = pid

    def start(self) -> None:
        """Fork the child here, unless one runs already (or cannot be forked)."""
        if self._pid or not self.possible() or not self.open():
            return
        try:
            pid = os.fork()
        except OSError:
            self.close()
            return
        if pid == 0:
            self.become_child()
        self.adopt(pid)

    def setup(self, prep: Any) -> None:
        """Send what rendering needs of `prep` (a `load.Prepared`): now if it fits the pipe (the
        child may still be importing), else with the folders."""
        if not self._pid:
            return
        from multiprocessing.connection import Connection
        from multiprocessing.reduction import ForkingPickler

        data = bytes(ForkingPickler.dumps((prep.trees, prep.templates, prep.values_raw, prep.values_digest,
                                           prep.templates_digest)))
        self._down, self._to_child = Connection(self._to_child, readable=False), -1
        if len(data) <= _SETUP_NOW:
            try:
                self._down.send_bytes(data)
            except OSError:
                self.close()
        else:
            self._late_setup = data

    def render(self, pdirs: list[PackageDir]) -> Rendered | None:
        """The child's rendering of `pdirs` (after `setup`), or None when it gave no usable answer."""
        if not self._pid or self._down is None:
            self.close()
            return None
        from multiprocessing.connection import Connection

        try:
            if self._late_setup is not None:
                self._down.send_bytes(self._late_setup)
            self._down.send(pdirs)
            up, self._from_child = Connection(self._from_child, writable=False), -1
            with up:
                answer = up.recv()
        except Exception:  # noqa: BLE001 - any trouble with the child: the parent renders instead
            return None
        finally:
            self.close()
        if not isinstance(answer, list) or len(answer) != len(pdirs):
            return None
        return [(pdir, pkgs, warnings) for pdir, (pkgs, warnings) in zip(pdirs, answer)]

    def close(self) -> None:
        """Stop and reap the child (unused, or done)."""
        if self._down is not None:
            self._down.close()
            self._down = None
        for fd in (self._to_child, self._from_child, *self._child_ends):
            if fd >= 0:
                os.close(fd)
        self._to_child = self._from_child = -1
        self._child_ends = (-1, -1)
        if self._pid:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.waitpid(self._pid, 0)
            except ChildProcessError:
                pass
            self._pid = 0


def _serve(down: int, up: int) -> None:
    """In the child: import the template stack, then render what the parent asks for (nothing,
    if it closes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops this
    from multiprocessing.connection import Connection

    import orchestrator.spec.render  # noqa: F401 - the point of this child: ready before it is asked
    from orchestrator.spec import load

    with Connection(down, writable=False) as conn:
        trees, templates, values_raw, values_digest, templates_digest = conn.recv()
        prep = load.Prepared(trees, {}, None, None, values_raw, values_digest, templates, templates_digest)
        renderer = load.make_renderer(prep.templates)
        prep.values  # noqa: B018 - parses the values files now
        pdirs = conn.recv()
    answer = [(pkgs, warnings) for _, pkgs, warnings in load.render_folders(prep, pdirs, renderer)]
    with Connection(up, readable=False) as conn:
        conn.send(answer)
