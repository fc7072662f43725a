// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A TCP echo server and N clients on 127.0.0.1, driven through Iops.IOPS
// from GJS.
//
//     gjs -m echo.js [--clients N] [--requests M]
//
// Each client sends M short requests one after the other and waits for each
// echo, with a timeout timer per request. The only event-loop calls are the
// IOPS interface's: update_event() to watch an fd (watches are one-shot, so
// each callback watches again for what it needs next), update_timer() for
// the timeouts, and start_watching(), which returns by itself once nothing
// is armed. Sockets are non-blocking, connects included. Connections
// subclass Iops.IOEvent (vfunc_fileno, vfunc_ready_r, vfunc_ready_w);
// the listening socket is a plain Iops.IOEvent with a "ready" handler.
//
// Exits 0 when every request made its round trip.

import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import Gio from 'gi://Gio';
import Iops from 'gi://Iops?version=1.0';
import System from 'system';

const {WATCH, UNWATCH, CLEANUP} = Iops.EvAction;
const {READ_EVENT: READ, WRITE_EVENT: WRITE} = Iops.EventFlags;
const TIMEOUT_US = 5 * 1000 * 1000;

function parseArgs(argv) {
    const options = {clients: 4, requests: 25};
    for (let i = 0; i < argv.length; i += 2) {
        const name = argv[i].replace(/^--/, '');
        const value = Number.parseInt(argv[i + 1], 10);
        if (!(name in options) || !(value >= 0))
            throw new Error(`usage: echo.js [--clients N] [--requests M] (bad "${argv[i]}")`);
        options[name] = value;
    }
    return options;
}

const stats = {connections: 0, roundTrips: 0, timeouts: 0, errors: 0};
const iops = Iops.GLibIOPS.new(null);

// One end of a TCP connection. The Gio.Socket owns the fd (and keeps it open
// while this object lives); the streams only read and write it.
const Connection = GObject.registerClass(
class Connection extends Iops.IOEvent {
    _init(socket) {
        super._init();
        this.socket = socket;
        this._input = Gio.UnixInputStream.new(socket.get_fd(), false);
        this._output = Gio.UnixOutputStream.new(socket.get_fd(), false);
    }

    vfunc_fileno() {
        return this.socket.get_fd();
    }

    // The watch is one-shot: it was disarmed before this call.
    vfunc_ready_r() {
        let bytes;
        try {
            bytes = this._input.read_bytes(4096, null);
        } catch (error) {
            if (error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.WOULD_BLOCK)) {
                this.watch();
                return;
            }
            this.failed(error);
            return;
        }
        if (bytes.get_size() === 0)
            this.closedByPeer();
        else
            this.received(bytes);
    }

    // Only a connecting client watches for WRITE.
    vfunc_ready_w() {
        this.writable();
    }

    watch() {
        iops.update_event(this, WATCH, READ);
    }

    send(bytes) {
        // Short messages on loopback: the kernel buffer always has room.
        this._output.write_bytes(bytes, null);
    }

    writable() {
    }

    close() {
        // CLEANUP: the IOPS forgets the event and drops its references.
        iops.update_event(this, CLEANUP, 0);
        this.socket.close();
    }

    closedByPeer() {
        this.close();
    }

    failed(error) {
        stats.errors++;
        printerr(`connection: ${error.message}`);
        this.close();
    }
});

// The server's side: sends back what it receives.
const EchoConnection = GObject.registerClass(
class EchoConnection extends Connection {
    received(bytes) {
        this.send(bytes);
        this.watch();
    }
});

