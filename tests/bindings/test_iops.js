// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The Iops binding as GJS sees it: enum and flag values, timers (firing,
// order, the "ready" signal, UNWATCH), fd watches over a loopback TCP
// connection (an IOEvent subclass with vfunc_fileno / vfunc_ready_r, and a
// plain IOEvent with a "ready" handler), a ping-pong, properties, an armed
// event whose JS reference was dropped, and a JS class implementing Iops.IOPS.
//
// Every loop runs under a deadline (a GLib timeout that calls stop_watching
// and fails the test). Callbacks only record what happened; the checks come
// after the loop, because GJS logs and swallows exceptions thrown inside
// vfuncs and signal handlers. Results are printed as TAP.
//
// Run with `gjs -m test_iops.js`, GI_TYPELIB_PATH and LD_LIBRARY_PATH
// pointing at build/src; meson test does this.

import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import Gio from 'gi://Gio';
import Iops from 'gi://Iops?version=1.0';
import System from 'system';

const {WATCH, UNWATCH, CLEANUP} = Iops.EvAction;
const {READ_EVENT: READ, WRITE_EVENT: WRITE, RW_EVENT: RW} = Iops.EventFlags;
const DEADLINE_MS = 20000;
const HOUR_US = 3600 * 1000000;
const BACKEND = GLib.getenv('IOPS_GLIB_BACKEND') ?? 'default';

// -- helpers ----------------------------------------------------------------

class AssertionError extends Error {
    name = 'AssertionError';
}

function assert(condition, message) {
    if (!condition)
        throw new AssertionError(message);
}

function assertEqual(actual, expected, what = 'value') {
    const a = JSON.stringify(actual);
    const e = JSON.stringify(expected);
    assert(a === e, `${what}: got ${a}, expected ${e}`);
}

// Runs start_watching on the default context under a deadline.
function run(iops) {
    let timedOut = false;
    const id = GLib.timeout_add(GLib.PRIORITY_DEFAULT, DEADLINE_MS, () => {
        timedOut = true;
        iops.stop_watching();
        return GLib.SOURCE_REMOVE;
    });
    iops.start_watching();
    if (!timedOut)
        GLib.source_remove(id);
    assert(!timedOut, `deadline hit: start_watching did not return within ${DEADLINE_MS} ms`);
}

// A connected loopback TCP pair of Gio.Sockets, with streams over their fds.
function socketPair() {
    const family = Gio.SocketFamily.IPV4;
    const type = Gio.SocketType.STREAM;
    const listener = Gio.Socket.new(family, type, Gio.SocketProtocol.TCP);
    listener.bind(Gio.InetSocketAddress.new_from_string('127.0.0.1', 0), true);
    listener.listen();
    const client = Gio.Socket.new(family, type, Gio.SocketProtocol.TCP);
    client.connect(listener.get_local_address(), null);
    const server = listener.accept(null);
    listener.close();
    return [client, server].map(socket => ({
        socket,
        fd: socket.get_fd(),
        input: Gio.UnixInputStream.new(socket.get_fd(), false),
        output: Gio.UnixOutputStream.new(socket.get_fd(), false),
    }));
}

function send(end, text) {
    end.output.write_bytes(new GLib.Bytes(new TextEncoder().encode(text)), null);
}

// Reads what is there (the fd must be readable, or this blocks).
function receive(end) {
    return new TextDecoder().decode(end.input.read_bytes(256, null).toArray());
}

// An fd watch subclass: fileno is a JS field, ready_* are recorded.
const Watch = GObject.registerClass(
class Watch extends Iops.IOEvent {
    _init(fd, onReady = null) {
        super._init();
        this._fd = fd;
        this._onReady = onReady;
        this.calls = [];
    }

    vfunc_fileno() {
        return this._fd;
    }

    _ready(flags) {
        this.calls.push(flags);
        this._onReady?.(this, flags);
    }

    vfunc_ready_r() {
        this._ready(READ);
    }

    vfunc_ready_w() {
        this._ready(WRITE);
    }

    vfunc_ready_rw() {
        this._ready(RW);
    }
});

// A timer subclass recording [name, flags, monotonic time] when it fires.
const Timer = GObject.registerClass(
class Timer extends Iops.TimerEvent {
    _init(name, record, onReady = null) {
        super._init();
        this.name = name;
        this._record = record;
        this._onReady = onReady;
    }

    vfunc_ready(flags) {
        this._record.push([this.name, flags, GLib.get_monotonic_time()]);
        this._onReady?.(this);
    }
});

// -- tests ------------------------------------------------------------------

const tests = [];
function test(name, fn) {
    tests.push({name, fn});
}

test('enum and flag values', () => {
    assertEqual([WATCH, UNWATCH, CLEANUP], [1, 2, 16], 'EvAction');
    assertEqual([READ, WRITE, RW], [2, 4, 6], 'EventFlags');
    assertEqual(READ | WRITE, RW, 'READ | WRITE');
});

