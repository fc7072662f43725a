#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""One run of one Python benchmark system on one cell; prints a JSON line.

    worker.py --system NAME --workload pingpong|chain [--idle N]
              [--seconds S] [--warmup S] [--usecs U]

bench/python/run.py starts one fresh process per run, with the environment
the system needs (the in-tree overrides on PYTHONPATH, or not).

pingpong: one token crosses a socket pair; each delivery reads it (one byte,
checked), writes it back and, for a one-shot system, watches again. N more
fds (socket pair ends that never become ready) are watched the whole time.
The result is deliveries per second over --seconds, after --warmup.

chain: a timer of --usecs µs re-armed from its own callback; the result is
the mean time from arm to fire (µs) on the monotonic clock, with its 99th
percentile.
"""

import argparse
import asyncio
import json
import os
import resource
import selectors
import socket
import sys
import time

SYSTEMS = {}


def system(name):
    def register(cls):
        SYSTEMS[name] = cls
        return cls
    return register


class Failure(Exception):
    pass


class Meter:
    """Counts deliveries; after the warm-up, over the measuring window."""

    def __init__(self, warmup, seconds):
        self.warmup = warmup
        self.seconds = seconds
        self.n = 0
        self.next_check = 64
        self.t0 = None
        self.n0 = 0
        self.t1 = None
        self.n1 = 0
        self.cpu0 = self.cpu1 = None
        self.started = time.monotonic()

    def tick(self):
        """Counts one delivery; False once the window is over."""
        self.n += 1
        if self.n < self.next_check:
            return True
        return self._check()

    def _check(self):
        self.next_check = self.n + 64
        now = time.monotonic()
        if self.t0 is None:
            if now - self.started >= self.warmup:
                self.t0, self.n0 = now, self.n
                self.cpu0 = time.process_time()
            return True
        if now - self.t0 >= self.seconds:
            self.t1, self.n1 = now, self.n
            self.cpu1 = time.process_time()
            return False
        return True

    def rate(self):
        """Deliveries per second of wall-clock time."""
        if self.t1 is None:
            raise Failure('the run ended before its measuring window did')
        return (self.n1 - self.n0) / (self.t1 - self.t0)

    def cpu_rate(self):
        """Deliveries per second of this process's CPU time (user and
        system): what it would do alone on a core of a busy machine."""
        return (self.n1 - self.n0) / max(self.cpu1 - self.cpu0, 1e-9)


def socket_pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def idle_fds(n):
    socks = []
    for _ in range((n + 1) // 2):
        socks += socket_pair()
    return socks[:n], socks


def take_token(fd):
    data = os.read(fd, 8)
    if data != b't':
        raise Failure('fd %d: read %r, not the one token' % (fd, data))


class PingPong:
    """What every ping-pong system shares: the pair, the idle fds, checks."""

    def __init__(self, opts):
        self.opts = opts
        self.meter = Meter(opts.warmup, opts.seconds)
        self.pair = socket_pair()
        self.idle, self._idle_socks = idle_fds(opts.idle)
        self.parked = False
        self.errors = []

    def on_token(self, fd):
        """The work of a delivery; False when the token parks here."""
        take_token(fd)
        if not self.meter.tick():
            self.parked = True
            return False
        os.write(fd, b't')
        return True

    def on_idle(self, *_):
        self.errors.append('delivery to an idle fd')

    def start_token(self):
        os.write(self.pair[0].fileno(), b't')

    def verify(self):
        if self.errors:
            raise Failure(self.errors[0])
        if not self.parked:
            raise Failure('the token did not park')
        for sock in self.pair:
            try:
                data = sock.recv(8)
            except BlockingIOError:
                continue
            raise Failure('data left after the run (%r): a token was duplicated' % data)


# -- iops-glib -------------------------------------------------------------

def import_iops(want_overrides):
    if not want_overrides:
        # Keeps even installed overrides out: PyGObject looks them up with
        # pkgutil.get_loader(), which answers None for a None module.
        sys.modules['gi.overrides.Iops'] = None
    import gi
    gi.require_version('GLib', '2.0')
    gi.require_version('Iops', '1.0')
    from gi.repository import GLib, Iops
    loaded = sys.modules.get('gi.overrides.Iops') is not None
    if loaded != want_overrides:
        raise Failure('the Iops overrides are %s, this system needs them %s'
                      % ('loaded' if loaded else 'not loaded',
                         'loaded' if want_overrides else 'not loaded'))
    return GLib, Iops


# The Couchbase Python SDK's constants, as a consumer in its style has them.
PYCBC_EVACTION_WATCH = 1
PYCBC_EVACTION_UNWATCH = 2
PYCBC_EVACTION_CLEANUP = 16
LCB_READ_EVENT = 2
LCB_WRITE_EVENT = 4
LCB_RW_EVENT = 6


class SdkEnd:
    """A connection end as the SDK's consumer hands it to an IOPS: fileno()
    and ready_*(), re-armed with plain ints."""

    def __init__(self, bench, iops, sock):
        self.bench = bench
        self.iops = iops
        self.sock = sock

    def fileno(self):
        return self.sock.fileno()

    def ready_r(self):
        if self.bench.on_token(self.sock.fileno()):
            self.iops.update_event(self, PYCBC_EVACTION_WATCH, LCB_READ_EVENT)
        else:
            self.iops.stop_watching()

    def ready_w(self):
        self.bench.errors.append('ready_w on a READ watch')

    def ready_rw(self):
        self.bench.errors.append('ready_rw on a READ watch')


class SdkIdle:
    def __init__(self, bench, sock):
        self.bench = bench
        self.sock = sock

    def fileno(self):
        return self.sock.fileno()

    def ready_r(self):
        self.bench.on_idle()

    ready_w = ready_rw = ready_r


def run_sdk_consumer(bench, iops):
    """The consumer side, in the SDK's style, on any IOPS with its API."""
    ends = [SdkEnd(bench, iops, sock) for sock in bench.pair]
    idle = [SdkIdle(bench, sock) for sock in bench.idle]
    for event in ends + idle:
        iops.update_event(event, PYCBC_EVACTION_WATCH, LCB_READ_EVENT)
    bench.start_token()
    iops.start_watching()
    for event in ends + idle:
        iops.update_event(event, PYCBC_EVACTION_CLEANUP, 0)


