# SPDX-License-Identifier: LGPL-2.1-or-later
"""PyGObject overrides for the Iops namespace (iops-glib).

They let Python consumers use an IOPS the way the Couchbase Python SDK does:

- Iops.IOPS.update_event() / update_timer() (and so Iops.GLibIOPS's) accept
  duck-typed events and timers -- any object with fileno() and
  ready_r() / ready_w() / ready_rw(), timers with ready(flags) -- as well as
  Iops.IOEvent / Iops.TimerEvent instances; plain ints as well as
  Iops.EvAction / Iops.EventFlags values.
- fileno() is called at WATCH, in the caller's frame: what it raises reaches
  the caller, and a result that is not an int >= 0 raises ValueError.
- Bad arguments raise TypeError / ValueError naming the argument, and the
  rejected call changes nothing, instead of a CRITICAL being logged.
- Subclasses of Iops.IOEvent / Iops.TimerEvent may use the SDK's method
  names (fileno, ready_r, ready_w, ready_rw, ready) as well as the do_ ones.
- Iops.GLibIOPS.start_watching() returns with KeyboardInterrupt on Ctrl-C.

Exceptions raised in callbacks (ready_r/ready_w/ready_rw/ready of any kind of
event, "ready" signal handlers) go to sys.excepthook, which prints them by
default, and the loop goes on, as for every GLib callback in PyGObject.

How it is built: a duck-typed event gets a private Iops.IOEvent (or
Iops.TimerEvent) subclass instance, its adapter, kept by the IOPS from the
event's first WATCH until its CLEANUP (the contract lets an IOPS hold
references that long); the adapter's virtual methods call the duck's methods.
The adapter's fd is the property the C library reads, set from the duck's
fileno() at each WATCH, so no Python fileno runs inside the C call. Real
Iops events go straight to the C method after a few table look-ups.
"""

import math
import operator
import os
import signal
import socket
import sys
import threading

from ..module import get_introspection_module
from ..overrides import override
from .. import _ossighelper

from gi.repository import GLib

Iops = get_introspection_module('Iops')

__all__ = []

WATCH = Iops.EvAction.WATCH
UNWATCH = Iops.EvAction.UNWATCH
CLEANUP = Iops.EvAction.CLEANUP
_NO_FLAGS = Iops.EventFlags(0)
_READ = Iops.EventFlags.READ_EVENT
_WRITE = Iops.EventFlags.WRITE_EVENT
_RW = Iops.EventFlags.RW_EVENT

# Ints and enum values hash and compare alike, so one look-up both checks
# a value and turns it into the enum value the C call takes.
_ACTIONS = {1: WATCH, 2: UNWATCH, 16: CLEANUP}
_FLAGS = {0: _NO_FLAGS, 2: _READ, 4: _WRITE, 6: _RW}
# The types the fast paths take without a closer look (a float such as 2.0
# equals a valid int, but is refused by the general path).
_ACTION_TYPES = frozenset((int, Iops.EvAction))
_FLAG_TYPES = frozenset((int, Iops.EventFlags))
# The fast paths recognise WATCH by identity: the enum value, or the int 1
# (CPython has one object for each small int); any other 1 takes the
# general path, which gives the same result.
_INT_WATCH = 1

# The introspected methods, called unbound (the override replaces them).
_c_update_event = Iops.IOPS.update_event
_c_update_timer = Iops.IOPS.update_timer
_c_start_watching = Iops.IOPS.start_watching
_c_io_event_fileno = Iops.IOEvent.fileno
_c_set_fd = Iops.IOEvent.set_fd
_c_get_fd = Iops.IOEvent.get_fd
_IOPS_TYPE = Iops.IOPS
_IO_EVENT_TYPE = Iops.IOEvent
_TIMER_EVENT_TYPE = Iops.TimerEvent

# The attributes of an IOPS wrapper that hold its duck-typed registrations.
_DUCK_EVENTS = '_iops_duck_events'
_DUCK_TIMERS = '_iops_duck_timers'

# The largest fd (a C int) and usecs (a gint64) the C library takes;
# PyGObject raises OverflowError, naming no argument, above them.
_G_MAXINT = (1 << 31) - 1
_G_MAXINT64 = (1 << 63) - 1


# -- argument checks --------------------------------------------------------

def _describe(value):
    return type(value).__name__


