#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The hiredis bridge driven by an IOPS written in Python.

The bridge is C and knows only the Iops.IOPS interface: here the IOPS is a
Python class (GLib unix-fd and timeout sources on the default main
context), hiredis and the bridge are called through ctypes, and a real
redis-server is started on 127.0.0.1 and an unused port. Checked: pipelined
commands on several connections with every reply verified, the loop
returning by itself once the contexts are freed, the bridge's command
timeout firing through the Python IOPS's timer (not early), and every event
the bridge handed over released. Results are printed as TAP.

Needs IOPS_HIREDIS_LIB (the bridge's shared library), GI_TYPELIB_PATH and
LD_LIBRARY_PATH pointing into the build tree; meson test sets them.
"""

import ctypes
import os
import select
import socket
import subprocess
import sys
import time
import traceback

import gi

gi.require_version('GLib', '2.0')
gi.require_version('GObject', '2.0')
gi.require_version('Iops', '1.0')
from gi.repository import GLib, GObject, Iops  # noqa: E402

WATCH = Iops.EvAction.WATCH
READ = Iops.EventFlags.READ_EVENT
WRITE = Iops.EventFlags.WRITE_EVENT
RW = Iops.EventFlags.RW_EVENT
DEADLINE_S = 10
REDIS_OK = 0
REDIS_REPLY_STRING, REDIS_REPLY_STATUS, REDIS_REPLY_INTEGER = 1, 5, 3


class PythonIOPS(GObject.Object, Iops.IOPS):
    """One-shot watches and timers on GLib sources of the default context;
    start_watching runs until nothing is armed."""

    def __init__(self):
        super().__init__()
        self.watches = {}    # event -> (source id, flags)
        self.timers = {}     # timer -> source id
        self.seen = set()    # ids of every event and timer ever handed over
        self.timer_watches = 0
        self.loop = None
        self.expired = False

    def armed(self):
        return len(self.watches) + len(self.timers)

    def quit_if_idle(self):
        if self.loop is not None and self.armed() == 0:
            self.loop.quit()

    def do_update_event(self, event, action, flags):
        self.seen.add(id(event))
        if event in self.watches:
            GLib.source_remove(self.watches.pop(event)[0])
        if action == WATCH and flags:
            cond = GLib.IOCondition.HUP | GLib.IOCondition.ERR
            if flags & READ:
                cond |= GLib.IOCondition.IN
            if flags & WRITE:
                cond |= GLib.IOCondition.OUT
            source = GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, event.fileno(), cond,
                                           self.on_fd, event)
            self.watches[event] = (source, flags)
        self.quit_if_idle()

    def on_fd(self, fd, cond, event):
        flags = self.watches.pop(event)[1]
        if cond & (GLib.IOCondition.ERR | GLib.IOCondition.HUP | GLib.IOCondition.NVAL):
            ready = flags
        else:
            ready = Iops.EventFlags(0)
            if cond & GLib.IOCondition.IN:
                ready |= READ
            if cond & GLib.IOCondition.OUT:
                ready |= WRITE
            ready &= flags
        if ready == RW:
            event.ready_rw()
        elif ready == WRITE:
            event.ready_w()
        else:
            event.ready_r()
        self.quit_if_idle()
        return GLib.SOURCE_REMOVE

    def do_update_timer(self, timer, action, usecs):
        self.seen.add(id(timer))
        if timer in self.timers:
            GLib.source_remove(self.timers.pop(timer))
        if action == WATCH:
            self.timer_watches += 1
            self.timers[timer] = GLib.timeout_add((usecs + 999) // 1000, self.on_timer, timer)
        self.quit_if_idle()

    def on_timer(self, timer):
        del self.timers[timer]
        timer.ready(0)
        self.quit_if_idle()
        return GLib.SOURCE_REMOVE

    def do_start_watching(self):
        if self.armed() == 0:
            return
        self.loop = GLib.MainLoop.new(None, False)
        watchdog = GLib.timeout_add_seconds(DEADLINE_S, self.on_watchdog)
        self.loop.run()
        self.loop = None
        if GLib.main_context_default().find_source_by_id(watchdog) is not None:
            GLib.source_remove(watchdog)

    def on_watchdog(self):
        self.expired = True
        self.loop.quit()
        return GLib.SOURCE_REMOVE

    def do_stop_watching(self):
        if self.loop is not None:
            self.loop.quit()


# -- hiredis and the bridge through ctypes -----------------------------------

class RedisReply(ctypes.Structure):
    _fields_ = [('type', ctypes.c_int), ('integer', ctypes.c_longlong),
                ('len', ctypes.c_size_t), ('str', ctypes.c_char_p),
                ('elements', ctypes.c_size_t), ('element', ctypes.c_void_p)]


REPLY_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(RedisReply), ctypes.c_void_p)
STATUS_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int)

hiredis = ctypes.CDLL('libhiredis.so.0.14')
hiredis.redisAsyncConnect.restype = ctypes.c_void_p
hiredis.redisAsyncConnect.argtypes = [ctypes.c_char_p, ctypes.c_int]
hiredis.redisAsyncSetDisconnectCallback.argtypes = [ctypes.c_void_p, STATUS_FN]
hiredis.redisAsyncDisconnect.argtypes = [ctypes.c_void_p]
hiredis.redisAsyncCommandArgv.argtypes = [ctypes.c_void_p, REPLY_FN, ctypes.c_void_p,
                                          ctypes.c_int, ctypes.POINTER(ctypes.c_char_p),
                                          ctypes.POINTER(ctypes.c_size_t)]
bridge = ctypes.CDLL(os.environ['IOPS_HIREDIS_LIB'])
bridge.iops_hiredis_attach.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
bridge.iops_hiredis_set_command_timeout.argtypes = [ctypes.c_void_p, ctypes.c_int64]

ctypes.pythonapi.PyCapsule_GetPointer.restype = ctypes.c_void_p
ctypes.pythonapi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def gobject_pointer(obj):
    return ctypes.pythonapi.PyCapsule_GetPointer(obj.__gpointer__, None)


class Connection:
    """One redisAsyncContext attached to @iops, its replies checked against
    what each command expects."""

    def __init__(self, iops, port):
        self.replies = []           # (expected, got) in arrival order
        self.disconnect_status = None
        self.sent = 0
        self.ac = hiredis.redisAsyncConnect(b'127.0.0.1', port)
        assert self.ac, 'redisAsyncConnect failed'
        assert bridge.iops_hiredis_attach(self.ac, gobject_pointer(iops)) == REDIS_OK
        self.on_reply = REPLY_FN(self._on_reply)        # kept alive with self
        self.on_disconnect = STATUS_FN(self._on_disconnect)
        hiredis.redisAsyncSetDisconnectCallback(self.ac, self.on_disconnect)
        self.expected = {}

    def command(self, expected, *args):
        argv = (ctypes.c_char_p * len(args))(*args)
        lens = (ctypes.c_size_t * len(args))(*[len(a) for a in args])
        self.sent += 1
        self.expected[self.sent] = expected
        assert hiredis.redisAsyncCommandArgv(self.ac, self.on_reply, self.sent,
                                             len(args), argv, lens) == REDIS_OK

    def _on_reply(self, ac, reply, tag):
        expected = self.expected.pop(tag)
        if not reply:
            got = None
        else:
            r = reply.contents
            got = r.integer if r.type == REDIS_REPLY_INTEGER else (r.type, r.str)
        self.replies.append((expected, got))
        if not self.expected and got is not None:
            hiredis.redisAsyncDisconnect(ac)

    def _on_disconnect(self, ac, status):
        self.disconnect_status = status


# -- the server ---------------------------------------------------------------

def unused_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def die_with_parent():
    """In the child: a crash of this test must not leave the server running."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, 9)


def start_redis():
    port = unused_port()
    proc = subprocess.Popen(['redis-server', '--port', str(port), '--bind', '127.0.0.1',
                             '--save', '', '--appendonly', 'no'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent)
    deadline = time.monotonic() + DEADLINE_S
    output = b''
    while b'Ready to accept connections' not in output:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            proc.kill()
            raise AssertionError('redis-server did not get ready: %r' % output)
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            raise AssertionError('redis-server exited: %r' % output)
        output += chunk
    return proc, port


def stop_redis(proc):
    proc.terminate()
    proc.wait(DEADLINE_S)
    proc.stdout.close()


# -- the tests ----------------------------------------------------------------

def assert_released(iops):
    """Every event and timer the bridge handed over is released: the Python
    IOPS holds none, and none is still alive."""
    assert not iops.expired, 'start_watching did not return by itself'
    assert iops.armed() == 0, 'still armed: %r %r' % (iops.watches, iops.timers)
    assert iops.seen, 'the bridge never reached the Python IOPS'


def test_pipelined():
    proc, port = start_redis()
    try:
        iops = PythonIOPS()
        conns = [Connection(iops, port) for _ in range(4)]
        for n, conn in enumerate(conns):
            for i in range(50):
                key = b'py:%d:%d' % (n, i)
                value = b'value-%d-%d' % (n, i) * (1 + i % 7)
                conn.command((REDIS_REPLY_STATUS, b'OK'), b'SET', key, value)
                conn.command((REDIS_REPLY_STRING, value), b'GET', key)
                conn.command(i + 1, b'INCR', b'py:counter:%d' % n)
        iops.start_watching()
        for conn in conns:
            assert len(conn.replies) == conn.sent == 150, len(conn.replies)
            for expected, got in conn.replies:
                assert expected == got, (expected, got)
            assert conn.disconnect_status == REDIS_OK
        assert_released(iops)
    finally:
        stop_redis(proc)


def test_command_timeout():
    with socket.socket() as mute:
        mute.bind(('127.0.0.1', 0))
        mute.listen(8)                      # never accepts: the kernel does the handshake
        iops = PythonIOPS()
        conn = Connection(iops, mute.getsockname()[1])
        assert bridge.iops_hiredis_set_command_timeout(conn.ac, 100_000) == REDIS_OK
        started = GLib.get_monotonic_time()
        conn.command((REDIS_REPLY_STATUS, b'PONG'), b'PING')
        iops.start_watching()
        elapsed = GLib.get_monotonic_time() - started
        assert conn.replies == [((REDIS_REPLY_STATUS, b'PONG'), None)], conn.replies
        assert conn.disconnect_status != REDIS_OK
        assert elapsed >= 100_000, elapsed
        assert iops.timer_watches >= 1
        assert_released(iops)


def main():
    tests = [test_pipelined, test_command_timeout]
    print('1..%d' % len(tests))
    failed = 0
    for n, test in enumerate(tests, 1):
        try:
            test()
            print('ok %d - %s' % (n, test.__name__))
        except Exception:
            failed += 1
            print('not ok %d - %s' % (n, test.__name__))
            for line in traceback.format_exc().splitlines():
                print('# ' + line)
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