test('properties', () => {
    const iops = Iops.GLibIOPS.new(null);
    assert(iops instanceof Iops.IOPS, 'GLibIOPS is an Iops.IOPS');
    assertEqual(iops.priority, GLib.PRIORITY_DEFAULT, 'default priority');
    assertEqual(iops.persistent, false, 'default persistent');
    assert(iops.context !== null, 'context is set');
    const notified = [];
    iops.connect('notify', (obj, pspec) => notified.push(pspec.get_name()));
    iops.priority = GLib.PRIORITY_DEFAULT;
    iops.priority = GLib.PRIORITY_HIGH;
    iops.persistent = true;
    assertEqual(notified, ['priority', 'persistent'], 'notifications');
    assertEqual(iops.get_priority(), GLib.PRIORITY_HIGH, 'priority');
    assertEqual(Iops.IOEvent.new(7).fd, 7, 'IOEvent fd');
    assertEqual(Iops.IOEvent.new(7).fileno(), 7, 'IOEvent fileno');
});

test('timer subclass fires once, with flags 0, never early', () => {
    const iops = Iops.GLibIOPS.new(null);
    const record = [];
    const timer = new Timer('t', record);
    const start = GLib.get_monotonic_time();
    iops.update_timer(timer, WATCH, 3000);
    assertEqual(record.length, 0, 'fired from inside update_timer');
    run(iops);
    assertEqual(record.length, 1, 'times fired');
    assertEqual(record[0][1], 0, 'flags');
    assert(record[0][2] - start >= 3000, `fired early: after ${record[0][2] - start} us`);
});

test('timers fire in deadline order, never early', () => {
    const iops = Iops.GLibIOPS.new(null);
    const delays = {a: 30000, b: 5000, c: 20000, d: 0, e: 5000, f: 10000, g: 0};
    const record = [];
    const timers = Object.keys(delays).map(name => new Timer(name, record));
    // Each deadline lies in [before + usecs, after + usecs] of its WATCH; the
    // order is checked against those bounds, so a slow machine cannot fail it.
    const armed = {};
    for (const timer of timers) {
        const usecs = delays[timer.name];
        const before = GLib.get_monotonic_time();
        iops.update_timer(timer, WATCH, usecs);
        armed[timer.name] = [before + usecs, GLib.get_monotonic_time() + usecs];
    }
    run(iops);
    const fired = record.map(r => r[0]);
    assertEqual([...fired].sort(), Object.keys(delays).sort(), 'each fires once');
    for (let i = 1; i < fired.length; i++) {
        assert(armed[fired[i - 1]][0] <= armed[fired[i]][1],
            `${fired[i - 1]} fired before ${fired[i]}, whose deadline is earlier: ${fired}`);
    }
    for (const [name, flags, when] of record) {
        assertEqual(flags, 0, `flags of ${name}`);
        assert(when >= armed[name][0], `timer ${name} fired early`);
    }
});

test('plain TimerEvent emits ready', () => {
    const iops = Iops.GLibIOPS.new(null);
    const timer = Iops.TimerEvent.new();
    const got = [];
    timer.connect('ready', (obj, flags) => got.push([obj === timer, flags]));
    iops.update_timer(timer, WATCH, 0);
    run(iops);
    assertEqual(got, [[true, 0]], 'ready emissions');
});

test('UNWATCH cancels a timer, also from another timer', () => {
    const iops = Iops.GLibIOPS.new(null);
    const record = [];
    const cancelled = new Timer('cancelled', record);
    iops.update_timer(cancelled, WATCH, 0);
    iops.update_timer(cancelled, UNWATCH, 0);
    run(iops);  // nothing armed: returns at once
    assertEqual(record, [], 'fired after UNWATCH');

    const second = new Timer('second', record);
    const first = new Timer('first', record,
        () => iops.update_timer(second, UNWATCH, 0));
    iops.update_timer(first, WATCH, 0);
    iops.update_timer(second, WATCH, 0);
    run(iops);
    assertEqual(record.map(r => r[0]), ['first'], 'fired');
});

test('stop_watching from a callback', () => {
    const iops = Iops.GLibIOPS.new(null);
    const record = [];
    const long = new Timer('long', record);
    const stopper = new Timer('stop', record, () => iops.stop_watching());
    iops.update_timer(long, WATCH, HOUR_US);
    iops.update_timer(stopper, WATCH, 0);
    run(iops);
    assertEqual(record.map(r => r[0]), ['stop'], 'fired');
    iops.update_timer(long, CLEANUP, 0);
});

test('IOEvent subclass: vfunc_fileno and vfunc_ready_r', () => {
    const iops = Iops.GLibIOPS.new(null);
    const [client, server] = socketPair();
    const received = [];
    const ev = new Watch(server.fd, () => received.push(receive(server)));
    assertEqual(ev.fileno(), server.fd, 'fileno through the invoker');
    send(client, 'hello');
    iops.update_event(ev, WATCH, READ);
    assertEqual(ev.calls, [], 'called from inside update_event');
    run(iops);
    assertEqual(ev.calls, [READ], 'calls');
    assertEqual(received, ['hello'], 'received');
    iops.update_event(ev, CLEANUP, 0);
    client.socket.close();
    server.socket.close();
});

