/* ping-pong.vala — two ends of a socketpair bounce a counter, through Iops.IOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   iops-vala-ping-pong [ROUNDS]
 *
 * Each end is a subclass of Iops.IOEvent overriding fileno () and
 * ready_r (): it reads the counter, and while the counter is below ROUNDS
 * writes it back plus one and watches again (watches are one-shot). A
 * ticker, an Iops.TimerEvent subclass, re-arms itself every millisecond
 * while the game runs, and cancels the deadline, a plain Iops.TimerEvent
 * with a "ready" handler, once it is over. start_watching () returns by
 * itself once nothing is armed.
 */

const int64 TICK_USECS = 1000;
const int64 DEADLINE_USECS = 10 * 1000 * 1000;

class Player : Iops.IOEvent {
    public Iops.IOPS iops;
    public int socket_fd;
    public string name;
    public uint rounds;
    public uint received = 0;
    public bool done = false;

    public Player (Iops.IOPS iops, int socket_fd, string name, uint rounds) {
        this.iops = iops;
        this.socket_fd = socket_fd;
        this.name = name;
        this.rounds = rounds;
    }

    public override int fileno () {
        return socket_fd;
    }

    public void send (uint32 count) {
        uint32 be = count.to_big_endian ();
        if (Posix.write (socket_fd, &be, sizeof (uint32)) != sizeof (uint32))
            GLib.error ("%s: write failed: %s", name, Posix.strerror (Posix.errno));
    }

    public void watch () {
        iops.update_event (this, Iops.EvAction.WATCH, Iops.EventFlags.READ_EVENT);
    }

    /* The watch was disarmed before this call: watch again for more. */
    public override void ready_r () {
        uint32 be = 0;
        if (Posix.read (socket_fd, &be, sizeof (uint32)) != sizeof (uint32)) {
            finish ();
            return;
        }
        uint32 count = uint32.from_big_endian (be);
        received++;
        if (count >= rounds) {
            finish ();
            return;
        }
        send (count + 1);
        watch ();
    }

    /* The peer sees our close () as EOF, which finishes it in turn. */
    public void finish () {
        done = true;
        iops.update_event (this, Iops.EvAction.CLEANUP, (Iops.EventFlags) 0);
        Posix.close (socket_fd);
    }
}

class Ticker : Iops.TimerEvent {
    public Iops.IOPS iops;
    public Player[] players;
    public Iops.TimerEvent deadline;
    public uint ticks = 0;

    public Ticker (Iops.IOPS iops, Player[] players, Iops.TimerEvent deadline) {
        this.iops = iops;
        this.players = players;
        this.deadline = deadline;
    }

    /* Disarmed before this call, so arming again here works. */
    public override void ready (int flags) {
        ticks++;
        foreach (var player in players) {
            if (!player.done) {
                iops.update_timer (this, Iops.EvAction.WATCH, TICK_USECS);
                return;
            }
        }
        iops.update_timer (deadline, Iops.EvAction.CLEANUP, 0);
    }
}

int main (string[] args) {
    uint rounds = args.length > 1 ? (uint) uint64.parse (args[1]) : 1000;
    var glib_iops = new Iops.GLibIOPS (null);
    Iops.IOPS iops = glib_iops;

    int fds[2];
    if (Posix.socketpair (Posix.AF_UNIX, Posix.SOCK_STREAM, 0, fds) != 0)
        GLib.error ("socketpair: %s", Posix.strerror (Posix.errno));

    var ping = new Player (iops, fds[0], "ping", rounds);
    var pong = new Player (iops, fds[1], "pong", rounds);
    bool timed_out = false;
    var deadline = iops.timer_event_factory ();
    deadline.ready.connect ((timer, flags) => {
        timed_out = true;
        iops.stop_watching ();
    });

    var ticker = new Ticker (iops, { ping, pong }, deadline);

    ping.watch ();
    pong.watch ();
    ping.send (1);
    iops.update_timer (ticker, Iops.EvAction.WATCH, TICK_USECS);
    iops.update_timer (deadline, Iops.EvAction.WATCH, DEADLINE_USECS);

    iops.start_watching ();

    uint total = ping.received + pong.received;
    print ("backend: %s\n", glib_iops.get_backend ());
    print ("counter messages: %u (ping %u, pong %u)\n", total, ping.received, pong.received);
    print ("ticks: %u\n", ticker.ticks);
    if (timed_out || total != rounds) {
        printerr ("expected %u messages before the deadline\n", rounds);
        return 1;
    }
    return 0;
}