def _is_int(value):
    """An int or another integer type (with __index__); not a bool."""
    return (not isinstance(value, (bool, float))
            and (isinstance(value, int) or hasattr(type(value), '__index__')))


def _action(method, value):
    """The Iops.EvAction for @value, or TypeError / ValueError."""
    if not _is_int(value):
        raise TypeError('%s(): argument action must be an int or an '
                        'Iops.EvAction, not %s' % (method, _describe(value)))
    action = _ACTIONS.get(operator.index(value))
    if action is None:
        raise ValueError('%s(): argument action must be WATCH (1), UNWATCH (2) '
                         'or CLEANUP (16), not %r' % (method, value))
    return action


def _watch_flags(value):
    """The Iops.EventFlags of a WATCH, or TypeError / ValueError."""
    if not _is_int(value):
        raise TypeError('update_event(): argument flags must be an int or '
                        'Iops.EventFlags, not %s' % _describe(value))
    flags = _FLAGS.get(operator.index(value))
    if flags is None:
        raise ValueError('update_event(): argument flags must be a combination '
                         'of READ_EVENT (0x02) and WRITE_EVENT (0x04), not %#x'
                         % operator.index(value))
    return flags


def _usecs(value):
    """@value as the non-negative int of a timer WATCH."""
    if isinstance(value, float) and math.isfinite(value):
        usecs = int(value)    # what PyGObject's marshalling always did
        negative = value < 0
    elif _is_int(value):
        usecs = operator.index(value)
        negative = usecs < 0
    else:
        raise TypeError('update_timer(): argument usecs must be an int, not %s'
                        % _describe(value))
    if negative:
        raise ValueError('update_timer(): argument usecs must be >= 0 at '
                         'WATCH, not %r' % (value,))
    if usecs > _G_MAXINT64:
        raise ValueError('update_timer(): argument usecs must be at most %d, '
                         'not %r' % (_G_MAXINT64, value))
    return usecs


def _valid_fd(value, where):
    """@value if it is a usable fd number, else ValueError."""
    if type(value) is int and 0 <= value <= _G_MAXINT:
        return value
    if _is_int(value) and 0 <= operator.index(value) <= _G_MAXINT:
        return operator.index(value)
    raise ValueError('update_event(): argument event: %s is %r; a WATCH needs '
                     'an int file descriptor from 0 to %d' % (where, value, _G_MAXINT))


# -- Iops.IOEvent and Iops.TimerEvent subclasses ------------------------------

# The SDK's method names and the virtual methods they stand for.
_IO_EVENT_NAMES = (('ready_r', 'do_ready_r'),
                   ('ready_w', 'do_ready_w'),
                   ('ready_rw', 'do_ready_rw'))


def _python_fileno_vfunc(self):
    """The fileno virtual method of every class with a fileno in Python.

    During a WATCH made through these overrides the C library gets the value
    update_event() already read and checked, so the user's fileno runs once.
    Called from C in any other way, it runs the user's fileno; a failure goes
    to sys.excepthook and the C library is given -1, which it refuses,
    rather than the 0 PyGObject would return (a watch on stdin)."""
    fd = self.__dict__.get('_iops_watch_fd')
    if fd is not None:
        return fd
    try:
        return _valid_fd(type(self)._iops_fileno(self), 'fileno()')
    except BaseException:
        sys.excepthook(*sys.exc_info())
        return -1


def _install_sdk_names(cls, names):
    """Makes each SDK-named method defined by @cls its virtual method too,
    unless the class defines the do_ name itself (which then wins)."""
    namespace = cls.__dict__
    for sdk_name, vfunc_name in names:
        method = namespace.get(sdk_name)
        if callable(method) and vfunc_name not in namespace:
            setattr(cls, vfunc_name, method)


class IOEvent(Iops.IOEvent):
    """One file descriptor watch of the IOPS contract.

    Subclass it and override ready_r(), ready_w(), ready_rw() -- by those
    names, as in the Couchbase Python SDK, or as do_ready_r() and so on --
    or connect to its "ready" signal. The fd watched is what fileno() (or
    do_fileno()) returns at each WATCH; by default the "fd" property.
    """

    # The Python fileno of this class, or None for the C one (the fd property).
    _iops_fileno = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _install_sdk_names(cls, _IO_EVENT_NAMES)
        namespace = cls.__dict__
        fileno = namespace.get('do_fileno', namespace.get('fileno'))
        if callable(fileno):
            cls._iops_fileno = fileno
            cls.do_fileno = _python_fileno_vfunc

    def fileno(self):
        """The fd a WATCH of this event watches now (the fileno virtual
        method; by default the "fd" property)."""
        fileno = type(self)._iops_fileno
        if fileno is None:
            return _c_io_event_fileno(self)
        return fileno(self)


