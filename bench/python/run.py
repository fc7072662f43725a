#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs the Python benchmarks of iops-glib and reports them.

    bench/python/run.py [-C BUILD] [--reps N] [--seconds S] [--update-docs]
    bench/python/run.py --smoke

Cells: a one-token ping-pong over a socket pair (P=1) beside N=0 and
N=10000 idle watched fds, in deliveries per second, and a 100 µs timer
re-armed from its own callback, in µs from arm to fire. Systems, all in
Python (/usr/bin/python3, PyGObject):

  sdk-duck             a consumer in the Couchbase SDK's style: duck-typed
                       events, int constants, on Iops.GLibIOPS through the
                       overrides (python/gi/overrides/Iops.py)
  iops-subclass        an Iops.IOEvent subclass overriding do_ready_r
  iops-subclass-bare   the same, the overrides kept out: what they cost
  iops-signal          plain Iops.IOEvent objects and a "ready" handler
  asyncio, uvloop      add_reader, removed and added again per delivery
                       (one-shot, as the IOPS contract)
  selectors-iops       the sdk-duck consumer on a pure-Python IOPS over
                       selectors
  glib-fdadd           GLib.unix_fd_add_full, a new source per delivery
  iops-subclass-persistent, asyncio-persistent, uvloop-persistent
                       for reference: nothing re-armed per delivery

