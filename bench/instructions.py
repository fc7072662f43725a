#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Counts the user-space instructions one ping-pong delivery costs.

The wall-clock figures of bench/run.py at P=1 N=0 are mostly kernel time:
every system makes the same three syscalls per delivery (poll, read, write),
so a library's own work shows there only as a percent or two, below the
noise of a shared machine. This counts what each system executes in user
space, with valgrind's callgrind: the same figure on every run.

Each system runs the ping-pong workload twice under callgrind, for
--short and --long deliveries; the difference of the two totals divided by
the difference of the counts is the cost of one delivery, without start-up
and tear-down.

  bench/instructions.py                       the GLib systems, P=1 N=0
  bench/instructions.py --idle 1000 --systems iops-glib-oneshot,libev
  bench/instructions.py --update-docs         also into docs/benchmarks.md
"""

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DOCS_START = '<!-- instructions:start (written by bench/instructions.py --update-docs) -->'
DOCS_END = '<!-- instructions:end -->'
DEFAULT_SYSTEMS = 'glib-gsource,iops-glib-oneshot,iops-glib-persistent,libverto-glib,libev'


def load_run():
    spec = importlib.util.spec_from_file_location('bench_run', os.path.join(HERE, 'run.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def instructions(valgrind, system, opts, count):
    """Total instructions of one run of @count deliveries."""
    args = [valgrind, '--tool=callgrind', '--callgrind-out-file=/dev/null',
            system.exe, '--system', system.driver, '--workload', 'pingpong',
            '--pairs', str(opts.pairs), '--idle', str(opts.idle),
            '--count', str(count), '--seconds', '1000', '--warmup', '0']
    result = subprocess.run(args, env=system.env(), capture_output=True, text=True,
                            timeout=opts.timeout)
    if result.returncode != 0:
        sys.exit(f'{system.label}: exit {result.returncode}: '
                 f'{result.stderr.strip().splitlines()[-1:]}')
    match = re.search(r'Collected\s*:\s*(\d+)', result.stderr) or \
        re.search(r'I\s+refs:\s*([\d,]+)', result.stderr)
    if match is None:
        sys.exit(f'{system.label}: no instruction count in valgrind\'s output')
    return int(match.group(1).replace(',', ''))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-C', '--build-dir', default=os.path.join(REPO, 'build'),
                        help='meson build directory (default: build)')
    parser.add_argument('--systems', default=DEFAULT_SYSTEMS,
                        help=f'comma-separated systems (default: {DEFAULT_SYSTEMS})')
    parser.add_argument('--iops-backends',
                        help='comma-separated iops-glib backends (default: all of the build)')
    parser.add_argument('--pairs', type=int, default=1, help='socketpairs with a token (default: 1)')
    parser.add_argument('--idle', type=int, default=0, help='idle watched fds (default: 0)')
    parser.add_argument('--short', type=int, default=5000, help='deliveries of the short run')
    parser.add_argument('--long', type=int, default=25000, help='deliveries of the long run')
    parser.add_argument('--timeout', type=float, default=600, help='seconds per run before it fails')
    parser.add_argument('--update-docs', action='store_true',
                        help='write the table into docs/benchmarks.md')
    opts = parser.parse_args()
    if opts.long <= opts.short:
        parser.error('--long must be larger than --short')

    valgrind = shutil.which('valgrind')
    if valgrind is None:
        sys.exit('valgrind is missing (Debian package valgrind)')
    run = load_run()
    notes = []
    systems = run.discover(opts, notes)
    if not systems:
        sys.exit('nothing to run')

    rows = []
    for system in systems:
        short = instructions(valgrind, system, opts, opts.short)
        long = instructions(valgrind, system, opts, opts.long)
        rows.append((system, (long - short) / (opts.long - opts.short)))
        print(f'{system.label}: {rows[-1][1]:.0f} instructions per delivery', file=sys.stderr)

    ref = next((per for system, per in rows if system.driver == run.REF_GLIB), None)
    command = ' '.join(['bench/instructions.py'] + sys.argv[1:])
    lines = [f'User-space instructions per delivery, ping-pong P={opts.pairs} N={opts.idle} '
             f'(callgrind; `{command}`):', '',
             run.markdown_table(['system', 'instructions per delivery',
                                 f'ratio to {run.LABELS[run.REF_GLIB]}'],
                                [[s.label, f'{per:.0f}',
                                  'n/a' if not ref else f'{per / ref:.2f}']
                                 for s, per in rows])]
    lines += [''] + [f'- {n}' for n in notes]
    text = '\n'.join(lines).rstrip() + '\n'
    print(text)

    if opts.update_docs:
        run.replace_docs_section(DOCS_START, DOCS_END, text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