IOEvent = override(IOEvent)
__all__.append('IOEvent')


class TimerEvent(Iops.TimerEvent):
    """One timer of the IOPS contract.

    Subclass it and override ready(flags) -- by that name, as in the
    Couchbase Python SDK, or as do_ready(flags) -- or connect to its "ready"
    signal. flags is always 0.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _install_sdk_names(cls, (('ready', 'do_ready'),))


TimerEvent = override(TimerEvent)
__all__.append('TimerEvent')


# -- adapters for duck-typed events -------------------------------------------

class _DuckIOEvent(IOEvent):
    """Stands for a duck-typed event towards the C library.

    Lives in its IOPS's registrations from the duck's first WATCH until its
    CLEANUP; holds the duck, so an armed duck is delivered even when the
    consumer dropped it. Its fd property is the duck's latest fileno()."""

    __gtype_name__ = 'IopsPythonDuckIOEvent'
    __module__ = 'gi.repository.Iops.adapters'  # not an override: own GType

    def __init__(self, duck):
        super().__init__()
        self.duck = duck
        self.watched_fd = -1        # its fd property, as last set
        self.checked = _NO_FLAGS    # the latest flags its methods were checked for

    def do_ready_r(self):
        self.duck.ready_r()

    def do_ready_w(self):
        self.duck.ready_w()

    def do_ready_rw(self):
        self.duck.ready_rw()


class _DuckTimerEvent(TimerEvent):
    """Stands for a duck-typed timer, as _DuckIOEvent for events."""

    __gtype_name__ = 'IopsPythonDuckTimerEvent'
    __module__ = 'gi.repository.Iops.adapters'

    def __init__(self, duck):
        super().__init__()
        self.duck = duck

    def do_ready(self, flags):
        self.duck.ready(flags)


# The methods a duck-typed event needs for the flags of a WATCH.
_NEEDED_METHODS = {_READ: ('ready_r',),
                   _WRITE: ('ready_w',),
                   _RW: ('ready_r', 'ready_w', 'ready_rw')}


def _registrations(iops, name):
    """The duck registrations @name of @iops: {id(duck): adapter}."""
    try:
        return iops.__dict__[name]
    except (AttributeError, KeyError):
        if not isinstance(iops, _IOPS_TYPE):
            raise TypeError('argument self must be an Iops.IOPS, not %s'
                            % _describe(iops)) from None
        table = iops.__dict__[name] = {}
        return table


def _check_duck_methods(duck, flags):
    for name in _NEEDED_METHODS[flags]:
        if not callable(getattr(duck, name, None)):
            raise TypeError('update_event(): argument event has no %s() method, '
                            'needed to watch it for %s' % (name, flags.first_value_nick))


def _not_an_event(method, argument, value, what):
    return TypeError('%s(): argument %s must be %s, not %s'
                     % (method, argument, what, _describe(value)))


_EVENT_WHAT = ('an Iops.IOEvent or an object with fileno() and '
               'ready_r() / ready_w() / ready_rw() methods')
_TIMER_WHAT = 'an Iops.TimerEvent or an object with a ready(flags) method'


def _duck_event_update(iops, duck, action, flags):
    """update_event() for a duck-typed event: every case but the re-arm."""
    table = _registrations(iops, _DUCK_EVENTS)
    adapter = table.get(id(duck))
    if adapter is None and not callable(getattr(duck, 'fileno', None)):
        raise _not_an_event('update_event', 'event', duck, _EVENT_WHAT)
    action = _action('update_event', action)
    if action is WATCH:
        flags = _watch_flags(flags)
        if flags is _NO_FLAGS:
            action = UNWATCH
    if action is not WATCH:
        if adapter is not None:
            if action is CLEANUP:
                del table[id(duck)]
            _c_update_event(iops, adapter, action, _NO_FLAGS)
        return

    if adapter is None or flags is not adapter.checked:
        _check_duck_methods(duck, flags)
    fd = _valid_fd(duck.fileno(), 'fileno()')
    if adapter is None:
        adapter = _DuckIOEvent(duck)
        table[id(duck)] = adapter
    adapter.checked = flags
    _arm_adapter(iops, adapter, fd, flags)


