"""Get the template stack ready in a forked child while the parent still works out what to render.

A plan after a small edit renders a folder or two, but first needs the template stack: importing
Jinja2 and the Go dialect and compiling the shared templates is ~0.15 s, a fifth of such a plan,
and all of it on one core while the other idles. So once a plan knows that something changed
(before it knows which folders to render: that needs the stored plan), it forks a child that
imports and compiles; the parent decodes its stored plan meanwhile, then sends the child the
folders, which it renders and sends back (through a `multiprocessing` connection, as the render
workers' results come back: plain data between this process and its own child).

The child is only a head start: if it cannot be forked, dies, or fails in any way, including
on a bad spec, the parent renders the folders itself (and reports any error the usual way).
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Any

from orchestrator.model import Package
from orchestrator.spec.discover import PackageDir

Rendered = list[tuple[PackageDir, list[Package], list[str]]]


class Prerender:
    """A forked child holding a ready renderer for `prep` (a `load.Prepared`); `render` once."""

    def __init__(self, prep: Any) -> None:
        self._pid = 0
        self._to_child = self._from_child = -1
        if not hasattr(os, "fork") or threading.active_count() > 1:
            return  # fork would copy other threads' locks mid-use
        try:
            down_r, down_w = os.pipe()
            up_r, up_w = os.pipe()
        except OSError:
            return
        try:
            pid = os.fork()
        except OSError:
            for fd in (down_r, down_w, up_r, up_w):
                os.close(fd)
            return
        if pid == 0:  # the child: serve one request, then out at once (nothing of the parent's flushed)
            try:
                os.close(down_w)
                os.close(up_r)
                _serve(prep, down_r, up_w)
            finally:
                os._exit(0)
        os.close(down_r)
        os.close(up_w)
        self._pid, self._to_child, self._from_child = pid, down_w, up_r

    def render(self, pdirs: list[PackageDir]) -> Rendered | None:
        """The child's rendering of `pdirs`, or None when it gave no usable answer."""
        if not self._pid:
            return None
        from multiprocessing.connection import Connection  # only now: the child is busy meanwhile

        try:
            down, self._to_child = Connection(self._to_child, readable=False), -1
            with down:
                down.send(pdirs)
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
        for fd in (self._to_child, self._from_child):
            if fd >= 0:
                os.close(fd)
        self._to_child = self._from_child = -1
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


def _serve(prep: Any, down: int, up: int) -> None:
    """In the child: get ready, then render what the parent asks for (nothing, if it closes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops this
    from multiprocessing.connection import Connection

    from orchestrator.spec import load

    renderer = load.make_renderer(prep.templates)
    prep.values  # noqa: B018 - parses the values files now
    with Connection(down, writable=False) as conn:
        pdirs = conn.recv()
    answer = [(pkgs, warnings) for _, pkgs, warnings in load.render_folders(prep, pdirs, renderer)]
    with Connection(up, readable=False) as conn:
        conn.send(answer)
