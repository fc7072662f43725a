#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Iops binding as Python sees it, through PyGObject.

Subclassing IOEvent and TimerEvent, the "ready" signals, enum and flag
values, fd watches over socket pairs, timers, UNWATCH, properties, an IOPS
implemented in Python and called through the interface, exceptions raised in
callbacks, and garbage-collection safety.

Every test is bounded: the main loop runs under a deadline source that stops
it and fails the test. Exceptions raised inside callbacks (which PyGObject
prints and swallows) and unexpected criticals from the library fail the test
that caused them. Results are printed as TAP.

Run from the build tree with GI_TYPELIB_PATH and LD_LIBRARY_PATH pointing at
build/src; meson test does this.
"""

import gc
import os
import socket
import sys
import threading
import traceback
import unittest
import warnings
import weakref

import gi

gi.require_version('GLib', '2.0')
gi.require_version('GObject', '2.0')
gi.require_version('Iops', '1.0')
from gi.repository import GLib, GObject, Iops  # noqa: E402
from gi.module import get_introspection_module  # noqa: E402

WATCH = Iops.EvAction.WATCH
UNWATCH = Iops.EvAction.UNWATCH
CLEANUP = Iops.EvAction.CLEANUP
READ = Iops.EventFlags.READ_EVENT
WRITE = Iops.EventFlags.WRITE_EVENT
RW = Iops.EventFlags.RW_EVENT
NO_FLAGS = Iops.EventFlags(0)

BACKEND = os.environ.get('IOPS_GLIB_BACKEND', 'default')
DEADLINE_MS = int(os.environ.get("IOPS_TEST_DEADLINE_MS", "20000"))
HOUR_US = 3600 * 1_000_000


# -- what callbacks and the library report behind the test's back ----------

# Criticals and warnings the library logs (g_return_if_fail and friends).
library_log = []


def _log_handler(domain, level, message, *user_data):
    library_log.append((domain, level, message))


GLib.log_set_handler('Iops',
                     GLib.LogLevelFlags.LEVEL_CRITICAL
                     | GLib.LogLevelFlags.LEVEL_WARNING,
                     _log_handler, None)

# PyGObject prints and swallows an exception raised in a vfunc or signal
# handler that C called; it goes through sys.excepthook, so record it there.
callback_exceptions = []


def _excepthook(exc_type, exc_value, exc_tb):
    callback_exceptions.append((exc_type, exc_value, exc_tb))


sys.excepthook = _excepthook


# -- helpers ---------------------------------------------------------------

class Watch(Iops.IOEvent):
    """An fd watch on a Python socket; records which ready_* was called."""

    def __init__(self, sock, on_ready=None):
        super().__init__()
        self.sock = sock
        self.on_ready = on_ready
        self.calls = []

    def do_fileno(self):
        return self.sock.fileno()

    def _ready(self, flags):
        self.calls.append(flags)
        if self.on_ready is not None:
            self.on_ready(self, flags)

    def do_ready_r(self):
        self._ready(READ)

    def do_ready_w(self):
        self._ready(WRITE)

    def do_ready_rw(self):
        self._ready(RW)


class Timer(Iops.TimerEvent):
    """A timer that records (its name, flags, monotonic time) when it fires."""

    def __init__(self, name, record, on_ready=None):
        super().__init__()
        self.name = name
        self.record = record
        self.on_ready = on_ready

    def do_ready(self, flags):
        self.record.append((self.name, flags, GLib.get_monotonic_time()))
        if self.on_ready is not None:
            self.on_ready(self)


class PyIOPS(GObject.Object, Iops.IOPS):
    """A small IOPS written in Python on the global default main context.

    It follows the contract's main lines (one-shot watches disarmed before
    the callback, start_watching returns once nothing is armed) and records
    every call that reaches it through the interface.
    """

    def __init__(self):
        super().__init__()
        self.calls = []
        self._watches = {}   # event -> (source id, flags)
        self._timers = {}    # timer -> source id
        self._loops = []

    @property
    def context(self):
        return GLib.MainContext.default()

    def _armed(self):
        return len(self._watches) + len(self._timers)

    def _quit_all_if_idle(self):
        if self._armed() == 0:
            for loop in self._loops:
                loop.quit()

    def do_update_event(self, event, action, flags):
        self.calls.append(('update_event', event, action, flags))
        if event in self._watches:
            GLib.source_remove(self._watches.pop(event)[0])
        if action == WATCH and flags:
            cond = GLib.IOCondition.HUP | GLib.IOCondition.ERR
            if flags & READ:
                cond |= GLib.IOCondition.IN
            if flags & WRITE:
                cond |= GLib.IOCondition.OUT
            sid = GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, event.fileno(),
                                        cond, self._on_fd, event)
            self._watches[event] = (sid, flags)
        self._quit_all_if_idle()

    def _on_fd(self, fd, cond, event):
        flags = self._watches.pop(event)[1]
        if cond & (GLib.IOCondition.ERR | GLib.IOCondition.HUP
                   | GLib.IOCondition.NVAL):
            ready = flags
        else:
            ready = ((READ if cond & GLib.IOCondition.IN else NO_FLAGS)
                     | (WRITE if cond & GLib.IOCondition.OUT else NO_FLAGS))
            ready &= flags
        if ready == RW:
            event.ready_rw()
        elif ready == WRITE:
            event.ready_w()
        else:
            event.ready_r()
        self._quit_all_if_idle()
        return GLib.SOURCE_REMOVE

    def do_update_timer(self, timer, action, usecs):
        self.calls.append(('update_timer', timer, action, usecs))
        if timer in self._timers:
            GLib.source_remove(self._timers.pop(timer))
        if action == WATCH:
            msecs = (usecs + 999) // 1000
            self._timers[timer] = GLib.timeout_add(msecs, self._on_timer, timer)
        self._quit_all_if_idle()

    def _on_timer(self, timer):
        del self._timers[timer]
        timer.ready(0)
        self._quit_all_if_idle()
        return GLib.SOURCE_REMOVE

    def do_start_watching(self):
        self.calls.append(('start_watching',))
        if self._armed() == 0:
            return
        loop = GLib.MainLoop.new(self.context, False)
        self._loops.append(loop)
        loop.run()
        self._loops.remove(loop)

    def do_stop_watching(self):
        self.calls.append(('stop_watching',))
        if self._loops:
            self._loops[-1].quit()


def ping_pong(iops, a, b, rounds):
    """Sets up @rounds ping/pong round trips over the connected sockets a, b,
    using only the Iops.IOPS interface; running the IOPS plays them. Returns
    the state the callbacks fill ('round_trips', 'errors') and the events."""
    state = {'round_trips': 0, 'errors': []}

    def recv(sock):
        try:
            return sock.recv(64)
        except BlockingIOError:
            state['errors'].append('delivered but nothing to read')
            return None

    def on_server(ev, flags):
        data = recv(b)
        if data:
            b.send(data.replace(b'ping', b'pong'))
            Iops.IOPS.update_event(iops, ev, WATCH, READ)

    def on_client(ev, flags):
        expected = b'pong %d' % state['round_trips']
        data = recv(a)
        if data != expected:
            state['errors'].append('got %r, expected %r' % (data, expected))
            iops.stop_watching()
            return
        state['round_trips'] += 1
        if state['round_trips'] < rounds:
            a.send(b'ping %d' % state['round_trips'])
            iops.update_event(ev, WATCH, READ)
        else:
            # Nothing armed afterwards: start_watching returns by itself.
            iops.update_event(ev, CLEANUP, NO_FLAGS)
            iops.update_event(server, CLEANUP, NO_FLAGS)

    server = Watch(b, on_server)
    client = Watch(a, on_client)
    iops.update_event(server, WATCH, READ)
    iops.update_event(client, WATCH, READ)
    a.send(b'ping 0')
    return state, (server, client)


class IopsTestCase(unittest.TestCase):
    """Each test gets its own GMainContext and an Iops.GLibIOPS on it."""

    def setUp(self):
        del library_log[:]
        del callback_exceptions[:]
        self.expected_exceptions = 0
        self.sockets = []
        self.ctx = GLib.MainContext.new()
        self.iops = Iops.GLibIOPS.new(self.ctx)

    def tearDown(self):
        self.iops = None
        gc.collect()
        for sock in self.sockets:
            sock.close()
        unexpected = [''.join(traceback.format_exception(*e))
                      for e in callback_exceptions[self.expected_exceptions:]]
        self.assertEqual(len(callback_exceptions), self.expected_exceptions,
                         'exceptions raised inside callbacks:\n'
                         + '\n'.join(unexpected))
        self.assertEqual(library_log, [], 'unexpected library messages')

    def socketpair(self):
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        self.sockets += [a, b]
        return a, b

    def run_loop(self, iops=None, ctx=None):
        """start_watching under a deadline; fails if the deadline is hit."""
        iops = iops or self.iops
        ctx = ctx or self.ctx
        timed_out = []

        def on_deadline(*_):
            timed_out.append(True)
            iops.stop_watching()
            return GLib.SOURCE_REMOVE

        deadline = GLib.timeout_source_new(DEADLINE_MS)
        deadline.set_callback(on_deadline)
        deadline.attach(ctx)
        try:
            iops.start_watching()
        finally:
            deadline.destroy()
        self.assertFalse(timed_out, 'deadline hit: start_watching did not '
                         'return within %d ms' % DEADLINE_MS)

    def iterate_until(self, done, ctx=None):
        """Iterates ctx (blocking) until done() holds, under a deadline."""
        ctx = ctx or self.ctx
        timed_out = []
        deadline = GLib.timeout_source_new(DEADLINE_MS)
        deadline.set_callback(lambda *_: timed_out.append(True) or False)
        deadline.attach(ctx)
        try:
            while not done() and not timed_out:
                ctx.iteration(True)
        finally:
            deadline.destroy()
        self.assertFalse(timed_out, 'deadline hit while iterating')

    def expect_critical(self, fragment):
        self.assertTrue(any(level & GLib.LogLevelFlags.LEVEL_CRITICAL
                            and fragment in message
                            for _, level, message in library_log),
                        'no critical containing %r: %r' % (fragment, library_log))
        del library_log[:]


# -- enums, flags and types ------------------------------------------------

class TestTypes(IopsTestCase):

    def test_ev_action_values(self):
        self.assertEqual(int(Iops.EvAction.WATCH), 1)
        self.assertEqual(int(Iops.EvAction.UNWATCH), 2)
        self.assertEqual(int(Iops.EvAction.CLEANUP), 16)
        self.assertTrue(issubclass(Iops.EvAction, GObject.GEnum))
        self.assertEqual(Iops.EvAction(16), Iops.EvAction.CLEANUP)
        self.assertEqual(Iops.EvAction.WATCH.value_nick, 'watch')

    def test_event_flags_values(self):
        self.assertEqual(int(Iops.EventFlags.READ_EVENT), 2)
        self.assertEqual(int(Iops.EventFlags.WRITE_EVENT), 4)
        self.assertEqual(int(Iops.EventFlags.RW_EVENT), 6)
        self.assertTrue(issubclass(Iops.EventFlags, GObject.GFlags))
        self.assertEqual(READ | WRITE, RW)
        self.assertEqual(Iops.EventFlags(6), RW)

    def test_type_names_and_hierarchy(self):
        self.assertEqual(Iops.GLibIOPS.__gtype__.name, 'IopsGLibIOPS')
        self.assertEqual(Iops.IOEvent.__gtype__.name, 'IopsIOEvent')
        self.assertEqual(Iops.TimerEvent.__gtype__.name, 'IopsTimerEvent')
        self.assertEqual(Iops.IOPS.__gtype__.name, 'IopsIOPS')
        self.assertTrue(Iops.GLibIOPS.__gtype__.is_a(Iops.IOPS.__gtype__))
        self.assertIsInstance(self.iops, Iops.IOPS)
        self.assertIsInstance(self.iops, GObject.Object)


# -- fd watches ------------------------------------------------------------

class TestIOEvent(IopsTestCase):

    def test_fd_property_and_default_fileno(self):
        ev = Iops.IOEvent.new(7)
        self.assertEqual(ev.props.fd, 7)
        self.assertEqual(ev.fileno(), 7)
        ev.props.fd = 9
        self.assertEqual(ev.get_fd(), 9)
        self.assertEqual(ev.fileno(), 9)
        self.assertEqual(Iops.IOEvent().props.fd, -1)

    def test_subclass_vfuncs_reached_through_invokers(self):
        a, _ = self.socketpair()
        ev = Watch(a)
        self.assertEqual(ev.fileno(), a.fileno())
        self.assertEqual(ev.props.fd, -1)
        ev.ready_r()
        ev.ready_w()
        ev.ready_rw()
        self.assertEqual(ev.calls, [READ, WRITE, RW])

    def test_default_handlers_emit_ready(self):
        ev = Iops.IOEvent.new(5)
        got = []
        ev.connect('ready', lambda obj, flags: got.append((obj, flags)))
        ev.ready_r()
        ev.ready_w()
        ev.ready_rw()
        self.assertEqual([f for _, f in got], [READ, WRITE, RW])
        self.assertTrue(all(obj is ev for obj, _ in got))
        self.assertTrue(all(isinstance(f, Iops.EventFlags) for _, f in got))

    def test_ready_signal_from_the_loop(self):
        a, b = self.socketpair()
        ev = Iops.IOEvent.new(a.fileno())
        got = []
        ev.connect('ready', lambda obj, flags: got.append(flags))

        # a is writable, not readable.
        self.iops.update_event(ev, WATCH, WRITE)
        self.run_loop()
        self.assertEqual(got, [WRITE])

        b.send(b'x')
        self.iops.update_event(ev, WATCH, READ)
        self.run_loop()
        self.assertEqual(got, [WRITE, READ])

        self.iops.update_event(ev, WATCH, RW)
        self.run_loop()
        self.assertEqual(got, [WRITE, READ, RW])
        self.iops.update_event(ev, CLEANUP, NO_FLAGS)

    def test_exactly_one_vfunc_matching_readiness(self):
        a, b = self.socketpair()
        ev = Watch(a)
        signal = []
        ev.connect('ready', lambda obj, flags: signal.append(flags))

        self.iops.update_event(ev, WATCH, RW)        # only writable
        self.run_loop()
        self.assertEqual(ev.calls, [WRITE])

        b.send(b'x')
        self.iops.update_event(ev, WATCH, READ)      # READ asked, RW ready
        self.run_loop()
        self.assertEqual(ev.calls, [WRITE, READ])

        self.iops.update_event(ev, WATCH, RW)
        self.run_loop()
        self.assertEqual(ev.calls, [WRITE, READ, RW])
        # The overrides do not chain up, so the signal is not emitted.
        self.assertEqual(signal, [])
        self.iops.update_event(ev, CLEANUP, NO_FLAGS)

    def test_chain_up_emits_ready(self):
        class ChainUp(Watch):
            def do_ready_r(self):
                self.calls.append('override')
                Iops.IOEvent.do_ready_r(self)

        a, b = self.socketpair()
        ev = ChainUp(a)
        signal = []
        ev.connect('ready', lambda obj, flags: signal.append(flags))
        b.send(b'x')
        self.iops.update_event(ev, WATCH, READ)
        self.run_loop()
        self.assertEqual(ev.calls, ['override'])
        self.assertEqual(signal, [READ])

    def test_no_callback_from_inside_update_event(self):
        a, b = self.socketpair()
        b.send(b'x')
        ev = Watch(a)
        self.iops.update_event(ev, WATCH, RW)
        self.assertEqual(ev.calls, [])
        self.run_loop()
        self.assertEqual(ev.calls, [RW])

    def test_one_shot_watch_is_disarmed_before_callback(self):
        # The data is never drained: a watch that stayed armed would be
        # delivered again, and start_watching would not return.
        a, b = self.socketpair()
        b.send(b'x')
        ev = Watch(a)
        self.iops.update_event(ev, WATCH, READ)
        self.run_loop()
        self.assertEqual(ev.calls, [READ])

    def test_rewatch_from_callback(self):
        a, b = self.socketpair()
        b.send(b'x')

        def again(ev, flags):
            if len(ev.calls) < 5:
                self.iops.update_event(ev, WATCH, READ)

        ev = Watch(a, again)
        self.iops.update_event(ev, WATCH, READ)
        self.run_loop()
        self.assertEqual(ev.calls, [READ] * 5)

    def test_hangup_reported_once_for_every_watched_flag(self):
        a, b = self.socketpair()
        b.close()
        ev = Watch(a)
        self.iops.update_event(ev, WATCH, READ)
        self.run_loop()
        self.assertEqual(ev.calls, [READ])
        self.assertEqual(a.recv(1), b'')    # the consumer finds EOF


class TestPingPong(IopsTestCase):

    def test_thousand_round_trips(self):
        a, b = self.socketpair()
        state, events = ping_pong(self.iops, a, b, 1000)
        self.run_loop()
        self.assertEqual(state['errors'], [])
        self.assertEqual(state['round_trips'], 1000)


# -- timers ----------------------------------------------------------------

class TestTimerEvent(IopsTestCase):

    def test_subclass_fires_once_never_early(self):
        record = []
        timer = Timer('t', record)
        start = GLib.get_monotonic_time()
        self.iops.update_timer(timer, WATCH, 3000)
        self.assertEqual(record, [])
        self.run_loop()
        self.assertEqual(len(record), 1)
        name, flags, when = record[0]
        self.assertEqual(flags, 0)
        self.assertGreaterEqual(when - start, 3000, 'timer fired early')

    def test_ready_signal(self):
        timer = Iops.TimerEvent.new()
        got = []
        timer.connect('ready', lambda obj, flags: got.append((obj, flags)))
        self.iops.update_timer(timer, WATCH, 0)
        self.run_loop()
        self.assertEqual(got, [(timer, 0)])

    def test_deadline_order_never_early(self):
        delays = {'a': 30_000, 'b': 5_000, 'c': 20_000, 'd': 0,
                  'e': 5_000, 'f': 10_000, 'g': 0}
        record = []
        timers = {name: Timer(name, record) for name in delays}
        # Each deadline lies in [before + usecs, after + usecs] of its WATCH;
        # the order is checked against those bounds, so a slow machine
        # (arming taking longer than the gaps between delays) cannot fail it.
        armed = {}
        for name, usecs in delays.items():
            before = GLib.get_monotonic_time()
            self.iops.update_timer(timers[name], WATCH, usecs)
            armed[name] = (before + usecs, GLib.get_monotonic_time() + usecs)
        self.run_loop()

        fired = [name for name, _, _ in record]
        self.assertEqual(sorted(fired), sorted(delays), 'each fires once')
        for first, then in zip(fired, fired[1:]):
            self.assertLessEqual(armed[first][0], armed[then][1],
                                 '%s fired before %s, whose deadline is '
                                 'earlier: %r' % (first, then, fired))
        for name, flags, when in record:
            self.assertEqual(flags, 0)
            self.assertGreaterEqual(when, armed[name][0],
                                    'timer %s fired early' % name)

    def test_equal_delays_fire_in_order_of_latest_watch(self):
        record = []
        timers = [Timer(str(i), record) for i in range(10)]
        for timer in timers:
            self.iops.update_timer(timer, WATCH, 0)
        self.iops.update_timer(timers[3], WATCH, 0)   # latest WATCH: last
        self.run_loop()
        expected = [str(i) for i in range(10) if i != 3] + ['3']
        self.assertEqual([name for name, _, _ in record], expected)

    def test_rearm_from_ready(self):
        record = []

        def again(timer):
            if len(record) < 5:
                self.iops.update_timer(timer, WATCH, 100)

        timer = Timer('t', record, again)
        self.iops.update_timer(timer, WATCH, 0)
        self.run_loop()
        self.assertEqual(len(record), 5)

    def test_watch_reschedules(self):
        record = []
        timer = Timer('t', record)
        self.iops.update_timer(timer, WATCH, HOUR_US)
        self.iops.update_timer(timer, WATCH, 1000)
        self.run_loop()
        self.assertEqual(len(record), 1)


# -- UNWATCH and CLEANUP ---------------------------------------------------

class TestUnwatch(IopsTestCase):

    def test_unwatch_before_the_loop(self):
        a, b = self.socketpair()
        b.send(b'x')
        ev = Watch(a)
        record = []
        timer = Timer('t', record)
        self.iops.update_event(ev, WATCH, READ)
        self.iops.update_timer(timer, WATCH, 0)
        self.iops.update_event(ev, UNWATCH, NO_FLAGS)
        self.iops.update_event(ev, UNWATCH, NO_FLAGS)   # harmless
        self.iops.update_timer(timer, UNWATCH, 0)
        self.iops.update_timer(timer, UNWATCH, 0)
        self.run_loop()     # nothing armed: returns at once
        self.assertEqual(ev.calls, [])
        self.assertEqual(record, [])

    def test_watch_with_no_flags_unwatches(self):
        a, b = self.socketpair()
        b.send(b'x')
        ev = Watch(a)
        self.iops.update_event(ev, WATCH, READ)
        self.iops.update_event(ev, WATCH, NO_FLAGS)
        self.run_loop()
        self.assertEqual(ev.calls, [])

    def test_unwatch_of_an_fd_found_ready_in_the_same_iteration(self):
        # Both fds are ready in the same iteration; whichever callback runs
        # first unwatches the other, which must then never be called.
        a1, b1 = self.socketpair()
        a2, b2 = self.socketpair()
        b1.send(b'x')
        b2.send(b'x')
        events = []

        def unwatch_others(ev, flags):
            for other in events:
                if other is not ev:
                    self.iops.update_event(other, UNWATCH, NO_FLAGS)

        events += [Watch(a1, unwatch_others), Watch(a2, unwatch_others)]
        for ev in events:
            self.iops.update_event(ev, WATCH, READ)
        self.run_loop()
        self.assertEqual(sum(len(ev.calls) for ev in events), 1)

    def test_unwatch_of_a_due_timer_from_another_timer(self):
        record = []
        second = Timer('second', record)
        first = Timer('first', record,
                      lambda t: self.iops.update_timer(second, UNWATCH, 0))
        self.iops.update_timer(first, WATCH, 0)
        self.iops.update_timer(second, WATCH, 0)
        self.run_loop()
        self.assertEqual([name for name, _, _ in record], ['first'])

    def test_cleanup_then_fresh_watch(self):
        a, b = self.socketpair()
        b.send(b'x')
        ev = Watch(a)
        self.iops.update_event(ev, WATCH, READ)
        self.iops.update_event(ev, CLEANUP, NO_FLAGS)
        self.run_loop()
        self.assertEqual(ev.calls, [])
        self.iops.update_event(ev, WATCH, READ)
        self.run_loop()
        self.assertEqual(ev.calls, [READ])
        self.iops.update_event(ev, CLEANUP, NO_FLAGS)
        self.iops.update_event(ev, CLEANUP, NO_FLAGS)   # harmless


# -- properties ------------------------------------------------------------

class TestProperties(IopsTestCase):

    def test_defaults(self):
        self.assertEqual(self.iops.props.priority, GLib.PRIORITY_DEFAULT)
        self.assertFalse(self.iops.props.persistent)
        self.assertEqual(self.iops.props.context, self.ctx)
        self.assertEqual(self.iops.get_context(), self.ctx)

    def test_notify_only_on_change(self):
        notified = []
        self.iops.connect('notify', lambda obj, pspec: notified.append(pspec.name))
        self.iops.props.priority = GLib.PRIORITY_DEFAULT
        self.iops.props.persistent = False
        self.assertEqual(notified, [])
        self.iops.props.priority = GLib.PRIORITY_HIGH
        self.iops.set_persistent(True)
        self.assertEqual(notified, ['priority', 'persistent'])
        self.assertEqual(self.iops.get_priority(), GLib.PRIORITY_HIGH)
        self.assertTrue(self.iops.get_persistent())

    def test_null_context_is_the_thread_default(self):
        self.assertEqual(Iops.GLibIOPS.new(None).props.context,
                         GLib.MainContext.default())
        self.ctx.push_thread_default()
        try:
            self.assertEqual(Iops.GLibIOPS.new(None).props.context, self.ctx)
        finally:
            self.ctx.pop_thread_default()

    def test_context_is_construct_only(self):
        iops = Iops.GLibIOPS(context=self.ctx)
        self.assertEqual(iops.props.context, self.ctx)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            iops.set_property('context', GLib.MainContext.new())
        self.assertEqual(iops.props.context, self.ctx)

    def test_events_are_sources_on_its_context(self):
        record = []
        timer = Timer('t', record)
        self.iops.update_timer(timer, WATCH, 0)
        default = GLib.MainContext.default()
        for _ in range(3):
            default.iteration(False)
        self.assertEqual(record, [])
        # Any loop iterating the context delivers, not only start_watching.
        self.iterate_until(lambda: record)
        self.assertEqual(len(record), 1)

    def test_a_main_loop_delivers(self):
        loop = GLib.MainLoop.new(self.ctx, False)
        got = []

        def ready(obj, flags):
            got.append(flags)
            loop.quit()

        timer = Iops.TimerEvent.new()
        timer.connect('ready', ready)
        self.iops.update_timer(timer, WATCH, 0)
        deadline = GLib.timeout_source_new(DEADLINE_MS)
        deadline.set_callback(lambda *_: loop.quit() or False)
        deadline.attach(self.ctx)
        loop.run()
        deadline.destroy()
        self.assertEqual(got, [0])

    def _first_dispatched(self, arm):
        """Arms an IOPS event with arm(), adds a GLib idle at
        PRIORITY_DEFAULT, and returns the order they were dispatched in."""
        order = []
        arm(order)
        idle = GLib.idle_source_new()
        idle.set_priority(GLib.PRIORITY_DEFAULT)
        idle.set_callback(lambda *_: order.append('idle') or False)
        idle.attach(self.ctx)
        self.iterate_until(lambda: len(order) == 2)
        return order

    def test_priority_applies_to_watches_and_timers(self):
        a, b = self.socketpair()
        b.send(b'x')

        def arm_watch(order):
            ev = Watch(a, lambda ev, flags: order.append('iops'))
            self.iops.update_event(ev, WATCH, READ)

        def arm_timer(order):
            timer = Timer('t', [], lambda t: order.append('iops'))
            self.iops.update_timer(timer, WATCH, 0)

        for arm in (arm_watch, arm_timer):
            self.iops.props.priority = GLib.PRIORITY_LOW
            self.assertEqual(self._first_dispatched(arm), ['idle', 'iops'])
            self.iops.props.priority = GLib.PRIORITY_HIGH
            self.assertEqual(self._first_dispatched(arm), ['iops', 'idle'])

    def test_persistent_watch_stays_armed(self):
        a, b = self.socketpair()
        b.send(b'x')    # never drained: level-triggered readiness

        def third_unwatches(ev, flags):
            if len(ev.calls) == 3:
                self.iops.update_event(ev, UNWATCH, NO_FLAGS)

        self.iops.props.persistent = True
        ev = Watch(a, third_unwatches)
        self.iops.update_event(ev, WATCH, READ)
        self.run_loop()
        self.assertEqual(ev.calls, [READ] * 3)

        self.iops.props.persistent = False
        self.iops.update_event(ev, WATCH, READ)
        self.run_loop()
        self.assertEqual(ev.calls, [READ] * 4)


# -- running ---------------------------------------------------------------

class TestLoop(IopsTestCase):

    def test_nothing_armed_returns_at_once(self):
        self.run_loop()

    def test_stop_watching_from_a_callback(self):
        record = []
        long = Timer('long', record)
        stopper = Timer('stop', record, lambda t: self.iops.stop_watching())
        self.iops.update_timer(long, WATCH, HOUR_US)
        self.iops.update_timer(stopper, WATCH, 0)
        self.run_loop()
        self.assertEqual([name for name, _, _ in record], ['stop'])
        self.iops.update_timer(long, CLEANUP, 0)
        self.iops.stop_watching()   # nothing running: does nothing

    def test_stop_watching_from_another_thread(self):
        threads = []

        def start_thread(timer):
            thread = threading.Thread(target=self.iops.stop_watching)
            threads.append(thread)
            thread.start()

        long = Timer('long', [])
        starter = Timer('start', [], start_thread)
        self.iops.update_timer(long, WATCH, HOUR_US)
        self.iops.update_timer(starter, WATCH, 0)
        self.run_loop()
        for thread in threads:
            thread.join()
        self.assertEqual(len(threads), 1)
        self.iops.update_timer(long, CLEANUP, 0)

    def test_nested_start_watching(self):
        record = []
        inner = Timer('inner', record)

        def nest(timer):
            self.iops.update_timer(inner, WATCH, 1000)
            self.iops.start_watching()      # returns once inner has fired
            record.append(('nested returned', 0, 0))

        outer = Timer('outer', record, nest)
        self.iops.update_timer(outer, WATCH, 0)
        self.run_loop()
        self.assertEqual([name for name, _, _ in record],
                         ['outer', 'inner', 'nested returned'])


# -- an IOPS implemented in Python -----------------------------------------

class TestPythonIOPS(IopsTestCase):

    def setUp(self):
        super().setUp()
        self.py = PyIOPS()

    def tearDown(self):
        self.py = None
        super().tearDown()

    def test_implements_the_interface(self):
        self.assertIsInstance(self.py, Iops.IOPS)
        self.assertTrue(PyIOPS.__gtype__.is_a(Iops.IOPS.__gtype__))

    def test_calls_through_the_interface_reach_python(self):
        ev = Iops.IOEvent.new(0)
        timer = Iops.TimerEvent.new()
        Iops.IOPS.update_event(self.py, ev, WATCH, RW)
        Iops.IOPS.update_event(self.py, ev, CLEANUP, NO_FLAGS)
        self.py.update_timer(timer, WATCH, 1 << 40)
        Iops.IOPS.update_timer(self.py, timer, UNWATCH, 0)
        Iops.IOPS.stop_watching(self.py)
        self.assertEqual(self.py.calls, [
            ('update_event', ev, WATCH, RW),
            ('update_event', ev, CLEANUP, NO_FLAGS),
            ('update_timer', timer, WATCH, 1 << 40),
            ('update_timer', timer, UNWATCH, 0),
            ('stop_watching',),
        ])
        _, _, action, flags = self.py.calls[0]
        self.assertIsInstance(action, Iops.EvAction)
        self.assertIsInstance(flags, Iops.EventFlags)

    def test_invoker_preconditions_guard_the_implementation(self):
        # The C invoker itself (what C callers and PyGObject without the
        # overrides reach): a critical, and the implementation is not called.
        invoker = get_introspection_module('Iops').IOPS
        timer = Iops.TimerEvent.new()
        invoker.update_timer(self.py, timer, WATCH, -1)
        self.expect_critical('usecs >= 0')
        invoker.update_event(self.py, Iops.IOEvent.new(0), WATCH,
                             Iops.EventFlags(8))
        self.expect_critical('failed')
        self.assertEqual(self.py.calls, [])

    def test_overrides_raise_before_the_implementation(self):
        # With the overrides, Iops.IOPS's methods raise instead (on purpose:
        # see python/gi/overrides/Iops.py); nothing reaches the implementation.
        if 'gi.overrides.Iops' not in sys.modules:
            self.skipTest('the Iops overrides are not loaded')
        with self.assertRaises(ValueError):
            Iops.IOPS.update_timer(self.py, Iops.TimerEvent.new(), WATCH, -1)
        with self.assertRaises(ValueError):
            Iops.IOPS.update_event(self.py, Iops.IOEvent.new(0), WATCH,
                                   Iops.EventFlags(8))
        self.assertEqual(self.py.calls, [])

    def test_default_factories(self):
        for iops in (self.py, self.iops):
            ev = Iops.IOPS.io_event_factory(iops)
            self.assertIs(type(ev), Iops.IOEvent)
            self.assertEqual(ev.props.fd, -1)
            timer = iops.timer_event_factory()
            self.assertIs(type(timer), Iops.TimerEvent)

    def test_factory_overridden_in_python(self):
        class Factory(PyIOPS):
            def do_io_event_factory(self):
                ev = Watch(None)
                ev.made_by = 'python'
                return ev

            def do_timer_event_factory(self):
                return Timer('made', [])

        iops = Factory()
        ev = Iops.IOPS.io_event_factory(iops)
        self.assertIsInstance(ev, Watch)
        self.assertEqual(ev.made_by, 'python')
        timer = iops.timer_event_factory()
        self.assertIsInstance(timer, Timer)
        self.assertEqual(timer.name, 'made')

    def test_consumer_runs_on_the_python_iops(self):
        a, b = self.socketpair()
        state, events = ping_pong(self.py, a, b, 1000)
        record = []
        timer = Timer('t', record)
        Iops.IOPS.update_timer(self.py, timer, WATCH, 2000)
        self.run_loop(self.py, self.py.context)
        self.assertEqual(state['errors'], [])
        self.assertEqual(state['round_trips'], 1000)
        self.assertEqual([name for name, _, _ in record], ['t'])


# -- exceptions raised in callbacks ----------------------------------------

class TestExceptions(IopsTestCase):

    def test_loop_survives_exceptions_in_callbacks(self):
        a, b = self.socketpair()
        b.send(b'x')

        class Raising(Watch):
            def do_ready_r(self):
                self.calls.append(READ)
                raise RuntimeError('raised in ready_r')

        class RaisingTimer(Iops.TimerEvent):
            def do_ready(self, flags):
                raise KeyError('raised in ready')

        def raising_handler(obj, flags):
            raise ValueError('raised in a ready handler')

        record = []
        ev = Raising(a)
        raising_timer = RaisingTimer()
        plain = Iops.TimerEvent.new()
        plain.connect('ready', raising_handler)
        after = Timer('after', record)

        self.iops.update_event(ev, WATCH, READ)
        self.iops.update_timer(raising_timer, WATCH, 0)
        self.iops.update_timer(plain, WATCH, 0)
        self.iops.update_timer(after, WATCH, 5000)
        self.run_loop()

        self.expected_exceptions = 3
        kinds = sorted(e[0].__name__ for e in callback_exceptions)
        self.assertEqual(kinds, ['KeyError', 'RuntimeError', 'ValueError'])
        self.assertEqual(ev.calls, [READ])
        self.assertEqual([name for name, _, _ in record], ['after'])

        # The events and the IOPS keep working afterwards.
        self.iops.update_event(ev, WATCH, READ)
        self.iops.update_timer(after, WATCH, 0)
        self.run_loop()
        self.expected_exceptions = 4
        self.assertEqual(ev.calls, [READ, READ])
        self.assertEqual(len(record), 2)


# -- garbage collection ----------------------------------------------------

class TestGarbageCollection(IopsTestCase):

    def test_dropped_armed_events_are_still_delivered(self):
        a, b = self.socketpair()
        b.send(b'x')
        seen = []

        def arm():
            ev = Watch(a, lambda ev, flags: seen.append((ev.tag, flags)))
            ev.tag = 'watch state'
            self.iops.update_event(ev, WATCH, READ)

            timer = Timer('timer state', [],
                          lambda t: seen.append((t.name, 0)))
            self.iops.update_timer(timer, WATCH, 1000)

            plain = Iops.TimerEvent.new()
            plain.connect('ready', lambda obj, flags: seen.append(('plain', flags)))
            self.iops.update_timer(plain, WATCH, 2000)
            return [weakref.ref(ev), weakref.ref(timer), weakref.ref(plain)]

        refs = arm()
        gc.collect()
        self.run_loop()
        self.assertEqual(sorted(seen), [('plain', 0), ('timer state', 0),
                                        ('watch state', READ)])
        # The IOPS may hold them until CLEANUP, and must not after it.
        del seen[:]
        watch, timer, plain = (r() for r in refs)
        if watch is not None:
            self.iops.update_event(watch, CLEANUP, NO_FLAGS)
        for t in (timer, plain):
            if t is not None:
                self.iops.update_timer(t, CLEANUP, 0)
        del watch, timer, plain, t
        gc.collect()
        self.assertEqual([r() for r in refs], [None, None, None])

    def test_cleanup_releases_the_event(self):
        a, b = self.socketpair()
        ev = Watch(a)
        timer = Timer('t', [])
        self.iops.update_event(ev, WATCH, READ)
        self.iops.update_timer(timer, WATCH, HOUR_US)
        self.iops.update_event(ev, CLEANUP, NO_FLAGS)
        self.iops.update_timer(timer, CLEANUP, 0)
        refs = [weakref.ref(ev), weakref.ref(timer)]
        del ev, timer
        gc.collect()
        self.assertEqual([r() for r in refs], [None, None])

    def test_factories_keep_no_reference(self):
        refs = [weakref.ref(self.iops.io_event_factory()),
                weakref.ref(self.iops.timer_event_factory())]
        gc.collect()
        self.assertEqual([r() for r in refs], [None, None])

    def test_disposal_disarms_without_callbacks(self):
        a, b = self.socketpair()
        b.send(b'x')
        record = []
        ev = Watch(a)
        timer = Timer('t', record)
        self.iops.update_event(ev, WATCH, READ)
        self.iops.update_timer(timer, WATCH, 0)
        self.iops = None
        gc.collect()
        for _ in range(5):
            self.ctx.iteration(False)
        self.assertEqual(ev.calls, [])
        self.assertEqual(record, [])
        refs = [weakref.ref(ev), weakref.ref(timer)]
        del ev, timer
        gc.collect()
        self.assertEqual([r() for r in refs], [None, None])


# -- a small TAP printer ---------------------------------------------------

class TapResult(unittest.TestResult):
    """One TAP line per test, with the tracebacks as diagnostics."""

    def __init__(self):
        super().__init__()
        self.number = 0

    def startTest(self, test):
        super().startTest(test)
        self._problems = []
        self._skip = None

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._problems.append(self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._problems.append(self._exc_info_to_string(err, test))

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._problems.append(self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._skip = reason

    def stopTest(self, test):
        super().stopTest(test)
        self.number += 1
        name = '%s.%s [%s]' % (type(test).__name__, test._testMethodName,
                               BACKEND)
        if self._problems:
            print('not ok %d - %s' % (self.number, name))
            for problem in self._problems:
                for line in problem.rstrip().splitlines():
                    print('# ' + line)
        elif self._skip is not None:
            print('ok %d - %s # SKIP %s' % (self.number, name, self._skip))
        else:
            print('ok %d - %s' % (self.number, name))
        sys.stdout.flush()


def main():
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromModule(sys.modules[__name__])
    if len(sys.argv) > 1:
        suite = unittest.TestSuite(
            t for t in _flatten(suite)
            if any(arg in t.id() for arg in sys.argv[1:]))
    print('1..%d' % suite.countTestCases())
    print('# backend: %s' % BACKEND)
    result = TapResult()
    suite.run(result)
    return 0 if result.wasSuccessful() else 1


def _flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item


if __name__ == '__main__':
    sys.exit(main())