def _arm_adapter(iops, adapter, fd, flags):
    if fd != adapter.watched_fd:
        _c_set_fd(adapter, fd)
        adapter.watched_fd = fd
    _c_update_event(iops, adapter, WATCH, flags)


def _python_fileno_update(iops, event, action, flags):
    """update_event() for an Iops.IOEvent subclass with a Python fileno."""
    if action is not WATCH:
        action = _action('update_event', action)
    if action is WATCH:
        watch_flags = _FLAGS.get(flags) if type(flags) in _FLAG_TYPES else None
        flags = watch_flags if watch_flags is not None else _watch_flags(flags)
    if action is not WATCH or flags is _NO_FLAGS:
        return _c_update_event(iops, event, action, _NO_FLAGS)
    fd = _valid_fd(type(event)._iops_fileno(event), 'fileno()')
    event._iops_watch_fd = fd
    try:
        _c_update_event(iops, event, WATCH, flags)
    finally:
        del event._iops_watch_fd


def _general_update_event(iops, event, action, flags):
    """update_event() for everything but a valid re-arm of a real event."""
    kind = _io_kind(type(event))
    if kind is None:
        return _duck_event_update(iops, event, action, flags)
    if kind is _PYTHON_FILENO:
        return _python_fileno_update(iops, event, action, flags)
    action = _action('update_event', action)
    if action is WATCH:
        flags = _watch_flags(flags)
        if flags is not _NO_FLAGS:
            _valid_fd(_c_get_fd(event), 'its fd property')
            _c_fileno_classes.add(type(event))
            _remember_valid_fd(event)
    else:
        flags = _NO_FLAGS
    return _c_update_event(iops, event, action, flags)


# Real events whose fd property was >= 0 at a WATCH and has not changed
# since, by the address of their GObject (hash() of a wrapper): the re-arm
# needs no call to read it. "notify::fd" (the C library notifies every
# change) and finalization take an event out; the look-up is the only cost
# on the path. An fd set while notifications are frozen (freeze_notify())
# is seen by the C library's own check instead, which logs a critical.
_valid_fd_events = set()
_tracked_fd_events = set()


def _remember_valid_fd(event):
    key = hash(event)
    if key not in _tracked_fd_events:
        _tracked_fd_events.add(key)
        event.connect('notify::fd', _on_fd_notify)
        event.weak_ref(_forget_fd_event, key)
    _valid_fd_events.add(key)


def _on_fd_notify(event, pspec):
    _valid_fd_events.discard(hash(event))


def _forget_fd_event(key):
    _valid_fd_events.discard(key)
    _tracked_fd_events.discard(key)


# What an event's class is: a real one whose fd property is watched, a real
# one with a fileno in Python, or (None) anything else. Filled on first use.
_C_FILENO = 'C fileno'
_PYTHON_FILENO = 'Python fileno'
_io_kinds = {}
# The classes the fast paths of update_event() and update_timer() take:
# real events (with the C fileno) and timers, added on first sight.
_c_fileno_classes = set()
_python_fileno_classes = set()
_timer_classes = set()
_NO_DUCKS = {}    # stands for an IOPS without duck-typed events; never filled


def _io_kind(cls):
    kind = _io_kinds.get(cls)
    if kind is None and issubclass(cls, _IO_EVENT_TYPE):
        if getattr(cls, '_iops_fileno', None) is not None:
            kind = _PYTHON_FILENO
            _python_fileno_classes.add(cls)
        else:
            kind = _C_FILENO
        _io_kinds[cls] = kind
    return kind


# -- update_timer ------------------------------------------------------------

def _duck_timer_update(iops, duck, action, usecs):
    table = _registrations(iops, _DUCK_TIMERS)
    adapter = table.get(id(duck))
    if adapter is None and not callable(getattr(duck, 'ready', None)):
        raise _not_an_event('update_timer', 'timer', duck, _TIMER_WHAT)
    action = _action('update_timer', action)
    if action is not WATCH:
        if adapter is not None:
            if action is CLEANUP:
                del table[id(duck)]
            _c_update_timer(iops, adapter, action, 0)
        return
    usecs = _usecs(usecs)
    if adapter is None:
        adapter = _DuckTimerEvent(duck)
        table[id(duck)] = adapter
    _c_update_timer(iops, adapter, WATCH, usecs)


