#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The PyGObject overrides of Iops (python/gi/overrides/Iops.py).

Duck-typed events and timers as the Couchbase Python SDK passes them, int
actions and flags, the SDK's method names on subclasses, bad input raising
TypeError / ValueError, fileno() at WATCH in the caller's frame, Ctrl-C in
start_watching, exceptions in callbacks, docstrings; and the contract's rules
for duck-typed events, references and memory included.

    test_overrides.py [NAME...]
    test_overrides.py --without-overrides [NAME...]

The second form keeps the overrides out (even installed ones) and runs only
the tests of the seven problems the overrides exist for, each of which must
then fail: a TAP "ok" there means "fails without the overrides, as it
should". Without them, PyGObject alone:

1. refuses duck-typed events and timers (TypeError: Expected Iops.IOEvent);
2. refuses int flags (Expected a Iops.EventFlags, but got int);
3. never calls a subclass's ready_r, fileno or ready (the SDK's names);
4. logs a CRITICAL for bad input (flags 0x10, usecs -5, fd -1) and raises
   nothing;
5. watches fd 0 when a do_fileno returns None or raises, and delivers;
6. sees Ctrl-C in start_watching only at the next callback;
7. shows bare signatures in help(Iops.GLibIOPS).

Run with GI_TYPELIB_PATH, LD_LIBRARY_PATH at build/src and PYTHONPATH at the
checkout's python/ folder; meson test does this.
"""

import gc
import os
import pydoc
import resource
import signal
import sys
import threading
import traceback
import unittest
import weakref

WITHOUT_OVERRIDES = '--without-overrides' in sys.argv
if WITHOUT_OVERRIDES:
    sys.argv.remove('--without-overrides')
    # PyGObject looks the overrides up with pkgutil.get_loader(), which
    # answers None for a module that sys.modules maps to None.
    sys.modules['gi.overrides.Iops'] = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_iops  # noqa: E402  the shared fixtures and the TAP printer
from gi.module import get_introspection_module  # noqa: E402
from test_iops import (  # noqa: E402
    CLEANUP, DEADLINE_MS, HOUR_US, READ, RW, WATCH, WRITE,
    GLib, Iops, IopsTestCase, Timer, Watch, callback_exceptions)

if not WITHOUT_OVERRIDES and 'gi.overrides.Iops' not in sys.modules:
    sys.exit('Bail out! the Iops overrides were not loaded: put the '
             "checkout's python/ folder on PYTHONPATH")

# The Couchbase Python SDK's constants.
PYCBC_EVACTION_WATCH = 1
PYCBC_EVACTION_UNWATCH = 2
PYCBC_EVACTION_CLEANUP = 16
LCB_READ_EVENT = 2
LCB_WRITE_EVENT = 4
LCB_RW_EVENT = 6


def problem(number):
    """Marks a test of one of the numbered problems above, which the
    overrides solve; --without-overrides runs these and expects each to
    fail."""
    def mark(test):
        test.problem = number
        return test
    return mark


class DuckEvent:
    """An fd event as the SDK hands it over: fileno() and ready_*()."""

    def __init__(self, sock, on_ready=None):
        self.sock = sock
        self.on_ready = on_ready
        self.calls = []
        self.fileno_calls = 0

    def fileno(self):
        self.fileno_calls += 1
        return self.sock.fileno()

    def _ready(self, flags):
        self.calls.append(flags)
        if self.on_ready is not None:
            self.on_ready(self, flags)

    def ready_r(self):
        self._ready(LCB_READ_EVENT)

    def ready_w(self):
        self._ready(LCB_WRITE_EVENT)

    def ready_rw(self):
        self._ready(LCB_RW_EVENT)


class DuckTimer:
    """A timer as the SDK hands it over: ready(flags)."""

    def __init__(self, record, name='t', on_ready=None):
        self.record = record
        self.name = name
        self.on_ready = on_ready

    def ready(self, flags):
        self.record.append((self.name, flags, GLib.get_monotonic_time()))
        if self.on_ready is not None:
            self.on_ready(self)


class OverridesTestCase(IopsTestCase):

    def assert_raises_naming(self, exc_type, argument, call, *args):
        with self.assertRaises(exc_type) as caught:
            call(*args)
        self.assertIn(argument, str(caught.exception))
        return caught.exception

    def registrations(self, iops=None):
        """How many duck-typed events and timers @iops holds."""
        iops = iops or self.iops
        return sum(len(iops.__dict__.get(name, ()))
                   for name in ('_iops_duck_events', '_iops_duck_timers'))


# -- 1. duck-typed events and timers ---------------------------------------

class TestDuckTyped(OverridesTestCase):

    @problem(1)
    def test_duck_event_is_watched_and_delivered(self):
        a, b = self.socketpair()
        b.send(b'x')
        ev = DuckEvent(a)
        self.iops.update_event(ev, PYCBC_EVACTION_WATCH, LCB_READ_EVENT)
        self.run_loop()
        self.assertEqual(ev.calls, [LCB_READ_EVENT])

    @problem(1)
    def test_duck_timer_fires_once_never_early(self):
        record = []
        start = GLib.get_monotonic_time()
        self.iops.update_timer(DuckTimer(record), PYCBC_EVACTION_WATCH, 2000)
        self.run_loop()
        self.assertEqual([(name, flags) for name, flags, _ in record], [('t', 0)])
        self.assertGreaterEqual(record[0][2] - start, 2000, 'timer fired early')

    @problem(1)
    def test_enum_values_work_for_duck_events_too(self):
        a, b = self.socketpair()
        ev = DuckEvent(a)
        self.iops.update_event(ev, WATCH, WRITE)
        self.run_loop()
        self.assertEqual(ev.calls, [LCB_WRITE_EVENT])

    def test_exactly_one_method_matching_readiness(self):
        a, b = self.socketpair()
        ev = DuckEvent(a)
        self.iops.update_event(ev, WATCH, LCB_RW_EVENT)       # only writable
        self.run_loop()
        b.send(b'x')
        self.iops.update_event(ev, WATCH, LCB_READ_EVENT)     # RW ready, READ asked
        self.run_loop()
        self.iops.update_event(ev, WATCH, LCB_RW_EVENT)
        self.run_loop()
        self.assertEqual(ev.calls, [LCB_WRITE_EVENT, LCB_READ_EVENT, LCB_RW_EVENT])

    def test_no_callback_from_inside_update_event(self):
        a, b = self.socketpair()
        b.send(b'x')
        ev = DuckEvent(a)
        self.iops.update_event(ev, 1, 6)
        self.assertEqual(ev.calls, [])
        self.run_loop()
        self.assertEqual(ev.calls, [LCB_RW_EVENT])

    def test_one_shot_rewatch_and_hangup(self):
        a, b = self.socketpair()
        b.send(b'x')       # never drained: an armed watch would spin

        def again(ev, flags):
            if len(ev.calls) < 4:
                self.iops.update_event(ev, 1, 2)

        ev = DuckEvent(a, again)
        self.iops.update_event(ev, 1, 2)
        self.run_loop()
        self.assertEqual(ev.calls, [LCB_READ_EVENT] * 4)

        c, d = self.socketpair()
        d.close()
        hung = DuckEvent(c)
        self.iops.update_event(hung, 1, 4 | 2)
        self.run_loop()
        self.assertEqual(hung.calls, [LCB_RW_EVENT], 'a hang-up is ready for every flag')

    def test_watch_replaces_the_fd(self):
        a, b = self.socketpair()
        c, d = self.socketpair()
        d.send(b'x')
        ev = DuckEvent(a)
        self.iops.update_event(ev, 1, 2)     # a: nothing to read
        ev.sock = c                          # the same object, another socket
        self.iops.update_event(ev, 1, 2)
        self.run_loop()
        self.assertEqual(ev.calls, [LCB_READ_EVENT])
        self.assertEqual(ev.fileno_calls, 2, 'fileno() once per WATCH')

    def test_persistent_mode(self):
        a, b = self.socketpair()
        b.send(b'x')

        def third_unwatches(ev, flags):
            if len(ev.calls) == 3:
                self.iops.update_event(ev, PYCBC_EVACTION_UNWATCH, 0)

        self.iops.props.persistent = True
        ev = DuckEvent(a, third_unwatches)
        self.iops.update_event(ev, 1, 2)
        self.run_loop()
        self.assertEqual(ev.calls, [LCB_READ_EVENT] * 3)

    def test_unwatch_and_watch_with_no_flags(self):
        a, b = self.socketpair()
        b.send(b'x')
        ev, other = DuckEvent(a), DuckEvent(a)
        record = []
        timer = DuckTimer(record)
        self.iops.update_event(ev, 1, 2)
        self.iops.update_event(other, 1, 2)
        self.iops.update_timer(timer, 1, 0)
        self.iops.update_event(ev, 2, 0)
        self.iops.update_event(ev, 2, 0)          # harmless
        self.iops.update_event(other, 1, 0)       # flags 0 is UNWATCH
        self.iops.update_timer(timer, 2, 0)
        self.run_loop()                           # nothing armed
        self.assertEqual((ev.calls, other.calls, record), ([], [], []))

    def test_unwatch_of_an_fd_found_ready_in_the_same_iteration(self):
        a1, b1 = self.socketpair()
        a2, b2 = self.socketpair()
        b1.send(b'x')
        b2.send(b'x')
        events = []

        def unwatch_others(ev, flags):
            for other in events:
                if other is not ev:
                    self.iops.update_event(other, 2, 0)

        events += [DuckEvent(a1, unwatch_others), DuckEvent(a2, unwatch_others)]
        for ev in events:
            self.iops.update_event(ev, 1, 2)
        self.run_loop()
        self.assertEqual(sum(len(ev.calls) for ev in events), 1)

    def test_cleanup_then_fresh_watch(self):
        a, b = self.socketpair()
        b.send(b'x')
        ev = DuckEvent(a)
        self.iops.update_event(ev, 1, 2)
        self.iops.update_event(ev, 16, 0)
        self.assertEqual(self.registrations(), 0)
        self.run_loop()
        self.assertEqual(ev.calls, [])
        self.iops.update_event(ev, 1, 2)
        self.run_loop()
        self.assertEqual(ev.calls, [LCB_READ_EVENT])
        self.iops.update_event(ev, 16, 0)
        self.iops.update_event(ev, 16, 0)         # harmless
        self.iops.update_event(DuckEvent(a), 16, 0)   # never watched: nothing

    def test_timers_order_reschedule_and_rearm(self):
        record = []
        timers = [DuckTimer(record, str(i)) for i in range(6)]
        for timer in timers:
            self.iops.update_timer(timer, 1, 0)
        self.iops.update_timer(timers[2], 1, 0)          # latest WATCH: last
        self.iops.update_timer(timers[4], 1, HOUR_US)    # rescheduled away
        self.run_loop_until_fired(record, 5)
        self.assertEqual([name for name, _, _ in record], ['0', '1', '3', '5', '2'])
        self.iops.update_timer(timers[4], 16, 0)

        del record[:]
        again = DuckTimer(record, 'again',
                          lambda t: len(record) < 3 and self.iops.update_timer(t, 1, 100))
        self.iops.update_timer(again, 1, 0)
        self.run_loop()
        self.assertEqual(len(record), 3)

    def run_loop_until_fired(self, record, count):
        def check(timer):
            if len(record) >= count:
                self.iops.stop_watching()
        stopper = DuckTimer([], 'stop', check)
        for delay in (5000, 10000, 20000, 50000):
            self.iops.update_timer(stopper, 1, delay)
            self.run_loop()
            if len(record) >= count:
                break
        self.iops.update_timer(stopper, 16, 0)

    def test_a_python_iops_receives_duck_events(self):
        py = test_iops.PyIOPS()
        a, b = self.socketpair()
        b.send(b'x')
        ev = DuckEvent(a)
        record = []
        py.update_event(ev, 1, 2)
        py.update_timer(DuckTimer(record), 1, 1000)
        self.run_loop(py, py.context)
        self.assertEqual(ev.calls, [LCB_READ_EVENT])
        self.assertEqual(len(record), 1)
        _, adapter, action, flags = py.calls[0]
        self.assertIsInstance(adapter, Iops.IOEvent)
        self.assertEqual((action, flags), (WATCH, READ))
        self.assertEqual(adapter.fileno(), a.fileno())

    def test_an_event_and_a_timer_in_one_object(self):
        class Both(DuckEvent):
            def ready(self, flags):
                self.calls.append('timer')

        a, b = self.socketpair()
        b.send(b'x')
        both = Both(a)
        self.iops.update_event(both, 1, 2)
        self.iops.update_timer(both, 1, 0)
        self.run_loop()
        self.assertEqual(sorted(both.calls, key=str), [LCB_READ_EVENT, 'timer'])
        self.iops.update_event(both, 16, 0)
        self.iops.update_timer(both, 16, 0)
        self.assertEqual(self.registrations(), 0)


# -- references (rule 6), disposal (rule 11), growth ------------------------

class TestDuckReferences(OverridesTestCase):

    def test_dropped_armed_ducks_are_delivered_cleanup_releases(self):
        a, b = self.socketpair()
        b.send(b'x')
        seen = []

        def arm():
            ev = DuckEvent(a, lambda ev, flags: seen.append(('event', flags)))
            timer = DuckTimer(seen, 'timer')
            self.iops.update_event(ev, 1, 2)
            self.iops.update_timer(timer, 1, 1000)
            return weakref.ref(ev), weakref.ref(timer)

        refs = arm()
        gc.collect()
        self.run_loop()
        self.assertEqual(sorted(s[:2] for s in seen), [('event', 2), ('timer', 0)])
        ev, timer = (r() for r in refs)
        self.assertIsNotNone(ev, 'held until CLEANUP, as rule 6 allows')
        self.iops.update_event(ev, 16, 0)
        self.iops.update_timer(timer, 16, 0)
        del ev, timer
        gc.collect()
        self.assertEqual([r() for r in refs], [None, None])
        self.assertEqual(self.registrations(), 0)

    def test_cleanup_and_drop_from_own_callback(self):
        a, b = self.socketpair()
        b.send(b'x')
        refs = []

        def cleanup_self(ev, flags):
            self.iops.update_event(ev, 16, 0)

        def arm():
            ev = DuckEvent(a, cleanup_self)
            self.iops.update_event(ev, 1, 2)
            refs.append(weakref.ref(ev))

        arm()
        self.run_loop()
        gc.collect()
        self.assertIsNone(refs[0]())

    def test_never_watched_is_never_held(self):
        a, b = self.socketpair()
        ev = DuckEvent(a)
        self.iops.update_event(ev, 2, 0)
        self.iops.update_event(ev, 16, 0)
        self.iops.update_timer(DuckTimer([]), 2, 0)
        self.assertEqual(self.registrations(), 0)

    def test_disposal_disarms_and_releases(self):
        a, b = self.socketpair()
        b.send(b'x')
        ev = DuckEvent(a)
        record = []
        timer = DuckTimer(record)
        self.iops.update_event(ev, 1, 2)
        self.iops.update_timer(timer, 1, 0)
        refs = [weakref.ref(ev), weakref.ref(timer)]
        self.iops = None
        gc.collect()
        for _ in range(5):
            self.ctx.iteration(False)
        self.assertEqual((ev.calls, record), ([], []))
        del ev, timer
        gc.collect()
        self.assertEqual([r() for r in refs], [None, None])

    def test_nothing_grows_over_many_cycles(self):
        a, b = self.socketpair()

        def cycles(n):
            for _ in range(n):
                ev = DuckEvent(a)
                self.iops.update_event(ev, 1, 2)
                self.iops.update_event(ev, 16, 0)
                timer = DuckTimer(None)
                self.iops.update_timer(timer, 1, HOUR_US)
                self.iops.update_timer(timer, 16, 0)
            gc.collect()
            return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                    len(gc.get_objects()))

        cycles(20000)                    # warm up: every cache and arena
        rss0, objects0 = cycles(20000)
        rss1, objects1 = cycles(100000)
        self.assertEqual(self.registrations(), 0)
        self.assertLess(objects1 - objects0, 100,
                        '%d more Python objects' % (objects1 - objects0))
        # The peak RSS may not move at all; 2 MiB is far below what 100,000
        # leaked events (GObject, wrapper, adapter, dict) would take. Under
        # valgrind freed blocks wait in its quarantine: RSS says nothing.
        if 'vgpreload' not in os.environ.get('LD_PRELOAD', ''):
            self.assertLess(rss1 - rss0, 2048, 'RSS grew by %d KiB' % (rss1 - rss0))


# -- 2. int actions and flags --------------------------------------------

class TestInts(OverridesTestCase):

    @problem(2)
    def test_int_flags_on_a_real_event(self):
        a, b = self.socketpair()
        b.send(b'x')
        ev = Watch(a)
        self.iops.update_event(ev, 1, 2)
        self.run_loop()
        self.assertEqual(ev.calls, [READ])
        self.iops.update_event(ev, 1, 6)
        self.run_loop()
        self.iops.update_event(ev, 16, 0)
        self.assertEqual(ev.calls, [READ, RW])

    @problem(2)
    def test_int_and_enum_flags_mix(self):
        a, b = self.socketpair()
        ev = Iops.IOEvent.new(a.fileno())
        got = []
        ev.connect('ready', lambda obj, flags: got.append(flags))
        self.iops.update_event(ev, WATCH, 4)
        self.run_loop()
        self.iops.update_event(ev, 1, WRITE)
        self.run_loop()
        self.assertEqual(got, [WRITE, WRITE])
        self.iops.update_event(ev, CLEANUP, 0)


# -- 3. the SDK's method names on subclasses -----------------------------

class TestSdkNames(OverridesTestCase):

    @problem(3)
    def test_io_event_subclass_with_sdk_names(self):
        a, b = self.socketpair()
        b.send(b'x')

        class Conn(Iops.IOEvent):
            def __init__(self):
                super().__init__()
                self.calls = []

            def fileno(self):
                return a.fileno()

            def ready_r(self):
                self.calls.append('r')

            def ready_w(self):
                self.calls.append('w')

            def ready_rw(self):
                self.calls.append('rw')

        ev = Conn()
        # Enum values: without the overrides this fails for its own reason.
        self.iops.update_event(ev, WATCH, READ)
        self.run_loop()
        self.iops.update_event(ev, WATCH, WRITE)
        self.run_loop()
        self.iops.update_event(ev, WATCH, RW)
        self.run_loop()
        self.assertEqual(ev.calls, ['r', 'w', 'rw'])
        self.assertEqual(ev.props.fd, -1, 'the fd came from fileno()')

    @problem(3)
    def test_timer_subclass_with_sdk_name(self):
        record = []

        class T(Iops.TimerEvent):
            def ready(self, flags):
                record.append(flags)

        self.iops.update_timer(T(), WATCH, 0)
        self.run_loop()
        self.assertEqual(record, [0])

    def test_do_name_wins_in_one_class_most_derived_across(self):
        class Base(Iops.TimerEvent):
            def ready(self, flags):
                record.append('base ready')

            def do_ready(self, flags):
                record.append('base do_ready')

        class Derived(Base):
            def ready(self, flags):
                record.append('derived ready')

        record = []
        for cls in (Base, Derived):
            self.iops.update_timer(cls(), 1, 0)
            self.run_loop()
        self.assertEqual(record, ['base do_ready', 'derived ready'])

    def test_sdk_named_subclass_reached_from_c(self):
        # A C caller (the invoker, as a C IOPS would) reaches the SDK names.
        class Conn(Iops.IOEvent):
            def ready_w(self):
                self.seen = 'w'

        ev = Conn()
        Iops.IOEvent.ready_w(ev)
        self.assertEqual(ev.seen, 'w')


# -- 4. bad input raises, and changes nothing ------------------------------

class TestBadInput(OverridesTestCase):

    def armed_on_read(self):
        """An event watched for READ on a socket with data waiting."""
        a, b = self.socketpair()
        b.send(b'x')
        ev = Watch(a)
        self.iops.update_event(ev, WATCH, READ)
        return ev

    def assert_still_one_read(self, ev):
        self.run_loop()
        self.assertEqual(ev.calls, [READ])
        self.assertEqual(test_iops.library_log, [])

    @problem(4)
    def test_unknown_flags_raise_value_error(self):
        ev = self.armed_on_read()
        for flags in (0x10, 0x08, Iops.EventFlags(0x10), -2):
            self.assert_raises_naming(ValueError, 'flags',
                                      self.iops.update_event, ev, WATCH, flags)
        self.assert_still_one_read(ev)

    @problem(4)
    def test_negative_usecs_raise_value_error(self):
        record = []
        timer = Timer('t', record)
        self.iops.update_timer(timer, WATCH, 1000)
        self.assert_raises_naming(ValueError, 'usecs',
                                  self.iops.update_timer, timer, WATCH, -5)
        self.assert_raises_naming(ValueError, 'usecs', self.iops.update_timer,
                                  DuckTimer([]), WATCH, -5)
        self.run_loop()
        self.assertEqual(len(record), 1, 'the timer kept its deadline')
        self.assertEqual(self.registrations(), 0)

    @problem(4)
    def test_usecs_beyond_gint64_raise_value_error_every_time(self):
        record = []
        timer = Timer('t', record)
        duck = DuckTimer([])
        # The second call of each takes the fast path of a known class.
        for t in (timer, timer, duck, duck):
            self.assert_raises_naming(ValueError, 'usecs',
                                      self.iops.update_timer, t, WATCH, 1 << 63)
            self.iops.update_timer(t, WATCH, 1000)
        # Ignored by UNWATCH and CLEANUP, however large.
        self.iops.update_timer(duck, PYCBC_EVACTION_UNWATCH, 1 << 70)
        self.iops.update_timer(duck, CLEANUP, 1 << 70)
        self.iops.update_timer(timer, Iops.EvAction.UNWATCH, 1 << 70)
        self.iops.update_timer(timer, WATCH, 1000)
        self.run_loop()
        self.assertEqual(len(record), 1)
        self.iops.update_timer(timer, CLEANUP, 1 << 70)
        self.assertEqual(self.registrations(), 0)
        self.assertEqual(test_iops.library_log, [])

    @problem(4)
    def test_negative_fd_raises_value_error(self):
        ev = Iops.IOEvent.new(-1)
        self.assert_raises_naming(ValueError, 'event', self.iops.update_event,
                                  ev, WATCH, READ)
        self.run_loop()        # nothing armed: returns at once
        self.assertEqual(test_iops.library_log, [])

    def test_fd_set_negative_after_a_watch_raises(self):
        # The re-arm path remembers an fd found valid; every change of the
        # fd property (and the end of the event) makes it look again.
        a, b = self.socketpair()
        ev = Iops.IOEvent.new(a.fileno())
        for _ in range(3):
            self.iops.update_event(ev, WATCH, READ)
        for set_negative in (lambda: ev.set_fd(-1), lambda: setattr(ev.props, 'fd', -1)):
            set_negative()
            self.assert_raises_naming(ValueError, 'event', self.iops.update_event,
                                      ev, WATCH, READ)
            ev.set_fd(a.fileno())
            self.iops.update_event(ev, WATCH, READ)
        self.iops.update_event(ev, CLEANUP, 0)
        self.assertEqual(test_iops.library_log, [])

    def test_a_new_event_where_an_old_one_was(self):
        # A freed event's address is reused by new ones: none of them may
        # pass for the old event whose fd was valid.
        a, b = self.socketpair()
        for _ in range(200):
            ev = Iops.IOEvent.new(a.fileno())
            self.iops.update_event(ev, WATCH, READ)
            self.iops.update_event(ev, CLEANUP, 0)
            del ev
            bad = Iops.IOEvent.new(-1)
            self.assert_raises_naming(ValueError, 'event', self.iops.update_event,
                                      bad, WATCH, READ)
            del bad
        self.assertEqual(test_iops.library_log, [])

    @problem(4)
    def test_unknown_actions_raise_value_error(self):
        ev = self.armed_on_read()
        for action in (0, 3, 17, -1):
            self.assert_raises_naming(ValueError, 'action',
                                      self.iops.update_event, ev, action, READ)
            self.assert_raises_naming(ValueError, 'action',
                                      self.iops.update_timer, Timer('t', []), action, 0)
        self.assert_still_one_read(ev)

    def test_wrong_types_raise_type_error(self):
        ev = self.armed_on_read()
        for bad in (None, 5, 'event', object(), Iops.TimerEvent.new()):
            self.assert_raises_naming(TypeError, 'event',
                                      self.iops.update_event, bad, WATCH, READ)
        for bad in (None, 5, object(), Iops.IOEvent.new(0)):
            self.assert_raises_naming(TypeError, 'timer',
                                      self.iops.update_timer, bad, WATCH, 0)
        for flags in (2.0, '2', None):
            self.assert_raises_naming(TypeError, 'flags',
                                      self.iops.update_event, ev, WATCH, flags)
        for action in (1.0, 'watch', None):
            self.assert_raises_naming(TypeError, 'action',
                                      self.iops.update_event, ev, action, READ)
        self.assert_raises_naming(TypeError, 'usecs', self.iops.update_timer,
                                  Timer('t', []), WATCH, '10')
        self.assert_still_one_read(ev)

    def test_duck_missing_a_method_it_needs(self):
        class OnlyRead:
            def __init__(self, fd):
                self.fd = fd

            def fileno(self):
                return self.fd

            def ready_r(self):
                pass

        a, b = self.socketpair()
        duck = OnlyRead(a.fileno())
        self.assert_raises_naming(TypeError, 'ready_w', self.iops.update_event,
                                  duck, WATCH, WRITE)
        self.assertEqual(self.registrations(), 0)
        self.iops.update_event(duck, WATCH, READ)      # what it can do works
        self.iops.update_event(duck, CLEANUP, 0)

    def test_unwatch_and_cleanup_ignore_flags_and_usecs(self):
        a, b = self.socketpair()
        ev = DuckEvent(a)
        timer = DuckTimer([])
        self.iops.update_event(ev, 1, 2)
        self.iops.update_timer(timer, 1, HOUR_US)
        self.iops.update_event(ev, 2, 'ignored')
        self.iops.update_timer(timer, 2, -5)
        self.iops.update_event(ev, 16, 0x10)
        self.iops.update_timer(timer, 16, None)
        self.run_loop()
        self.assertEqual(self.registrations(), 0)

    def test_self_that_is_not_an_iops(self):
        a, b = self.socketpair()
        self.assert_raises_naming(TypeError, 'self', Iops.IOPS.update_event,
                                  None, DuckEvent(a), 1, 2)
        self.assert_raises_naming(TypeError, 'self', Iops.IOPS.update_timer,
                                  object(), DuckTimer([]), 1, 0)


# -- 5. fileno() at WATCH, in the caller's frame ----------------------------

class TestFileno(OverridesTestCase):

    @problem(5)
    def test_do_fileno_raising_reaches_the_caller(self):
        class Broken(Iops.IOEvent):
            def do_fileno(self):
                raise RuntimeError('no socket')

            def do_ready_r(self):
                self.delivered = True

        ev = Broken()
        with self.assertRaisesRegex(RuntimeError, 'no socket'):
            self.iops.update_event(ev, WATCH, READ)
        self.run_loop()        # nothing was armed (fd 0 above all)
        self.assertFalse(hasattr(ev, 'delivered'))

    @problem(5)
    def test_do_fileno_returning_none_raises_value_error(self):
        class NoFd(Iops.IOEvent):
            def do_fileno(self):
                return None

            def do_ready_r(self):
                self.delivered = True

        ev = NoFd()
        self.assert_raises_naming(ValueError, 'fileno', self.iops.update_event,
                                  ev, WATCH, READ)
        self.run_loop()
        self.assertFalse(hasattr(ev, 'delivered'))

    @problem(5)
    def test_bad_fileno_results_of_every_kind(self):
        class Returns(Iops.IOEvent):
            def fileno(self):
                return self.value

        class DuckReturns(DuckEvent):
            def fileno(self):
                return self.value

        a, b = self.socketpair()
        for event in (Returns(), DuckReturns(a)):
            for value in (None, -1, '3', 3.0, True, [3], 1 << 31, 1 << 64):
                event.value = value
                self.assert_raises_naming(ValueError, 'fileno',
                                          self.iops.update_event, event, WATCH, READ)
        self.run_loop()
        self.assertEqual(self.registrations(), 0)
        self.assertEqual(test_iops.library_log, [])

    def test_duck_fileno_raising_reaches_the_caller(self):
        class Raising(DuckEvent):
            def fileno(self):
                raise OSError('closed')

        a, b = self.socketpair()
        with self.assertRaisesRegex(OSError, 'closed'):
            self.iops.update_event(Raising(a), 1, 2)
        self.assertEqual(self.registrations(), 0)

    def test_python_fileno_runs_once_per_watch(self):
        a, b = self.socketpair()
        b.send(b'x')
        calls = []

        class Counting(Iops.IOEvent):
            def do_fileno(self):
                calls.append('fileno')     # a side effect that must not repeat
                return a.fileno()

            def do_ready_r(self):
                calls.append('ready')

        ev = Counting()
        self.iops.update_event(ev, WATCH, READ)
        self.assertEqual(calls, ['fileno'])
        self.run_loop()
        self.assertEqual(calls, ['fileno', 'ready'])
        self.assertEqual(ev.fileno(), a.fileno())       # a direct call runs it
        self.iops.update_event(ev, CLEANUP, 0)           # CLEANUP: no fileno
        self.assertEqual(calls, ['fileno', 'ready', 'fileno'])

    def test_fileno_called_from_c_outside_a_watch(self):
        # A C caller (here the invoker) gets -1, not PyGObject's 0, when a
        # Python fileno fails; the exception goes to sys.excepthook.
        class Broken(Iops.IOEvent):
            def do_fileno(self):
                raise RuntimeError('no socket')

        c_fileno = get_introspection_module('Iops').IOEvent.fileno
        self.assertEqual(c_fileno(Broken()), -1)
        self.expected_exceptions = 1
        self.assertIs(callback_exceptions[0][0], RuntimeError)


# -- 6. Ctrl-C -------------------------------------------------------------

class TestCtrlC(OverridesTestCase):

    def interrupt_when(self, event):
        """Sends SIGINT to the process from a thread once @event is set; the
        main thread is by then in (or about to enter) the context's poll."""
        def send():
            if event.wait(DEADLINE_MS / 1000):
                os.kill(os.getpid(), signal.SIGINT)
        thread = threading.Thread(target=send)
        thread.start()
        return thread

    def run_interrupted(self, iops, nested=False):
        # Iops.TimerEvent subclasses and enum values: the same test runs,
        # and fails, without the overrides.
        record = []
        long = Timer('long 5 s', record)
        kicked = threading.Event()

        def kick(timer):
            if nested:
                # The signal is sent once the inner level runs (a SIGINT
                # between two levels stops the outer one only, as with
                # GLib.MainLoop: the inner one would then run its course).
                inner = Timer('inner 5 s', record)
                iops.update_timer(inner, WATCH, 5_000_000)
                iops.update_timer(Timer('inner kick', [], lambda t: kicked.set()),
                                  WATCH, 0)
                iops.start_watching()
                record.append(('inner level returned', 0, 0))
                iops.update_timer(inner, CLEANUP, 0)
            else:
                kicked.set()

        iops.update_timer(long, WATCH, 5_000_000)
        iops.update_timer(Timer('kick', record, kick), WATCH, 0)
        thread = self.interrupt_when(kicked)
        try:
            with self.assertRaises(KeyboardInterrupt):
                iops.start_watching()
        finally:
            thread.join()
            kicked.set()
        iops.update_timer(long, CLEANUP, 0)
        return [name for name, _, _ in record]

    @problem(6)
    def test_sigint_returns_with_keyboard_interrupt(self):
        fired = self.run_interrupted(self.iops)
        self.assertEqual(fired, ['kick'], 'returned before the 5 s timer fired')

    @problem(6)
    def test_sigint_on_the_default_context(self):
        iops = Iops.GLibIOPS.new(None)
        fired = self.run_interrupted(iops)
        self.assertEqual(fired, ['kick'])

    @problem(6)
    def test_sigint_in_a_nested_level(self):
        fired = self.run_interrupted(self.iops, nested=True)
        self.assertEqual(fired, ['kick', 'inner level returned'])

    def test_handlers_are_restored(self):
        before = (signal.getsignal(signal.SIGINT), signal.set_wakeup_fd(-1))
        signal.set_wakeup_fd(before[1])
        self.iops.update_timer(DuckTimer([]), 1, 0)
        self.run_loop()
        after = (signal.getsignal(signal.SIGINT), signal.set_wakeup_fd(-1))
        signal.set_wakeup_fd(after[1])
        self.assertEqual(before, after)

    def test_start_watching_from_another_thread(self):
        ctx = GLib.MainContext.new()
        iops = Iops.GLibIOPS.new(ctx)
        record = []
        done = []

        def worker():
            ctx.push_thread_default()
            try:
                iops.update_timer(DuckTimer(record), 1, 1000)
                iops.start_watching()
                done.append(True)
            finally:
                ctx.pop_thread_default()

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(DEADLINE_MS / 1000)
        self.assertEqual((len(record), done), (1, [True]))