// A client: one request at a time, each guarded by a timeout timer.
const Client = GObject.registerClass(
class Client extends Connection {
    _init(address, number, requests, onDone) {
        const socket = Gio.Socket.new(Gio.SocketFamily.IPV4,
            Gio.SocketType.STREAM, Gio.SocketProtocol.TCP);
        socket.set_blocking(false);
        let connecting = false;
        try {
            socket.connect(address, null);
        } catch (error) {
            if (!error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.PENDING))
                throw error;
            connecting = true;
        }
        super._init(socket);
        this._connecting = connecting;
        this._number = number;
        this._requests = requests;
        this._onDone = onDone;
        this._sent = 0;
        this._expected = '';
        this._echo = '';
        this._timer = Iops.TimerEvent.new();
        this._timer.connect('ready', () => this.timedOut());
    }

    start() {
        if (!this._connecting) {
            this.nextRequest();
            return;
        }
        // Writable means connected, or failed: check_connect_result tells.
        iops.update_event(this, WATCH, WRITE);
        iops.update_timer(this._timer, WATCH, TIMEOUT_US);
    }

    writable() {
        try {
            this.socket.check_connect_result();
        } catch (error) {
            this.failed(error);
            return;
        }
        this._connecting = false;
        this.nextRequest();
    }

    nextRequest() {
        if (this._sent === this._requests) {
            this.finish();
            return;
        }
        this._expected = `client ${this._number} request ${this._sent}\n`;
        this._echo = '';
        this._sent++;
        iops.update_timer(this._timer, WATCH, TIMEOUT_US);
        this.send(new GLib.Bytes(new TextEncoder().encode(this._expected)));
        this.watch();
    }

    received(bytes) {
        this._echo += new TextDecoder().decode(bytes.toArray());
        if (this._echo.length < this._expected.length) {
            this.watch();
            return;
        }
        if (this._echo !== this._expected) {
            this.failed(new Error(`wrong echo "${this._echo}"`));
            return;
        }
        stats.roundTrips++;
        iops.update_timer(this._timer, UNWATCH, 0);
        this.nextRequest();
    }

    timedOut() {
        stats.timeouts++;
        const what = this._connecting ? 'connect' : `request ${this._sent - 1}`;
        printerr(`client ${this._number}: ${what} timed out`);
        this.finish();
    }

    closedByPeer() {
        this.failed(new Error('the server closed the connection'));
    }

    failed(error) {
        stats.errors++;
        printerr(`client ${this._number}: ${error.message}`);
        this.finish();
    }

    finish() {
        iops.update_timer(this._timer, CLEANUP, 0);
        this.close();
        this._onDone();
    }
});

function main(argv) {
    const options = parseArgs(argv);

    const listener = Gio.Socket.new(Gio.SocketFamily.IPV4,
        Gio.SocketType.STREAM, Gio.SocketProtocol.TCP);
    listener.bind(Gio.InetSocketAddress.new_from_string('127.0.0.1', 0), true);
    listener.set_listen_backlog(128);
    listener.listen();
    listener.set_blocking(false);

    // The listening socket: a plain IOEvent and its "ready" signal.
    const accepting = Iops.IOEvent.new(listener.get_fd());
    const connections = new Set();
    accepting.connect('ready', () => {
        for (;;) {
            let socket;
            try {
                socket = listener.accept(null);
            } catch (error) {
                if (!error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.WOULD_BLOCK))
                    throw error;
                break;
            }
            stats.connections++;
            const connection = new EchoConnection(socket);
            connections.add(connection);
            connection.watch();
        }
        iops.update_event(accepting, WATCH, READ);
    });
    iops.update_event(accepting, WATCH, READ);

    let running = options.clients;
    const stopListening = () => {
        // The last armed watches go as the clients' EOFs arrive.
        iops.update_event(accepting, CLEANUP, 0);
        listener.close();
    };
    const clientDone = () => {
        if (--running === 0)
            stopListening();
    };

    const start = GLib.get_monotonic_time();
    const clients = [];
    for (let n = 0; n < options.clients; n++)
        clients.push(new Client(listener.get_local_address(), n, options.requests, clientDone));
    if (clients.length === 0)
        stopListening();
    clients.forEach(client => client.start());

    iops.start_watching();
    const elapsed = (GLib.get_monotonic_time() - start) / 1e6;

    const expected = options.clients * options.requests;
    print(`backend:     ${iops.get_backend()}`);
    print(`connections: ${stats.connections}`);
    print(`round trips: ${stats.roundTrips} of ${expected}`);
    print(`timeouts:    ${stats.timeouts}`);
    print(`errors:      ${stats.errors}`);
    print(`elapsed:     ${elapsed.toFixed(3)} s`);
    connections.clear();
    const ok = stats.roundTrips === expected && stats.timeouts === 0 &&
        stats.errors === 0 && stats.connections === options.clients;
    return ok ? 0 : 1;
}

System.exit(main(System.programArgs));