def _general_update_timer(iops, timer, action, usecs):
    if not isinstance(timer, _TIMER_EVENT_TYPE):
        return _duck_timer_update(iops, timer, action, usecs)
    action = _action('update_timer', action)
    usecs = _usecs(usecs) if action is WATCH else 0
    _timer_classes.add(type(timer))  # arguments checked: the fast path may take it
    return _c_update_timer(iops, timer, action, usecs)


# -- the IOPS methods ------------------------------------------------------

def update_event(self, event, action, flags):
    """update_event(event, action, flags)

    Watches, unwatches or forgets a file descriptor event.

    event: an Iops.IOEvent, or any object with fileno() and ready_r(),
        ready_w(), ready_rw() methods (the Couchbase Python SDK's events).
    action: WATCH (1), UNWATCH (2) or CLEANUP (16), an int or Iops.EvAction.
    flags: READ_EVENT (0x02), WRITE_EVENT (0x04) or both (0x06), an int or
        Iops.EventFlags; 0 means UNWATCH. Ignored by UNWATCH and CLEANUP.

    WATCH calls event.fileno() now, in this frame (an exception it raises
    propagates; a result that is not an int >= 0 raises ValueError), and
    watches that fd, replacing what the event watched before. The watch is
    one-shot unless the IOPS is persistent: it is disarmed before exactly
    one of ready_r(), ready_w(), ready_rw() is called, matching what is ready
    (errors and hang-ups count as ready for every watched flag). Callbacks
    come only from the main loop, never from inside this call.
    UNWATCH disarms: no callback after it returns. CLEANUP disarms and drops
    every reference the IOPS holds on the event; the IOPS keeps an armed
    event alive, so the caller may drop its own reference at any time.

    Raises TypeError or ValueError, naming the argument, for bad arguments;
    a rejected call changes nothing.
    """
    # The re-arm every delivery makes, of a real event or of a duck-typed one
    # already registered, takes a few look-ups; anything else the general path.
    if (action is WATCH or action is _INT_WATCH) and type(flags) in _FLAG_TYPES:
        cls = type(event)
        if cls in _c_fileno_classes:
            watch_flags = _FLAGS.get(flags)
            if watch_flags is not None and hash(event) in _valid_fd_events:
                return _c_update_event(self, event, WATCH, watch_flags)
        elif cls in _python_fileno_classes:
            return _python_fileno_update(self, event, WATCH, flags)
        else:
            adapter = getattr(self, '__dict__', _NO_DUCKS).get(_DUCK_EVENTS, _NO_DUCKS).get(id(event))
            if adapter is not None:
                watch_flags = _FLAGS.get(flags)
                if watch_flags is adapter.checked and watch_flags is not None:
                    fd = event.fileno()
                    if type(fd) is not int or fd < 0:
                        fd = _valid_fd(fd, 'fileno()')
                    if fd != adapter.watched_fd:
                        _c_set_fd(adapter, fd)
                        adapter.watched_fd = fd
                    return _c_update_event(self, adapter, WATCH, watch_flags)
    return _general_update_event(self, event, action, flags)


def update_timer(self, timer, action, usecs):
    """update_timer(timer, action, usecs)

    Arms, cancels or forgets a one-shot timer.

    timer: an Iops.TimerEvent, or any object with a ready(flags) method (the
        Couchbase Python SDK's timers).
    action: WATCH (1), UNWATCH (2) or CLEANUP (16), an int or Iops.EvAction.
    usecs: at WATCH, the delay in microseconds, an int >= 0; ignored by
        UNWATCH and CLEANUP.

    WATCH arms the timer due usecs from now on the monotonic clock, or
    reschedules it if armed. It fires ready(0) once, never early, from the
    main loop, disarmed before the call (re-arming from ready() works).
    Timers fire in deadline order, equal deadlines in the order of their
    latest WATCH. UNWATCH cancels; CLEANUP cancels and drops every reference
    the IOPS holds on the timer.

    Raises TypeError or ValueError, naming the argument, for bad arguments;
    a rejected call changes nothing.
    """
    # Arming and cancelling a real timer, or arming a duck-typed one already
    # registered, takes a few look-ups; anything else the general path.
    if type(usecs) is int and 0 <= usecs <= _G_MAXINT64 and type(action) in _ACTION_TYPES:
        if type(timer) in _timer_classes:
            c_action = _ACTIONS.get(action)
            if c_action is not None:
                return _c_update_timer(self, timer, c_action, usecs)
        elif action is WATCH or action is _INT_WATCH:
            try:
                adapter = self.__dict__[_DUCK_TIMERS][id(timer)]
            except (KeyError, AttributeError):
                pass
            else:
                return _c_update_timer(self, adapter, WATCH, usecs)
    return _general_update_timer(self, timer, action, usecs)


