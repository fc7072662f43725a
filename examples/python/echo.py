#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A TCP echo server and N clients on 127.0.0.1, driven through Iops.IOPS.

    echo.py [--clients N] [--requests M] [--size BYTES] [--timeout SECONDS]

Every client connects, then sends M requests one after the other and waits
for each echo, with a timeout timer per request. All sockets are
non-blocking; the only event loop calls are the IOPS interface's:
update_event() to watch an fd, update_timer() for the timeouts and
start_watching() to run. Watches are one-shot, so each callback watches
again for what it needs next.

start_watching() returns by itself once nothing is armed: when every client
is done, the server stops listening, and each server connection goes away
at its client's EOF. Exits 0 when every request made its round trip.
"""

import argparse
import errno
import socket
import sys
import time

import gi

gi.require_version('Iops', '1.0')
from gi.repository import Iops  # noqa: E402

WATCH = Iops.EvAction.WATCH
CLEANUP = Iops.EvAction.CLEANUP
UNWATCH = Iops.EvAction.UNWATCH
READ = Iops.EventFlags.READ_EVENT
WRITE = Iops.EventFlags.WRITE_EVENT
NONE = Iops.EventFlags(0)


class SocketEvent(Iops.IOEvent):
    """Watches a socket; hands what is ready to on_ready(flags)."""

    def __init__(self, sock, on_ready):
        super().__init__()
        self.sock = sock
        self.on_ready = on_ready

    def do_fileno(self):
        return self.sock.fileno()

    def do_ready_r(self):
        self.on_ready(READ)

    def do_ready_w(self):
        self.on_ready(WRITE)

    def do_ready_rw(self):
        self.on_ready(READ | WRITE)


class TimeoutEvent(Iops.TimerEvent):
    """A timer that calls on_timeout()."""

    def __init__(self, on_timeout):
        super().__init__()
        self.on_timeout = on_timeout

    def do_ready(self, flags):
        self.on_timeout()


class Stats:
    connections = 0
    round_trips = 0
    timeouts = 0
    errors = 0


class Connection:
    """One end of a TCP connection: a socket, its watch and what is left to
    send. Subclasses say what to do with received bytes."""

    def __init__(self, iops, sock):
        self.iops = iops
        self.sock = sock
        self.sock.setblocking(False)
        self.outgoing = b''
        self.event = SocketEvent(sock, self.on_ready)

    def watch(self):
        """Watch for incoming data, and for room to write if any is left."""
        flags = READ | (WRITE if self.outgoing else NONE)
        self.iops.update_event(self.event, WATCH, flags)

    def send(self, data):
        self.outgoing += data
        self.flush()

    def flush(self):
        try:
            sent = self.sock.send(self.outgoing)
        except BlockingIOError:
            sent = 0
        self.outgoing = self.outgoing[sent:]

    def on_ready(self, flags):
        try:
            if flags & WRITE:
                self.flush()
            if flags & READ:
                data = self.sock.recv(65536)
                if not data:
                    self.closed_by_peer()
                    return
                self.received(data)
        except BlockingIOError:
            pass
        except OSError as error:
            self.failed(error)
            return
        if self.sock.fileno() >= 0:
            self.watch()

    def close(self):
        # CLEANUP: the IOPS forgets the event and drops its references.
        self.iops.update_event(self.event, CLEANUP, NONE)
        self.sock.close()

    def received(self, data):
        raise NotImplementedError

    def closed_by_peer(self):
        self.close()

    def failed(self, error):
        self.close()


class EchoConnection(Connection):
    """The server's side of a connection: sends back what it receives."""

    def received(self, data):
        self.send(data)


class Server:
    def __init__(self, iops, stats):
        self.iops = iops
        self.stats = stats
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(128)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.event = SocketEvent(self.sock, self.on_ready)
        self.iops.update_event(self.event, WATCH, READ)

    def on_ready(self, flags):
        while True:
            try:
                sock, _ = self.sock.accept()
            except BlockingIOError:
                break
            self.stats.connections += 1
            EchoConnection(self.iops, sock).watch()
        self.iops.update_event(self.event, WATCH, READ)

    def close(self):
        self.iops.update_event(self.event, CLEANUP, NONE)
        self.sock.close()