Every run is a fresh process (bench/python/worker.py); runs are interleaved:
every system of a cell, then the next cell, then the next repetition, every
other repetition in reverse order. Targets compare paired runs of one
repetition (the ratio per repetition, then the median, with a bootstrap 95%
interval) as bench/run.py does. --update-docs writes the report between the
python markers of docs/benchmarks.md.
"""

import argparse
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
WORKER = os.path.join(HERE, 'worker.py')
PYTHON = '/usr/bin/python3'

DOCS_START = '<!-- python:start (written by bench/python/run.py --update-docs) -->'
DOCS_END = '<!-- python:end -->'


def load_corebench():
    """bench/run.py, for its statistics and docs functions (a module of the
    same name as this script, so loaded by path)."""
    spec = importlib.util.spec_from_file_location('corebench', os.path.join(REPO, 'bench', 'run.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corebench = load_corebench()

LABELS = {
    'sdk-duck': 'SDK-style duck-typed consumer (overrides)',
    'iops-subclass': 'Iops.IOEvent subclass (overrides)',
    'iops-subclass-bare': 'Iops.IOEvent subclass, no overrides',
    'iops-signal': '"ready" signal (overrides)',
    'asyncio': 'asyncio add_reader, one-shot',
    'uvloop': 'uvloop add_reader, one-shot',
    'selectors-iops': 'pure-Python selectors IOPS, SDK-style consumer',
    'glib-fdadd': 'GLib.unix_fd_add_full per delivery',
    'iops-subclass-persistent': 'Iops.IOEvent subclass, persistent IOPS',
    'asyncio-persistent': 'asyncio add_reader, persistent',
    'uvloop-persistent': 'uvloop add_reader, persistent',
    'sdk-duck-timer': 'SDK-style duck-typed timer (overrides)',
    'iops-subclass-timer': 'Iops.TimerEvent subclass (overrides)',
    'asyncio-timer': 'asyncio call_later',
    'uvloop-timer': 'uvloop call_later',
}
PINGPONG_SYSTEMS = ['sdk-duck', 'iops-subclass', 'iops-subclass-bare', 'iops-signal',
                    'asyncio', 'uvloop', 'selectors-iops', 'glib-fdadd',
                    'iops-subclass-persistent', 'asyncio-persistent', 'uvloop-persistent']
TIMER_SYSTEMS = ['sdk-duck-timer', 'iops-subclass-timer', 'asyncio-timer', 'uvloop-timer']
NEEDS_OVERRIDES_OUT = {'iops-subclass-bare'}


class Cell:
    def __init__(self, key, workload, systems, args, unit):
        self.key = key
        self.workload = workload
        self.systems = systems
        self.args = args
        self.unit = unit


def make_cells(smoke):
    big = 100 if smoke else 10000
    return [
        Cell('pingpong P=1 N=0', 'pingpong', PINGPONG_SYSTEMS, ['--idle', '0'], 'deliveries/s'),
        Cell('pingpong P=1 N=%d' % big, 'pingpong', PINGPONG_SYSTEMS, ['--idle', str(big)],
             'deliveries/s'),
        Cell('timer chain 100 µs', 'chain', TIMER_SYSTEMS, ['--usecs', '100'],
             'µs arm-to-fire, mean / p99'),
    ]


# (name, system, vs, cells, goal): system's median of paired ratios ≥ goal.
RATIO_TARGETS = [
    ('SDK-style duck-typed ≥ 2.5× asyncio', 'sdk-duck', 'asyncio', 2.5),
    ('SDK-style duck-typed ≥ 2.0× uvloop', 'sdk-duck', 'uvloop', 2.0),
    ('Iops.IOEvent subclass ≥ 2.9× asyncio', 'iops-subclass', 'asyncio', 2.9),
]
# For reference, no goal: what the overrides cost the subclass path.
REFERENCE_RATIOS = [
    ('subclass with the overrides / without', 'iops-subclass', 'iops-subclass-bare'),
    ('SDK-style on iops-glib / on the pure-Python IOPS', 'sdk-duck', 'selectors-iops'),
]
TIMER_TARGET = ('100 µs timer chain, SDK-style duck-typed timer: mean ≤ 150 µs',
                'sdk-duck-timer', 150.0)


def worker_env(system, build_dir):
    env = dict(os.environ)
    src = os.path.join(build_dir, 'src')
    for var in ('GI_TYPELIB_PATH', 'LD_LIBRARY_PATH'):
        env[var] = src + (os.pathsep + env[var] if env.get(var) else '')
    if system in NEEDS_OVERRIDES_OUT:
        env.pop('PYTHONPATH', None)
    else:
        python = os.path.join(REPO, 'python')
        env['PYTHONPATH'] = python + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    return env


def run_one(system, cell, opts):
    args = [PYTHON, WORKER, '--system', system, '--seconds', str(opts.seconds),
            '--warmup', str(opts.warmup)] + cell.args
    proc = subprocess.run(args, capture_output=True, text=True, timeout=opts.timeout,
                          env=worker_env(system, opts.build_dir))
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{')]
    if proc.returncode != 0 or not lines:
        return None, proc.stderr.strip() or 'exit status %d' % proc.returncode
    return json.loads(lines[-1]), None


def run_matrix(opts, cells):
    results = {}     # (cell key, system) -> [(rep, record)]
    failures = []
    for rep in range(opts.reps):
        for cell in cells:
            systems = [s for s in cell.systems if not opts.systems or s in opts.systems]
            if rep % 2:
                systems = systems[::-1]
            for system in systems:
                record, error = run_one(system, cell, opts)
                if error is not None:
                    failures.append('%s, %s: %s' % (cell.key, system, error))
                    print('FAILED %s %s: %s' % (cell.key, system, error), file=sys.stderr)
                    continue
                results.setdefault((cell.key, system), []).append((rep, record))
                if not opts.quiet:
                    print('rep %d  %-20s %-26s %s' % (rep, cell.key, system,
                                                       corebench.fmt(record.get('value', 0))
                                                       if 'value' in record else record),
                          file=sys.stderr)
    return results, failures


def values(results, cell, system, key='value'):
    """[(rep, measure)] of one system on one cell; @key 'cpu_value' for
    the rate per CPU second of the ping-pong."""
    if cell.workload == 'chain':
        key = 'value'
    return [(rep, r[key]) for rep, r in results.get((cell.key, system), []) if key in r]


def cell_text(results, cell, system, key='value'):
    runs = results.get((cell.key, system))
    if not runs:
        return 'failed'
    if all('skipped' in r for _, r in runs):
        return 'skipped (%s)' % runs[0][1]['skipped']
    measured = [v for _, v in values(results, cell, system, key)]
    if cell.workload == 'chain':
        p99 = statistics.median(r['p99_us'] for _, r in runs if 'p99_us' in r)
        early = sum(r.get('early', 0) for _, r in runs) / sum(r['fires'] for _, r in runs)
        return '%s / %s%s' % (corebench.fmt(statistics.median(measured)), corebench.fmt(p99),
                              ' (%.0f%% fired early)' % (100 * early) if early else '')
    return corebench.fmt_stat(corebench.Stat(measured))


def ratio_row(results, cell, name, system, vs, goal, key):
    mine, theirs = values(results, cell, system, key), values(results, cell, vs, key)
    if not mine or not theirs:
        return [name, cell.key, 'n/a', 'n/a', corebench.verdict(None)], False
    of_medians = statistics.median(v for _, v in mine) / statistics.median(v for _, v in theirs)
    paired = corebench.paired_ratio(mine, theirs)
    paired_text = ('n/a' if paired is None
                   else '%.2f× (%.2f–%.2f)' % paired)
    if goal is None:
        return [name, cell.key, '%.2f×' % of_medians, paired_text, ''], True
    value = paired[0] if paired is not None else of_medians
    ok = value >= goal
    noise = paired is not None and paired[1] < goal <= paired[2]
    return [name, cell.key, '%.2f×' % of_medians, paired_text,
            corebench.verdict(ok, noise)], ok


def report(opts, cells, results, failures, elapsed):
    out = []
    when = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    out.append('Measured %s with `%s`, in %.0f s: %d repetitions of %.2f s runs (after '
               '%.2f s of warm-up) per system and cell, interleaved; medians (min–max) '
               'of the repetitions. Python %s, PyGObject %s, uvloop %s, %d CPUs (%s).'
               % (when, the_command(), elapsed, opts.reps, opts.seconds, opts.warmup,
                  platform.python_version(), module_version('gi'),
                  module_version('uvloop'), os.cpu_count(), platform.machine()))
    out.append('')
    key = 'cpu_value' if opts.clock == 'cpu' else 'value'
    for cell in cells:
        out.append('**%s** (%s)' % (cell.key, cell.unit))
        out.append('')
        systems = [s for s in cell.systems if not opts.systems or s in opts.systems]
        if cell.workload == 'pingpong':
            rows = [[LABELS[s], cell_text(results, cell, s, 'cpu_value'),
                     cell_text(results, cell, s, 'value')] for s in systems]
            header = ['system', 'per CPU second', 'per second (wall clock)']
        else:
            rows = [[LABELS[s], cell_text(results, cell, s)] for s in systems]
            header = ['system', cell.unit]
        out.append(corebench.markdown_table(header, rows))
        out.append('')

    rows, met = [], True
    for cell in cells:
        if cell.workload != 'pingpong':
            continue
        for name, system, vs, goal in RATIO_TARGETS:
            row, ok = ratio_row(results, cell, name, system, vs, goal, key)
            rows.append(row)
            met = met and ok
    name, system, goal = TIMER_TARGET
    chain = next(c for c in cells if c.workload == 'chain')
    means = [v for _, v in values(results, chain, system)]
    if means:
        mean = statistics.median(means)
        ok = mean <= goal
        met = met and ok
        rows.append([name, chain.key, '%.0f µs' % mean, '', corebench.verdict(ok)])
    else:
        rows.append([name, chain.key, 'n/a', '', corebench.verdict(None)])
        met = False
    for cell in cells:
        if cell.workload != 'pingpong':
            continue
        for name, system, vs in REFERENCE_RATIOS:
            rows.append(ratio_row(results, cell, name, system, vs, None, key)[0])
    out.append('**Targets**, on the rates per %s (the paired ratio decides; '
               '"within noise" when the goal lies inside its 95%% interval)'
               % ('CPU second' if opts.clock == 'cpu' else 'second of wall-clock time'))
    out.append('')
    out.append(corebench.markdown_table(
        ['target', 'cell', 'ratio of medians', 'paired (95% interval)', 'verdict'], rows))
    out.append('')
    if failures:
        out.append('Failed runs: ' + '; '.join(failures))
        out.append('')
    return '\n'.join(out), met


def module_version(name):
    try:
        return subprocess.run([PYTHON, '-c', 'import %s; print(%s.__version__)' % (name, name)],
                              capture_output=True, text=True, timeout=30).stdout.strip() or '?'
    except (OSError, subprocess.SubprocessError):
        return '?'


def the_command():
    args = []
    for arg in sys.argv[1:]:
        if os.path.isabs(arg):
            rel = os.path.relpath(arg, REPO)
            arg = rel if not rel.startswith('..') else '<path>'
        args.append(shlex.quote(arg))
    return ' '.join(['bench/python/run.py'] + args)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-C', '--build-dir', default=os.path.join(REPO, 'build'),
                        help='meson build directory with the typelib (default: build)')
    parser.add_argument('--reps', type=int, default=7, help='repetitions (default: 7)')
    parser.add_argument('--seconds', type=float, default=0.5,
                        help='measuring time per run (default: 0.5)')
    parser.add_argument('--warmup', type=float, default=0.1,
                        help='unmeasured time before it (default: 0.1)')
    parser.add_argument('--systems', type=lambda s: s.split(','),
                        help='comma-separated systems (default: all)')
    parser.add_argument('--clock', choices=('cpu', 'wall'), default='cpu',
                        help='which ping-pong rate the targets use: per second of the '
                        "process's CPU time (default; steady on a shared machine) or of "
                        'wall-clock time')
    parser.add_argument('--timeout', type=float, default=120, help='seconds per run')
    parser.add_argument('--smoke', action='store_true',
                        help='one short run per system and cell: checks only, for the test suite')
    parser.add_argument('--update-docs', action='store_true',
                        help='write the report into docs/benchmarks.md')
    parser.add_argument('--quiet', action='store_true', help='no progress lines')
    opts = parser.parse_args()
    opts.build_dir = os.path.abspath(opts.build_dir)
    if opts.smoke:
        if opts.update_docs:
            parser.error('--smoke figures are not benchmarks: no --update-docs')
        opts.reps, opts.seconds, opts.warmup = 1, 0.02, 0.01
    if not os.path.exists(os.path.join(opts.build_dir, 'src', 'Iops-1.0.typelib')):
        sys.exit('%s/src has no Iops-1.0.typelib: build with introspection first'
                 % opts.build_dir)

    cells = make_cells(opts.smoke)
    started = time.monotonic()
    results, failures = run_matrix(opts, cells)
    text, met = report(opts, cells, results, failures, time.monotonic() - started)
    print(text)
    if opts.update_docs:
        corebench.replace_docs_section(DOCS_START, DOCS_END, text)
    if failures:
        return 1
    if opts.smoke:
        return 0
    return 0 if met else 2


if __name__ == '__main__':
    sys.exit(main())