@system('sdk-duck')
class SdkDuck(PingPong):
    """The SDK-style consumer on Iops.GLibIOPS through the overrides."""

    def run(self):
        _, Iops = import_iops(True)
        run_sdk_consumer(self, Iops.GLibIOPS.new(None))


class SubclassPingPong(PingPong):
    overrides = True
    persistent = False

    def run(self):
        _, Iops = import_iops(self.overrides)
        WATCH = Iops.EvAction.WATCH
        CLEANUP = Iops.EvAction.CLEANUP
        READ = Iops.EventFlags.READ_EVENT
        iops = Iops.GLibIOPS.new(None)
        iops.props.persistent = self.persistent
        bench = self

        class End(Iops.IOEvent):
            def __init__(self, fd):
                super().__init__(fd=fd)
                self.fd = fd

            def do_ready_r(self):
                if bench.on_token(self.fd):
                    iops.update_event(self, WATCH, READ)
                else:
                    iops.stop_watching()

        class PersistentEnd(End):
            def do_ready_r(self):
                if not bench.on_token(self.fd):
                    iops.stop_watching()

        if self.persistent:
            End = PersistentEnd  # noqa: N806

        class Idle(Iops.IOEvent):
            def do_ready_r(self):
                bench.on_idle()

            do_ready_w = do_ready_rw = do_ready_r

        events = [End(sock.fileno()) for sock in self.pair]
        events += [Idle(fd=sock.fileno()) for sock in self.idle]
        for event in events:
            iops.update_event(event, WATCH, READ)
        self.start_token()
        iops.start_watching()
        for event in events:
            iops.update_event(event, CLEANUP, Iops.EventFlags(0))


@system('iops-subclass')
class IopsSubclass(SubclassPingPong):
    """An Iops.IOEvent subclass overriding do_ready_r, overrides loaded."""


@system('iops-subclass-bare')
class IopsSubclassBare(SubclassPingPong):
    """The same without the overrides: what they cost this path."""
    overrides = False


@system('iops-subclass-persistent')
class IopsSubclassPersistent(SubclassPingPong):
    """The subclass on a persistent IOPS: watched once, never re-armed."""
    persistent = True


@system('iops-signal')
class IopsSignal(PingPong):
    """Plain Iops.IOEvent objects and a "ready" signal handler."""

    def run(self):
        _, Iops = import_iops(True)
        WATCH = Iops.EvAction.WATCH
        READ = Iops.EventFlags.READ_EVENT
        iops = Iops.GLibIOPS.new(None)

        def on_ready(event, flags):
            if self.on_token(event.fd):
                iops.update_event(event, WATCH, READ)
            else:
                iops.stop_watching()

        events = []
        for sock in self.pair:
            event = Iops.IOEvent.new(sock.fileno())
            event.fd = sock.fileno()
            event.connect('ready', on_ready)
            events.append(event)
        for sock in self.idle:
            event = Iops.IOEvent.new(sock.fileno())
            event.connect('ready', self.on_idle)
            events.append(event)
        for event in events:
            iops.update_event(event, WATCH, READ)
        self.start_token()
        iops.start_watching()
        for event in events:
            iops.update_event(event, Iops.EvAction.CLEANUP, 0)


