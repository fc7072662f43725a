#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A consumer written only the way the Couchbase Python SDK talks to an IOPS,
running on Iops.GLibIOPS.

The consumer (everything above the tests) never names an Iops class: it gets
an IOPS object and hands it duck-typed events -- objects with fileno(),
ready_r(), ready_w(), ready_rw() -- and timers with ready(flags), with the
SDK's plain-int constants. It runs a TCP echo server and clients on
127.0.0.1: non-blocking connect (completion seen through ready_w), requests
and replies with partial reads and writes, a timeout timer per request, a
server that drops some requests so that timeouts fire, and a periodic timer.

Run with GI_TYPELIB_PATH, LD_LIBRARY_PATH at build/src and PYTHONPATH at the
checkout's python/ folder; meson test does this.
"""

import errno
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_iops  # noqa: E402  the fixtures and the TAP printer
from test_iops import DEADLINE_MS, GLib, IopsTestCase  # noqa: E402

if 'gi.overrides.Iops' not in sys.modules:
    sys.exit('Bail out! the Iops overrides were not loaded: put the '
             "checkout's python/ folder on PYTHONPATH")

# -- the consumer: the SDK's constants and event objects -----------------

PYCBC_EVACTION_WATCH = 1
PYCBC_EVACTION_UNWATCH = 2
PYCBC_EVACTION_CLEANUP = 16
LCB_READ_EVENT = 2
LCB_WRITE_EVENT = 4
LCB_RW_EVENT = 6


class Event:
    """An fd event in the SDK's shape; subclasses say what readiness does."""

    def __init__(self, iops, sock):
        self.iops = iops
        self.sock = sock

    def fileno(self):
        return self.sock.fileno()

    def watch(self, flags):
        self.iops.update_event(self, PYCBC_EVACTION_WATCH, flags)

    def close(self):
        self.iops.update_event(self, PYCBC_EVACTION_CLEANUP, 0)
        self.sock.close()

    def ready_r(self):
        self.on_ready(LCB_READ_EVENT)

    def ready_w(self):
        self.on_ready(LCB_WRITE_EVENT)

    def ready_rw(self):
        self.on_ready(LCB_RW_EVENT)


class Timer:
    """A timer in the SDK's shape: ready(flags) calls back."""

    def __init__(self, iops, callback):
        self.iops = iops
        self.callback = callback

    def schedule(self, usecs):
        self.iops.update_timer(self, PYCBC_EVACTION_WATCH, usecs)

    def cancel(self):
        self.iops.update_timer(self, PYCBC_EVACTION_UNWATCH, 0)

    def destroy(self):
        self.iops.update_timer(self, PYCBC_EVACTION_CLEANUP, 0)

    def ready(self, flags):
        if flags != 0:
            raise AssertionError('timer flags %r, not 0' % flags)
        self.callback()


class Stats:
    def __init__(self):
        self.accepted = 0
        self.replies = 0
        self.timeouts = 0
        self.dropped = 0
        self.ticks = 0
        self.errors = []


class Listener(Event):
    def __init__(self, iops, stats, drop_every):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(('127.0.0.1', 0))
        sock.listen(128)
        sock.setblocking(False)
        super().__init__(iops, sock)
        self.stats = stats
        self.drop_every = drop_every
        self.conns = set()
        self.watch(LCB_READ_EVENT)

    def on_ready(self, flags):
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                break
            conn.setblocking(False)
            self.stats.accepted += 1
            self.conns.add(ServerConn(self, conn))
        self.watch(LCB_READ_EVENT)


class ServerConn(Event):
    """Echoes each newline-ended request, but swallows every Nth."""

    def __init__(self, listener, sock):
        super().__init__(listener.iops, sock)
        self.listener = listener
        self.inbox = b''
        self.outbox = b''
        self.seen = 0
        self.watch(LCB_READ_EVENT)

    def on_ready(self, flags):
        if flags & LCB_READ_EVENT:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                data = None
            if data == b'':
                self.listener.conns.discard(self)
                self.close()
                return
            self.inbox += data or b''
            while b'\n' in self.inbox:
                line, self.inbox = self.inbox.split(b'\n', 1)
                self.seen += 1
                if self.listener.drop_every and self.seen % self.listener.drop_every == 0:
                    self.listener.stats.dropped += 1
                    continue
                self.outbox += line + b'\n'
        if self.outbox:
            try:
                sent = self.sock.send(self.outbox)
                self.outbox = self.outbox[sent:]
            except BlockingIOError:
                pass
        self.watch(LCB_RW_EVENT if self.outbox else LCB_READ_EVENT)