class IOPS(Iops.IOPS):
    """The IOPS event-loop interface (couchbase.iops.base.IOPS).

    update_event() / update_timer() take Iops events or the SDK's duck-typed
    ones, with int or enum actions and flags; see their help().
    """

    update_event = update_event
    update_timer = update_timer


IOPS = override(IOPS)
__all__.append('IOPS')


# -- start_watching: Ctrl-C --------------------------------------------------

class _SignalWakeup:
    """Wakes the main loops running in start_watching() when a signal comes.

    Python runs a signal handler only when it next runs Python code, and a
    main loop waiting in poll() runs none: signal.set_wakeup_fd() makes the
    signal write a byte to a socket, and a source on each running level's
    context reads it, which is Python code, so the handler runs (by default
    PyGObject's, which stops the innermost level). One socket pair for the
    process, the wakeup fd set while the outermost level runs."""

    def __init__(self):
        self.sockets = None
        self.depth = 0
        self.previous_fd = -1
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self):
        # A child makes a pair of its own, not to read its parent's bytes.
        if self.sockets is not None and self.depth == 0:
            for end in self.sockets:
                end.close()
            self.sockets = None

    def _socket_pair(self):
        if self.sockets is None:
            read_end, write_end = socket.socketpair()
            for end in (read_end, write_end):
                end.setblocking(False)
                end.set_inheritable(False)
            self.sockets = read_end, write_end
        return self.sockets

    def _drain(self, *_):
        read_end = self.sockets[0]
        try:
            data = read_end.recv(4096)
        except OSError:
            return GLib.SOURCE_CONTINUE
        # A previous wakeup fd (asyncio's, say) reads signal numbers from it.
        if data and self.previous_fd >= 0:
            try:
                os.write(self.previous_fd, data)
            except OSError:
                pass
        return GLib.SOURCE_CONTINUE

    def enter(self, context):
        """Returns the source to pass to leave(), or None (not the main
        thread: Python gives signals to the main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        read_end, write_end = self._socket_pair()
        if self.depth == 0:
            try:
                self.previous_fd = signal.set_wakeup_fd(write_end.fileno())
            except ValueError:      # not the main interpreter
                return None
        self.depth += 1
        source = GLib.unix_fd_source_new(read_end.fileno(), GLib.IOCondition.IN)
        source.set_callback(self._drain)
        source.set_priority(GLib.PRIORITY_HIGH)
        source.attach(context)
        return source

    def leave(self, source):
        if source is None:
            return
        source.destroy()
        self.depth -= 1
        if self.depth == 0:
            signal.set_wakeup_fd(self.previous_fd)
            self.previous_fd = -1


_signal_wakeup = _SignalWakeup()


class GLibIOPS(Iops.GLibIOPS):
    """The IOPS interface on a GLib main context.

    Iops.GLibIOPS.new(None) uses the thread-default context (the global
    default one where none is pushed). Events fire whenever anyone iterates
    that context -- GTK's loop, Gio.Application.run(), GLib.MainLoop --
    not only inside start_watching().
    """

    update_event = update_event
    update_timer = update_timer

    def start_watching(self):
        """start_watching()

        Runs the IOPS's context (a GLib main loop level) until
        stop_watching() is called or until this IOPS has nothing armed (no
        watch, no timer), so it never blocks forever on nothing. Calls may
        nest, from a callback or from a GTK handler; stop_watching() ends
        the innermost level and may be called from any thread.

        Ctrl-C (SIGINT, with Python's default handler) ends every running
        level promptly, the outermost then raising KeyboardInterrupt, as
        GLib.MainLoop.run() does; another Python signal handler runs
        promptly too.
        """
        with _ossighelper.register_sigint_fallback(self.stop_watching):
            source = _signal_wakeup.enter(self.get_context())
            try:
                _c_start_watching(self)
            finally:
                _signal_wakeup.leave(source)


GLibIOPS = override(GLibIOPS)
__all__.append('GLibIOPS')