@system('glib-fdadd')
class GLibFdAdd(PingPong):
    """GLib.unix_fd_add_full, a new source per delivery."""

    def run(self):
        GLib, _ = import_iops(True)
        loop = GLib.MainLoop.new(None, False)
        cond = GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR

        def on_ready(fd, condition, user_data):
            if self.on_token(fd):
                GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, fd, cond, on_ready, None)
            else:
                loop.quit()
            return GLib.SOURCE_REMOVE

        for sock in self.pair:
            GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, sock.fileno(), cond, on_ready, None)
        idle_ids = [GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, sock.fileno(), cond,
                                          lambda *_: self.on_idle() or True, None)
                    for sock in self.idle]
        self.start_token()
        loop.run()
        for source_id in idle_ids:
            GLib.source_remove(source_id)


class AsyncioPingPong(PingPong):
    """add_reader on the pair and the idle fds. One-shot, as the IOPS
    contract (and an IOPS on asyncio) has it: each delivery removes its
    reader and adds it again; the persistent variant leaves it installed."""

    persistent = False

    def new_loop(self):
        raise NotImplementedError

    def run(self):
        loop = self.new_loop()

        def on_ready(fd):
            if self.persistent:
                if not self.on_token(fd):
                    loop.stop()
                return
            loop.remove_reader(fd)
            if self.on_token(fd):
                loop.add_reader(fd, on_ready, fd)
            else:
                loop.stop()

        for sock in self.pair:
            loop.add_reader(sock.fileno(), on_ready, sock.fileno())
        for sock in self.idle:
            loop.add_reader(sock.fileno(), self.on_idle)
        self.start_token()
        loop.run_forever()
        loop.close()


@system('asyncio')
class Asyncio(AsyncioPingPong):
    def new_loop(self):
        return asyncio.SelectorEventLoop(selectors.DefaultSelector())


class Skipped(Exception):
    pass


@system('uvloop')
class Uvloop(AsyncioPingPong):
    def new_loop(self):
        try:
            import uvloop
        except ImportError:
            raise Skipped('uvloop is not installed (Debian: python3-uvloop)') from None
        return uvloop.new_event_loop()


@system('asyncio-persistent')
class AsyncioPersistent(Asyncio):
    persistent = True


@system('uvloop-persistent')
class UvloopPersistent(Uvloop):
    persistent = True