class Client(Connection):
    """Connects, then sends `requests` requests one at a time; each one must
    be echoed before `timeout_us` has passed."""

    def __init__(self, iops, port, number, args, stats, on_done):
        super().__init__(iops, socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        self.number = number
        self.args = args
        self.stats = stats
        self.on_done = on_done
        self.sent = 0
        self.expected = b''
        self.echo = b''
        self.timer = TimeoutEvent(self.on_timeout)

        error = self.sock.connect_ex(('127.0.0.1', port))
        if error not in (0, errno.EINPROGRESS):
            raise OSError(error, 'connect')
        self.connecting = True
        # Writable means connected (or failed: SO_ERROR tells).
        self.iops.update_event(self.event, WATCH, WRITE)
        self.arm_timeout()

    def arm_timeout(self):
        self.iops.update_timer(self.timer, WATCH, self.args.timeout_us)

    def on_ready(self, flags):
        if self.connecting:
            error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                self.failed(OSError(error, 'connect'))
                return
            self.connecting = False
            self.next_request()
            return
        super().on_ready(flags)

    def next_request(self):
        if self.sent == self.args.requests:
            self.finish()
            return
        line = b'client %d request %d ' % (self.number, self.sent)
        self.expected = line.ljust(self.args.size - 1, b'.') + b'\n'
        self.echo = b''
        self.sent += 1
        self.arm_timeout()
        self.send(self.expected)
        self.watch()

    def received(self, data):
        self.echo += data
        if len(self.echo) < len(self.expected):
            return
        if self.echo != self.expected:
            self.failed(ValueError('wrong echo'))
            return
        self.stats.round_trips += 1
        self.iops.update_timer(self.timer, UNWATCH, 0)
        self.next_request()

    def on_timeout(self):
        self.stats.timeouts += 1
        what = 'connect' if self.connecting else 'request %d' % (self.sent - 1)
        print('client %d: %s timed out' % (self.number, what), file=sys.stderr)
        self.finish()

    def closed_by_peer(self):
        self.failed(ConnectionError('server closed the connection'))

    def failed(self, error):
        self.stats.errors += 1
        print('client %d: %s' % (self.number, error), file=sys.stderr)
        self.finish()

    def finish(self):
        self.iops.update_timer(self.timer, CLEANUP, 0)
        self.close()
        self.on_done()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--clients', type=int, default=10)
    parser.add_argument('--requests', type=int, default=100,
                        help='requests per client')
    parser.add_argument('--size', type=int, default=64,
                        help='bytes per request (at least 32)')
    parser.add_argument('--timeout', type=float, default=5.0,
                        help='seconds each request may take')
    args = parser.parse_args()
    args.size = max(args.size, 32)
    args.timeout_us = int(args.timeout * 1_000_000)
    return args


def main():
    args = parse_args()
    stats = Stats()
    iops = Iops.GLibIOPS.new(None)
    server = Server(iops, stats)
    running = args.clients

    def client_done():
        nonlocal running
        running -= 1
        if running == 0:
            server.close()  # the last armed watch goes once clients close

    start = time.monotonic()
    clients = [Client(iops, server.port, n, args, stats, client_done)
               for n in range(args.clients)]
    if not clients:
        server.close()
    iops.start_watching()
    elapsed = time.monotonic() - start

    expected = args.clients * args.requests
    print('connections: %d' % stats.connections)
    print('round trips: %d of %d' % (stats.round_trips, expected))
    print('timeouts:    %d' % stats.timeouts)
    print('errors:      %d' % stats.errors)
    print('elapsed:     %.3f s' % elapsed)
    ok = (stats.round_trips == expected and stats.timeouts == 0
          and stats.errors == 0 and stats.connections == len(clients))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
