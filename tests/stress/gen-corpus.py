#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the seed corpus of fuzz-ops (corpus/*): operation sequences in
the byte language of iops-model.c. Callbacks read bytes from the same
stream, so a sequence is a starting point for the fuzzer, not an exact
script. The opcode bytes come from the ops[] table of iops-model.c, read
here, so the corpus follows a change of weights when it is written again.
The corpus/regress-* files are fuzzer findings kept as they were found."""

import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))


def opcodes():
    """The first opcode byte of each operation: ops[] in iops-model.c, in
    order, each taking as many bytes as its weight; ITERATE the rest."""
    with open(os.path.join(HERE, 'iops-model.c'), encoding='utf-8') as f:
        table = re.findall(r'\[OP_\w+\]\s*=\s*\{\s*"(\w+)",\s*(\d+),', f.read())
    first, byte = {}, 0
    for name, weight in table:
        first[name] = byte
        byte += int(weight)
    assert byte < 256 and 'ITERATE' in first, 'ops[] not found in iops-model.c'
    first['ITERATE'] = 255
    return first


OP = opcodes()
R, W, RW = 0, 1, 2
CB_END = [0x80, OP['ITERATE']]  # a callback that does not re-arm, then no ops
NO_REENTRY = 0xff               # a fileno() call that does nothing more
REENTER = 0                     # one that runs an operation: then its index in
FILENO_CLEANUP, FILENO_WATCH, FILENO_UNWATCH, FILENO_UNREF = 0, 1, 2, 3  # fileno_ops[]
OWN = 1                         # a pick byte that names the event in hand
CROWD_DEVNULL, CROWD_SOCKETS, CROWD_MIXED = 0, 1, 2


def open_chan(chan):
    return [OP['OPEN'], chan, 0]


def io_new(slot, reentrant=False):
    # Bytes 36-47 make an event whose fileno() may re-enter (see op_io_new).
    return [OP['IO_NEW'], slot + (36 if reentrant else 0)]


def io_watch(slot, end, flags):
    return [OP['IO_WATCH'], slot * 2, 200, flags, end]


def io_watch_invalid(slot, flags):
    return [OP['IO_WATCH'], slot * 2, 0, flags, 0]


def tm_new(slot):
    return [OP['TM_NEW'], slot]


def tm_watch(slot, usecs_byte):
    return [OP['TM_WATCH'], slot * 2, usecs_byte]


def iterate(callbacks=2):
    return [OP['ITERATE']] + CB_END * callbacks


def crowd(size, kind, seed=0):
    return [OP['CROWD'], 0, size, kind, seed]


def rearm_loop():
    out = [0] + open_chan(0) + io_new(0) + io_new(1)
    out += io_watch(0, 0, R) + io_watch(1, 1, W)
    for i in range(40):
        out += [OP['WRITE'], 1, 1 + i % 60] + [OP['ITERATE'], 0x40, OP['ITERATE'], 0x41, OP['ITERATE']]
    return out


def close_while_armed():
    out = [0] + open_chan(0) + open_chan(1) + io_new(0) + io_new(1) + io_new(2)
    out += io_watch(0, 0, R) + io_watch(1, 1, RW) + io_watch(2, 2, W)
    out += [OP['CLOSE'], 0] + iterate() + [OP['CLOSE'], 1] + iterate()
    out += io_watch_invalid(2, RW) + iterate() + open_chan(0) + io_watch(0, 0, R)
    out += [OP['WRITE'], 1, 5] + iterate() + [OP['IO_CLEANUP'], 0, 0, OP['IO_UNREF'], 0] + iterate()
    return out


def timers_fifo():
    out = [1]
    for slot in range(6):
        out += tm_new(slot)
    for rnd in range(8):
        for slot in range(6):
            out += tm_watch(slot, [0, 130, 0, 200, 140, 0][slot])
        out += [OP['TM_UNWATCH'], 2 * (rnd % 6), 0] + iterate(6) + iterate(6)
    out += [OP['TM_CLEANUP'], 0, 0, OP['TM_UNREF'], 0] + iterate()
    return out


def persistent_hangup():
    out = [1] + open_chan(2) + io_new(3) + io_new(4)
    out += io_watch(3, 4, R) + io_watch(4, 5, RW) + [OP['WRITE'], 5, 9] + iterate()
    out += [OP['CLOSE'], 5] + iterate(3) + iterate(3) + [OP['IO_UNWATCH'], 6, 0] + iterate()
    out += [OP['SET_PERSISTENT'], OP['SET_PRIORITY'], 1] + io_watch(4, 4, RW) + iterate()
    out += [OP['IOPS_RESET'], 0] + iterate()
    return out


def mixed():
    rng = random.Random(7)
    out = [0] + open_chan(0) + open_chan(1) + open_chan(2)
    for slot in range(4):
        out += io_new(slot) + tm_new(slot)
    while len(out) < 900:
        out += rng.choice([
            io_watch(rng.randrange(4), rng.randrange(6), rng.randrange(3)),
            tm_watch(rng.randrange(4), rng.randrange(256)),
            [OP['WRITE'], rng.randrange(6), rng.randrange(64)],
            [OP['READ'], rng.randrange(6)],
            [OP['IO_UNWATCH'], 2 * rng.randrange(4), 0],
            iterate(rng.randrange(4)),
        ])
    return out


# A size byte of 40 makes about 400 fds (see op_crowd()): enough to need
# more than one dispatch's worth, cheap enough for the fuzzer.
CROWD_400 = 40


def crowd_devnull():
    """Some 400 /dev/null fds, which epoll polls directly, one-shot and
    re-armed from their callbacks: every one must be delivered."""
    return [0] + crowd(CROWD_400, CROWD_DEVNULL) + [OP['ITERATE']] * 30


def crowd_sockets_persistent():
    """Socket ends with unread data or room (and idle ones), persistent."""
    return [1] + crowd(CROWD_400, CROWD_SOCKETS, 7) + [OP['ITERATE']] * 30


def crowd_mixed():
    """A crowd of both kinds while other watches come and go."""
    out = [0] + open_chan(0) + io_new(0) + io_new(1) + crowd(CROWD_400, CROWD_MIXED, 3)
    out += io_watch(0, 0, R) + io_watch(1, 1, W)
    for i in range(30):
        out += [OP['WRITE'], 1, 1 + i] + [OP['ITERATE'], 0x40, OP['ITERATE'], 0x41, OP['ITERATE']]
    return out


def fileno_reentry():
    """WATCHes whose fileno() CLEANUPs, WATCHes, UNWATCHes or unrefs its own
    event before it returns; each WATCH must still be one registration on
    the fd fileno() returned."""
    out = [0] + open_chan(0) + io_new(0, reentrant=True) + io_new(1, reentrant=True)
    for _ in range(3):
        # fileno() cleans up its own event: the WATCH registers it afresh.
        out += io_watch(0, 0, R) + [REENTER, FILENO_CLEANUP, OWN, 0]
        out += [OP['WRITE'], 1, 5] + iterate()
        # fileno() watches its own event (for W): then R, one registration.
        out += io_watch(0, 0, R) + [REENTER, FILENO_WATCH, OWN, 200, W, 0]
        out += [OP['WRITE'], 1, 5] + iterate() + iterate()
        # fileno() unwatches the other event, then its own.
        out += io_watch(1, 1, W) + [NO_REENTRY]
        out += io_watch(0, 0, R) + [REENTER, FILENO_UNWATCH, 2, 0]
        out += io_watch(0, 0, R) + [REENTER, FILENO_UNWATCH, OWN, 0]
        out += [OP['WRITE'], 1, 5] + iterate()
        # fileno() drops the consumer's reference; it is taken back later.
        out += io_watch(0, 0, R) + [REENTER, FILENO_UNREF, OWN]
        out += [OP['WRITE'], 1, 5] + iterate() + [OP['IO_REVIVE'], 0]
        out += [OP['IO_CLEANUP'], 0, 0, OP['IO_CLEANUP'], 2, 0] + iterate()
    return out


def drop_on_thread():
    """Fired, disarmed events and timers whose consumer reference a worker
    thread drops while the context runs."""
    out = [0] + open_chan(0) + open_chan(1)
    for rnd in range(12):
        for slot in range(4):
            out += io_new(slot) + io_watch(slot, slot, RW)
        out += tm_new(0) + tm_watch(0, 0)
        out += [OP['WRITE'], 1, 3, OP['WRITE'], 3, 3] + iterate(5)
        for slot in range(4):
            out += [OP['IO_DROP_THREAD'], 0]
        out += [OP['TM_DROP_THREAD'], 0]
        out += io_new(4) + io_watch(4, 0, R) + [OP['WRITE'], 1, 3] + iterate(2)
        out += [OP['IO_CLEANUP'], 0, 0, OP['IO_UNREF'], 0] + iterate()
        if rnd % 4 == 3:
            out += [OP['IOPS_RESET'], 0] + iterate()
    return out


CORPUS = [
    ('rearm-loop', rearm_loop), ('close-while-armed', close_while_armed),
    ('timers-fifo', timers_fifo), ('persistent-hangup', persistent_hangup),
    ('mixed', mixed), ('crowd-devnull', crowd_devnull),
    ('crowd-sockets-persistent', crowd_sockets_persistent), ('crowd-mixed', crowd_mixed),
    ('fileno-reentry', fileno_reentry), ('drop-on-thread', drop_on_thread),
]


def main():
    out_dir = os.path.join(HERE, 'corpus')
    os.makedirs(out_dir, exist_ok=True)
    for name, gen in CORPUS:
        with open(os.path.join(out_dir, name), 'wb') as f:
            f.write(bytes(gen()))


if __name__ == '__main__':
    main()