class Client(Event):
    """Connects, then sends requests one at a time, each with a timeout."""

    def __init__(self, iops, stats, port, requests, size, timeout_us, done):
        sock = socket.socket()
        sock.setblocking(False)
        super().__init__(iops, sock)
        self.stats = stats
        self.left = requests
        self.size = size
        self.timeout_us = timeout_us
        self.done = done
        self.connected = False
        self.pending = b''
        self.expected = None
        self.received = b''
        self.number = 0
        self.timer = Timer(iops, self.on_timeout)
        err = sock.connect_ex(('127.0.0.1', port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, os.strerror(err))
        self.watch(LCB_WRITE_EVENT)

    def next_request(self):
        if self.left == 0:
            self.timer.destroy()
            self.close()
            self.done(self)
            return
        self.left -= 1
        self.number += 1
        body = (b'%d:' % self.number).ljust(self.size, b'x')
        self.pending = body + b'\n'
        self.expected = self.pending
        self.received = b''
        self.timer.schedule(self.timeout_us)
        self.watch(LCB_RW_EVENT)

    def on_timeout(self):
        self.stats.timeouts += 1
        self.next_request()

    def on_ready(self, flags):
        if not self.connected:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.stats.errors.append(os.strerror(err))
                self.close()
                self.done(self)
                return
            self.connected = True
            self.next_request()
            return
        if flags & LCB_WRITE_EVENT and self.pending:
            sent = self.sock.send(self.pending)
            self.pending = self.pending[sent:]
        if flags & LCB_READ_EVENT:
            try:
                self.received += self.sock.recv(65536)
            except BlockingIOError:
                pass
            if self.received == self.expected:
                self.timer.cancel()
                self.stats.replies += 1
                self.next_request()
                return
            if len(self.received) > len(self.expected):
                self.stats.errors.append('reply %r' % self.received[:40])
        self.watch(LCB_RW_EVENT if self.pending else LCB_READ_EVENT)


def run_echo(iops, clients, requests, size, timeout_us, drop_every):
    """Runs the whole exchange on @iops; returns the Stats."""
    stats = Stats()
    listener = Listener(iops, stats, drop_every)
    port = listener.sock.getsockname()[1]
    running = set()

    def done(client):
        running.discard(client)
        if not running:
            listener.close()

    for _ in range(clients):
        running.add(Client(iops, stats, port, requests, size, timeout_us, done))
    iops.start_watching()
    return stats


# -- the tests -------------------------------------------------------------

class TestSdkStyleConsumer(IopsTestCase):

    def check_echo(self, clients, requests, size, drop_every=0):
        timeout_us = 50_000 if drop_every else 10_000_000
        stats = run_echo(self.iops, clients, requests, size, timeout_us, drop_every)
        self.assertEqual(stats.errors, [])
        self.assertEqual(stats.accepted, clients)
        self.assertEqual(stats.replies + stats.timeouts, clients * requests)
        self.assertEqual(stats.timeouts, stats.dropped)
        return stats

    def test_echo_ping_pong(self):
        stats = self.check_echo(clients=8, requests=200, size=64)
        self.assertEqual(stats.timeouts, 0)

    def test_large_requests_with_partial_writes(self):
        stats = self.check_echo(clients=3, requests=5, size=1 << 20)
        self.assertEqual(stats.timeouts, 0)

    def test_timeouts_fire_for_dropped_requests(self):
        stats = self.check_echo(clients=4, requests=20, size=32, drop_every=7)
        self.assertGreater(stats.timeouts, 0)

    def test_persistent_mode(self):
        self.iops.props.persistent = True
        self.check_echo(clients=4, requests=100, size=64, drop_every=11)

    def test_periodic_timer_and_the_application_loop(self):
        # No start_watching: the context's own loop delivers (GTK's would).
        ticks = []
        start = GLib.get_monotonic_time()

        def tick():
            ticks.append(GLib.get_monotonic_time())
            if len(ticks) < 20:
                timer.schedule(1000)

        timer = Timer(self.iops, tick)
        timer.schedule(1000)
        self.iterate_until(lambda: len(ticks) == 20)
        for i, when in enumerate(ticks):
            self.assertGreaterEqual(when - start, 1000 * (i + 1), 'a tick came early')
        timer.destroy()

    def test_consumer_never_names_an_iops_class(self):
        # The consumer's code, between its two section lines, is handed only
        # the IOPS object: no Iops name appears in it.
        with open(os.path.abspath(__file__), encoding='utf-8') as f:
            source = f.read()
        consumer = source[source.index('# -- the consumer'):source.index('# -- the tests')]
        self.assertGreater(consumer.count('update_event'), 1)
        self.assertNotIn('Iops', consumer)

class TestDocExamples(IopsTestCase):
    """The runnable examples of docs/python.md run and exit cleanly (the
    GTK one needs a display and is left to the reader)."""

    def test_python_page_examples(self):
        import subprocess
        page = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            '..', '..', 'docs', 'python.md')
        with open(page, encoding='utf-8') as f:
            blocks = re.findall(r'```python\n(.*?)```', f.read(), re.S)
        programs = [b for b in blocks if b.startswith('import') and 'Gtk' not in b
                    and 'start_watching()' in b]
        self.assertGreaterEqual(len(programs), 2)
        for program in programs:
            proc = subprocess.run([sys.executable, '-c', program], capture_output=True,
                                  text=True, timeout=DEADLINE_MS / 1000)
            self.assertEqual((proc.returncode, proc.stderr), (0, ''), program)
            self.assertTrue(proc.stdout)


if __name__ == '__main__':
    loader = test_iops.unittest.TestLoader()
    suite = loader.loadTestsFromTestCase(TestSdkStyleConsumer)
    suite.addTests(loader.loadTestsFromTestCase(TestDocExamples))
    print('1..%d' % suite.countTestCases())
    print('# backend: %s' % test_iops.BACKEND)
    result = test_iops.TapResult()
    suite.run(result)
    sys.exit(0 if result.wasSuccessful() else 1)