class SelectorsIOPS:
    """A pure-Python IOPS on selectors, with the SDK's API and one-shot
    watches. A delivered watch is disarmed before its callback; an fd that
    no callback re-armed is unregistered after the dispatch round, so the
    usual re-arm from the callback costs no system call."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.armed = {}          # event -> flags, armed watches
        self.registered = {}     # event -> (fd, flags) in the selector
        self.running = False

    def update_event(self, event, action, flags):
        if action == PYCBC_EVACTION_WATCH and flags:
            fd = event.fileno()
            mask = ((selectors.EVENT_READ if flags & LCB_READ_EVENT else 0)
                    | (selectors.EVENT_WRITE if flags & LCB_WRITE_EVENT else 0))
            current = self.registered.get(event)
            if current is None:
                self.selector.register(fd, mask, event)
            elif current != (fd, mask):
                self.selector.unregister(current[0])
                self.selector.register(fd, mask, event)
            self.registered[event] = (fd, mask)
            self.armed[event] = flags
        else:
            self.armed.pop(event, None)
            if action == PYCBC_EVACTION_CLEANUP and event in self.registered:
                self.selector.unregister(self.registered.pop(event)[0])

    def start_watching(self):
        self.running = True
        while self.running and self.armed:
            delivered = []
            for key, mask in self.selector.select():
                event = key.data
                flags = self.armed.pop(event, 0)
                if not flags:
                    continue
                delivered.append(event)
                ready = ((LCB_READ_EVENT if mask & selectors.EVENT_READ else 0)
                         | (LCB_WRITE_EVENT if mask & selectors.EVENT_WRITE else 0)) & flags
                if ready == LCB_RW_EVENT:
                    event.ready_rw()
                elif ready == LCB_WRITE_EVENT:
                    event.ready_w()
                else:
                    event.ready_r()
            for event in delivered:
                if event not in self.armed and event in self.registered:
                    self.selector.unregister(self.registered.pop(event)[0])

    def stop_watching(self):
        self.running = False


@system('selectors-iops')
class SelectorsSdk(PingPong):
    """The same SDK-style consumer on a pure-Python selectors IOPS."""

    def run(self):
        run_sdk_consumer(self, SelectorsIOPS())


# -- timer chain -----------------------------------------------------------

class Chain:
    def __init__(self, opts):
        self.opts = opts
        self.meter = Meter(opts.warmup, opts.seconds)
        self.samples = []
        self.armed_at = 0

    def fired(self):
        """Records one fire; False once the window is over."""
        now = time.monotonic_ns()
        if self.meter.t0 is not None:
            self.samples.append(now - self.armed_at)
        return self.meter.tick()

    def arm_time(self):
        self.armed_at = time.monotonic_ns()

    # Whether firing before the delay is a failure (the IOPS contract) or
    # just reported (a loop that rounds sub-millisecond delays down).
    may_fire_early = False

    def early(self):
        return [s for s in self.samples if s < self.opts.usecs * 1000]

    def verify(self):
        if len(self.samples) < 10:
            raise Failure('only %d timer fires measured' % len(self.samples))
        early = self.early()
        if early and not self.may_fire_early:
            raise Failure('%d timers fired early (first: %d ns)' % (len(early), early[0]))

    def result(self):
        samples = sorted(self.samples)
        mean_us = sum(samples) / len(samples) / 1000
        p99_us = samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1000
        return mean_us, p99_us


@system('sdk-duck-timer')
class SdkTimer(Chain):
    """A duck-typed timer with ready(flags), ints, through the overrides."""

    def run(self):
        _, Iops = import_iops(True)
        iops = Iops.GLibIOPS.new(None)
        bench = self
        usecs = self.opts.usecs

        class Timer:
            def ready(self, flags):
                if bench.fired():
                    bench.arm_time()
                    iops.update_timer(self, PYCBC_EVACTION_WATCH, usecs)

        timer = Timer()
        self.arm_time()
        iops.update_timer(timer, PYCBC_EVACTION_WATCH, usecs)
        iops.start_watching()
        iops.update_timer(timer, PYCBC_EVACTION_CLEANUP, 0)


@system('iops-subclass-timer')
class SubclassTimer(Chain):
    """An Iops.TimerEvent subclass overriding do_ready."""

    def run(self):
        _, Iops = import_iops(True)
        WATCH = Iops.EvAction.WATCH
        iops = Iops.GLibIOPS.new(None)
        bench = self
        usecs = self.opts.usecs

        class Timer(Iops.TimerEvent):
            def do_ready(self, flags):
                if bench.fired():
                    bench.arm_time()
                    iops.update_timer(self, WATCH, usecs)

        timer = Timer()
        self.arm_time()
        iops.update_timer(timer, WATCH, usecs)
        iops.start_watching()


class AsyncioChain(Chain):
    may_fire_early = True

    def run(self):
        loop = self.new_loop()
        delay = self.opts.usecs / 1e6

        def fire():
            if self.fired():
                self.arm_time()
                loop.call_later(delay, fire)
            else:
                loop.stop()

        self.arm_time()
        loop.call_later(delay, fire)
        loop.run_forever()
        loop.close()


@system('asyncio-timer')
class AsyncioTimer(AsyncioChain):
    new_loop = Asyncio.new_loop


@system('uvloop-timer')
class UvloopTimer(AsyncioChain):
    new_loop = Uvloop.new_loop


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--system', required=True, choices=sorted(SYSTEMS))
    parser.add_argument('--idle', type=int, default=0)
    parser.add_argument('--seconds', type=float, default=0.5)
    parser.add_argument('--warmup', type=float, default=0.05)
    parser.add_argument('--usecs', type=int, default=100)
    opts = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = opts.idle + 64
    if soft < want:
        if hard < want:
            print(json.dumps({'system': opts.system, 'skipped':
                              'needs %d fds, the hard limit is %d' % (want, hard)}))
            return 0
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    bench = SYSTEMS[opts.system](opts)
    try:
        bench.run()
        bench.verify()
    except Skipped as e:
        print(json.dumps({'system': opts.system, 'skipped': str(e)}))
        return 0
    except Failure as e:
        print('%s: %s' % (opts.system, e), file=sys.stderr)
        return 1
    record = {'system': opts.system}
    if isinstance(bench, Chain):
        mean_us, p99_us = bench.result()
        record.update(value=mean_us, p99_us=p99_us, unit='µs arm-to-fire',
                      fires=len(bench.samples), early=len(bench.early()))
    else:
        record.update(value=bench.meter.rate(), cpu_value=bench.meter.cpu_rate(),
                      unit='deliveries/s', idle=opts.idle)
    print(json.dumps(record))
    return 0


if __name__ == '__main__':
    sys.exit(main())
