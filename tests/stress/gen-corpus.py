#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the seed corpus of fuzz-ops (corpus/*): operation sequences in
the byte language of iops-model.c. Callbacks read bytes from the same
stream, so a sequence is a starting point for the fuzzer, not an exact
script. Run it again after changing the operation encoding. The
corpus/regress-* files are fuzzer findings kept as they were found."""

import os
import random

# Opcode bytes: the first byte of each range in op_weights[] of iops-model.c.
IO_WATCH, IO_UNWATCH, IO_CLEANUP, IO_NEW, IO_UNREF = 0, 40, 52, 60, 66
TM_WATCH, TM_UNWATCH, TM_CLEANUP, TM_NEW, TM_UNREF = 71, 95, 103, 108, 112
WRITE, READ, FILL, CLOSE, OPEN = 115, 145, 165, 169, 175
SET_PERSISTENT, SET_PRIORITY, IOPS_RESET, ITERATE = 185, 188, 190, 255
R, W, RW = 0, 1, 2
CB_END = [0x80, ITERATE]  # a callback that does not re-arm, then no ops


def open_chan(chan):
    return [OPEN, chan, 0]


def io_new(slot):
    return [IO_NEW, slot]


def io_watch(slot, end, flags):
    return [IO_WATCH, slot * 2, 200, flags, end]


def io_watch_invalid(slot, flags):
    return [IO_WATCH, slot * 2, 0, flags, 0]


def tm_new(slot):
    return [TM_NEW, slot]


def tm_watch(slot, usecs_byte):
    return [TM_WATCH, slot * 2, usecs_byte]


def iterate(callbacks=2):
    return [ITERATE] + CB_END * callbacks


def rearm_loop():
    out = [0] + open_chan(0) + io_new(0) + io_new(1)
    out += io_watch(0, 0, R) + io_watch(1, 1, W)
    for i in range(40):
        out += [WRITE, 1, 1 + i % 60] + [ITERATE, 0x40, ITERATE, 0x41, ITERATE]
    return out


def close_while_armed():
    out = [0] + open_chan(0) + open_chan(1) + io_new(0) + io_new(1) + io_new(2)
    out += io_watch(0, 0, R) + io_watch(1, 1, RW) + io_watch(2, 2, W)
    out += [CLOSE, 0] + iterate() + [CLOSE, 1] + iterate()
    out += io_watch_invalid(2, RW) + iterate() + open_chan(0) + io_watch(0, 0, R)
    out += [WRITE, 1, 5] + iterate() + [IO_CLEANUP, 0, 0, IO_UNREF, 0] + iterate()
    return out


def timers_fifo():
    out = [1]
    for slot in range(6):
        out += tm_new(slot)
    for rnd in range(8):
        for slot in range(6):
            out += tm_watch(slot, [0, 130, 0, 200, 140, 0][slot])
        out += [TM_UNWATCH, 2 * (rnd % 6), 0] + iterate(6) + iterate(6)
    out += [TM_CLEANUP, 0, 0, TM_UNREF, 0] + iterate()
    return out


def persistent_hangup():
    out = [1] + open_chan(2) + io_new(3) + io_new(4)
    out += io_watch(3, 4, R) + io_watch(4, 5, RW) + [WRITE, 5, 9] + iterate()
    out += [CLOSE, 5] + iterate(3) + iterate(3) + [IO_UNWATCH, 6, 0] + iterate()
    out += [SET_PERSISTENT, SET_PRIORITY, 1] + io_watch(4, 4, RW) + iterate()
    out += [IOPS_RESET, 0] + iterate()
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
            [WRITE, rng.randrange(6), rng.randrange(64)],
            [READ, rng.randrange(6)],
            [IO_UNWATCH, 2 * rng.randrange(4), 0],
            iterate(rng.randrange(4)),
        ])
    return out


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
    os.makedirs(here, exist_ok=True)
    for name, gen in [('rearm-loop', rearm_loop), ('close-while-armed', close_while_armed),
                      ('timers-fifo', timers_fifo), ('persistent-hangup', persistent_hangup),
                      ('mixed', mixed)]:
        with open(os.path.join(here, name), 'wb') as f:
            f.write(bytes(gen()))


if __name__ == '__main__':
    main()