test('plain IOEvent emits ready with what is ready', () => {
    const iops = Iops.GLibIOPS.new(null);
    const [client, server] = socketPair();
    const ev = Iops.IOEvent.new(server.fd);
    const got = [];
    ev.connect('ready', (obj, flags) => got.push(flags));
    iops.update_event(ev, WATCH, RW);       // writable only
    run(iops);
    send(client, 'x');
    iops.update_event(ev, WATCH, READ);
    run(iops);
    iops.update_event(ev, WATCH, RW);       // readable and writable
    run(iops);
    assertEqual(got, [WRITE, READ, RW], 'ready flags');
    iops.update_event(ev, CLEANUP, 0);
    client.socket.close();
    server.socket.close();
});

test('ping-pong, 200 round trips', () => {
    const iops = Iops.GLibIOPS.new(null);
    const [client, server] = socketPair();
    const errors = [];
    let roundTrips = 0;
    const rounds = 200;
    const serverEv = new Watch(server.fd, ev => {
        send(server, receive(server).replace('ping', 'pong'));
        iops.update_event(ev, WATCH, READ);
    });
    const clientEv = new Watch(client.fd, ev => {
        const data = receive(client);
        if (data !== `pong ${roundTrips}`) {
            errors.push(`got ${data}, expected pong ${roundTrips}`);
            iops.stop_watching();
            return;
        }
        roundTrips++;
        if (roundTrips < rounds) {
            send(client, `ping ${roundTrips}`);
            iops.update_event(ev, WATCH, READ);
        } else {
            iops.update_event(ev, CLEANUP, 0);
            iops.update_event(serverEv, CLEANUP, 0);
        }
    });
    iops.update_event(serverEv, WATCH, READ);
    iops.update_event(clientEv, WATCH, READ);
    send(client, 'ping 0');
    run(iops);
    assertEqual(errors, [], 'errors');
    assertEqual(roundTrips, rounds, 'round trips');
    client.socket.close();
    server.socket.close();
});

test('an armed event whose JS reference was dropped is still delivered', () => {
    const iops = Iops.GLibIOPS.new(null);
    const [client, server] = socketPair();
    const seen = [];
    (function arm() {
        const ev = new Watch(server.fd, w => seen.push(w.tag));
        ev.tag = 'watch state';
        iops.update_event(ev, WATCH, READ);
        const timer = new Timer('timer state', [], t => seen.push(t.name));
        iops.update_timer(timer, WATCH, 1000);
    })();
    System.gc();
    send(client, 'x');
    run(iops);
    assertEqual(seen.sort(), ['timer state', 'watch state'], 'delivered');
    client.socket.close();
    server.socket.close();
});

// A JS class implementing the interface; records what reaches it.
const RecordingIOPS = GObject.registerClass({
    Implements: [Iops.IOPS],
}, class RecordingIOPS extends GObject.Object {
    _init() {
        super._init();
        this.calls = [];
    }

    vfunc_update_event(event, action, flags) {
        this.calls.push(['update_event', event.fd, action, flags]);
    }

    vfunc_update_timer(timer, action, usecs) {
        this.calls.push(['update_timer', action, usecs]);
    }

    vfunc_start_watching() {
        this.calls.push(['start_watching']);
    }

    vfunc_stop_watching() {
        this.calls.push(['stop_watching']);
    }
});

test('a JS class implementing Iops.IOPS, called through the interface', () => {
    const iops = new RecordingIOPS();
    assert(iops instanceof Iops.IOPS, 'is an Iops.IOPS');
    iops.update_event(Iops.IOEvent.new(3), WATCH, RW);
    Iops.IOPS.prototype.update_timer.call(iops, Iops.TimerEvent.new(), WATCH, 2 ** 40);
    iops.update_timer(Iops.TimerEvent.new(), UNWATCH, 0);
    iops.start_watching();
    iops.stop_watching();
    assertEqual(iops.calls, [
        ['update_event', 3, WATCH, RW],
        ['update_timer', WATCH, 2 ** 40],
        ['update_timer', UNWATCH, 0],
        ['start_watching'],
        ['stop_watching'],
    ], 'calls');
    // The factories are not implemented: the interface's defaults apply.
    const event = iops.io_event_factory();
    assert(event.constructor === Iops.IOEvent, `io_event_factory gave ${event}`);
    assertEqual(event.fd, -1, 'factory event fd');
    assert(iops.timer_event_factory().constructor === Iops.TimerEvent,
        'timer_event_factory gives an Iops.TimerEvent');
});

// -- a small TAP printer ----------------------------------------------------

print(`1..${tests.length}`);
print(`# backend: ${BACKEND}`);
let failed = 0;
tests.forEach(({name, fn}, i) => {
    try {
        fn();
        print(`ok ${i + 1} - ${name} [${BACKEND}]`);
    } catch (e) {
        failed++;
        print(`not ok ${i + 1} - ${name} [${BACKEND}]`);
        for (const line of `${e}\n${e.stack ?? ''}`.trimEnd().split('\n'))
            print(`# ${line}`);
    }
});
System.exit(failed === 0 ? 0 : 1);