# -- exceptions raised in callbacks ----------------------------------------

class TestCallbackExceptions(OverridesTestCase):

    def test_they_reach_sys_excepthook_and_the_loop_goes_on(self):
        a, b = self.socketpair()
        b.send(b'x')

        class RaisingDuck(DuckEvent):
            def ready_r(self):
                super().ready_r()
                raise RuntimeError('in a duck ready_r')

        class RaisingSdkTimer(Iops.TimerEvent):
            def ready(self, flags):
                raise KeyError('in an SDK-named ready')

        class RaisingDuckTimer:
            def ready(self, flags):
                raise ValueError('in a duck ready')

        record = []
        ev = RaisingDuck(a)
        self.iops.update_event(ev, 1, 2)
        self.iops.update_timer(RaisingSdkTimer(), 1, 0)
        self.iops.update_timer(RaisingDuckTimer(), 1, 0)
        self.iops.update_timer(DuckTimer(record, 'after'), 1, 5000)
        self.run_loop()
        self.expected_exceptions = 3
        self.assertEqual(sorted(e[0].__name__ for e in callback_exceptions),
                         ['KeyError', 'RuntimeError', 'ValueError'])
        self.assertEqual([name for name, _, _ in record], ['after'])
        self.assertEqual(ev.calls, [LCB_READ_EVENT])
        # The traceback points at the line that raised.
        text = ''.join(traceback.format_exception(*callback_exceptions[0]))
        self.assertIn('raise', text)


# -- 7. help() ------------------------------------------------------------

class TestDocs(OverridesTestCase):

    @problem(7)
    def test_help_states_the_contract(self):
        text = pydoc.render_doc(Iops.GLibIOPS, renderer=pydoc.plaintext)
        for phrase in ('fileno()', 'one-shot', 'CLEANUP', 'ValueError',
                       'KeyboardInterrupt', 'never early', 'nothing armed'):
            self.assertIn(phrase, text)

    @problem(7)
    def test_each_overridden_method_has_a_docstring(self):
        for method in (Iops.GLibIOPS.update_event, Iops.GLibIOPS.update_timer,
                       Iops.GLibIOPS.start_watching, Iops.IOPS.update_event):
            self.assertIn('Raises' if method.__name__ != 'start_watching'
                          else 'Ctrl-C', method.__doc__ or '')


# -- running ---------------------------------------------------------------

def main():
    loader = unittest.TestLoader()
    tests = [t for t in test_iops._flatten(loader.loadTestsFromModule(sys.modules[__name__]))
             if isinstance(t, OverridesTestCase)]
    if len(sys.argv) > 1:
        tests = [t for t in tests if any(arg in t.id() for arg in sys.argv[1:])]
    if WITHOUT_OVERRIDES:
        return run_expecting_failures(tests)
    print('1..%d' % len(tests))
    print('# backend: %s' % test_iops.BACKEND)
    result = test_iops.TapResult()
    unittest.TestSuite(tests).run(result)
    return 0 if result.wasSuccessful() else 1


def run_expecting_failures(tests):
    """Each test of a numbered problem must fail without the overrides."""
    tests = [t for t in tests if hasattr(getattr(t, t._testMethodName), 'problem')]
    print('1..%d' % len(tests))
    print('# without the overrides; backend: %s' % test_iops.BACKEND)
    problems_seen = set()
    failures = 0
    for number, test in enumerate(tests, 1):
        result = unittest.TestResult()
        test.run(result)
        number_of_problem = getattr(test, test._testMethodName).problem
        problems_seen.add(number_of_problem)
        name = '%s (problem %d) fails without the overrides' % (test.id(), number_of_problem)
        if result.wasSuccessful():
            failures += 1
            print('not ok %d - %s: it passed' % (number, name))
        else:
            print('ok %d - %s' % (number, name))
            why = (result.failures + result.errors)[0][1].strip().splitlines()[-1]
            print('# %s' % why[:200])
        sys.stdout.flush()
    if problems_seen != set(range(1, 8)):
        print('# problems without a test: %s' % sorted(set(range(1, 8)) - problems_seen))
        failures += 1
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
