#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs the iops-glib benchmark matrix and reports it.

Every (system, cell, repetition) is one fresh iops-bench process; runs are
interleaved (all systems of a cell, then the next cell, then the next
repetition, every other one in reverse system order), so slow drifts of a
noisy machine hit every system alike.
Writes raw JSON lines, a markdown report and gnuplot charts to --out;
--update-docs also rewrites the results section of docs/benchmarks.md and
copies the charts to docs/.

  bench/run.py --update-docs          the full run (see docs/benchmarks.md)
  bench/run.py --smoke                tiny counts, every check, no timing
"""

import argparse
import datetime
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS_START = '<!-- results:start (written by bench/run.py --update-docs) -->'
DOCS_END = '<!-- results:end -->'
CHARTS = ('bench-pingpong.png', 'bench-timer-lateness.png')

# Driver name -> table label; iops-glib labels get the backend.
LABELS = {
    'iops-glib-oneshot': 'iops-glib[{backend}] one-shot',
    'iops-glib-persistent': 'iops-glib[{backend}] persistent',
    'glib-gsource': 'GLib, GSource per fd (by hand)',
    'glib-fd-add': 'GLib, g_unix_fd_add per arm',
    'libverto-glib': 'libverto (GLib backend)',
    'libev': 'libev',
    'libev-cached': 'libev, cached loop time',
    'libevent': 'libevent',
    'libuv': 'libuv',
    'epoll': 'raw epoll (EPOLLONESHOT)',
}
ORDER = list(LABELS)
REF_GLIB = 'glib-gsource'
REF_LIBEV = 'libev'

# Systems that only make sense for some workloads (default: all of them).
WORKLOADS_OF = {
    'libev-cached': ('churn',),  # the same as libev but for arming timers
}
# Cells a system cannot finish within its watchdog: not run, and said so.
TOO_SLOW = {
    'libverto-glib': ('churn K=100000',),
}


def runs(cell, system):
    return (cell.workload in WORKLOADS_OF.get(system.driver, (cell.workload,))
            and cell.key not in TOO_SLOW.get(system.driver, ()))

# Workloads: unit, whether higher is better, title.
WORKLOADS = {
    'pingpong': ('deliveries/s', True, 'Ping-pong'),
    'write': ('fills/s', True, 'Write readiness'),
    'churn': ('arm+cancel/s', True, 'Timer churn'),
    'chain': ('µs', False, 'Timer fire chain: lateness (fire − due)'),
    'memory-io': ('bytes/event', False, 'Memory: RSS growth per armed fd watch'),
    'memory-timer': ('bytes/event', False, 'Memory: RSS growth per armed timer'),
}


class Cell:
    def __init__(self, workload, label, args):
        self.workload = workload
        self.label = label
        self.args = [str(a) for a in args]

    @property
    def key(self):
        return self.workload + ' ' + self.label


def make_cells(smoke):
    cells = []
    idle = (0, 1000) if smoke else (0, 1000, 10000)
    for p in (1, 100):
        for n in idle:
            cells.append(Cell('pingpong', f'P={p} N={n}', ['--pairs', p, '--idle', n]))
    cells.append(Cell('write', 'fill/drain', []))
    for k in ((1, 1000) if smoke else (1, 1000, 100000)):
        cells.append(Cell('churn', f'K={k}', ['--timers', k]))
    for d in (0, 1, 100, 1000):
        cells.append(Cell('chain', f'{d} µs', ['--delay', d]))
    for workload in ('memory-io', 'memory-timer'):
        for e in ((1000,) if smoke else (10000, 100000)):
            cells.append(Cell(workload, f'{e:,}', ['--events', e]))
    return cells


def timing_args(cell, opts):
    if opts.smoke:
        counts = {'pingpong': 300, 'write': 30, 'churn': 3000, 'chain': 5}
        return ['--warmup', '0', '--seconds', '5',
                '--count', str(counts.get(cell.workload, 0))]
    return ['--warmup', str(opts.warmup), '--seconds', str(opts.seconds)]


class System:
    def __init__(self, driver, exe, backend=None):
        self.driver = driver
        self.exe = exe
        self.backend = backend
        self.key = driver + (f'@{backend}' if backend else '')
        self.label = LABELS[driver].format(backend=backend)

    def env(self):
        env = dict(os.environ)
        env.pop('IOPS_GLIB_BACKEND', None)
        if self.backend:
            env['IOPS_GLIB_BACKEND'] = self.backend
        return env


def read_config(build_dir):
    config = {}
    path = os.path.join(build_dir, 'bench', 'bench-config.txt')
    if not os.path.exists(path):
        sys.exit(f'{path} is missing: configure a build with tests enabled first '
                 f'(meson setup {build_dir})')
    with open(path, encoding='utf-8') as f:
        for line in f:
            if '=' in line and not line.startswith('#'):
                key, value = line.strip().split('=', 1)
                config[key] = [v for v in value.split(',') if v]
    return config


def run_driver(exe, args, env=None, timeout=None):
    return subprocess.run([exe] + args, env=env, capture_output=True, text=True,
                          timeout=timeout)


def discover(opts, notes):
    """Systems of this build, in table order, and the backends to run."""
    config = read_config(opts.build_dir)
    for name in config.get('missing', []):
        notes.append(f'{LABELS.get(name, name)}: not found when the build was configured; skipped.')
    exes = {}
    for name in config.get('executables', []):
        exe = os.path.join(opts.build_dir, 'bench', name)
        if not os.access(exe, os.X_OK):
            sys.exit(f'{exe} is missing: build first (ninja -C {opts.build_dir})')
        for driver in run_driver(exe, ['--list']).stdout.split():
            exes.setdefault(driver, exe)

    backends = opts.iops_backends.split(',') if opts.iops_backends else config.get('iops_backends', [])
    systems = []
    for driver in ORDER:
        if driver not in exes:
            continue
        if not driver.startswith('iops-glib'):
            systems.append(System(driver, exes[driver]))
            continue
        for backend in backends:
            probe = System(driver, exes[driver], backend)
            result = run_driver(probe.exe, ['--system', driver, '--workload', 'pingpong',
                                            '--count', '10', '--warmup', '0'],
                                env=probe.env(), timeout=60)
            if result.returncode != 0:
                if driver == 'iops-glib-oneshot':
                    notes.append(f'iops-glib backend "{backend}": not usable in this build '
                                 f'({result.stderr.strip().splitlines()[-1:] or "?"}); skipped.')
                continue
            systems.append(probe)
    if opts.systems:
        wanted = opts.systems.split(',')
        systems = [s for s in systems if s.driver in wanted or s.key in wanted]
    return systems


def parse_output(result):
    lines = [line for line in result.stdout.splitlines() if line.startswith('{')]
    return json.loads(lines[-1]) if lines else None


def run_matrix(opts, systems, cells, raw):
    """Returns {(cell key, system key): [record, ...]} and the failures."""
    results = {}
    failures = []
    total = opts.reps * sum(1 for c in cells for s in systems if runs(c, s))
    done = 0
    started = time.monotonic()
    for rep in range(opts.reps):
        # Every other repetition runs the systems in reverse order, so that
        # none always runs first or last after another.
        order = systems if rep % 2 == 0 else systems[::-1]
        for cell in cells:
            for system in order:
                if not runs(cell, system):
                    continue
                args = (['--system', system.driver, '--workload', cell.workload]
                        + cell.args + timing_args(cell, opts))
                try:
                    result = run_driver(system.exe, args, env=system.env(), timeout=opts.timeout)
                    record = parse_output(result)
                    code = result.returncode
                    stderr = result.stderr.strip()
                except subprocess.TimeoutExpired:
                    record, code, stderr = None, 'timeout', f'no result after {opts.timeout} s'
                done += 1
                entry = {'rep': rep, 'cell': cell.key, 'system': system.key, 'code': code,
                         'record': record, 'stderr': stderr}
                raw.write(json.dumps(entry) + '\n')
                raw.flush()
                if code == 0 and record is not None and system.backend \
                        and record.get('backend') != system.backend:
                    code, stderr = 'backend', f'asked for {system.backend}, ran {record.get("backend")}'
                if record is not None:
                    record['rep'] = rep  # pairs it with the other systems' run of this repetition
                if code == 0 and record is not None:
                    results.setdefault((cell.key, system.key), []).append(record)
                elif code == 77 and record is not None:
                    results.setdefault((cell.key, system.key), []).append(record)
                else:
                    failures.append(f'{system.label}, {cell.key}, run {rep + 1}: '
                                    f'exit {code}: {stderr.splitlines()[-1:] or ""}')
                    print(f'FAILED: {failures[-1]}', file=sys.stderr)
            if not opts.quiet:
                elapsed = time.monotonic() - started
                print(f'[{done}/{total} runs, {elapsed:.0f} s] repetition {rep + 1}, {cell.key}',
                      file=sys.stderr)
    return results, failures


# -- statistics ----------------------------------------------------------


class Stat:
    def __init__(self, values):
        self.median = statistics.median(values)
        self.low = min(values)
        self.high = max(values)
        self.n = len(values)


def paired_ratio(mine, theirs):
    """Median and bootstrap 95% interval of the ratios of runs made in the
    same repetition, a few seconds apart. Pairing cancels most of the drift
    of a shared machine that the ratio of two medians keeps."""
    theirs_by_rep = {rep: value for rep, value in theirs if value > 0}
    ratios = [value / theirs_by_rep[rep] for rep, value in mine if rep in theirs_by_rep]
    if len(ratios) < 3:
        return None
    rng = random.Random(1)  # the same report for the same runs
    boots = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(2000))
    return statistics.median(ratios), boots[50], boots[1949]


def summarize(results, cells, systems):
    """{(cell key, system key): {'value': Stat, 'p99': Stat?} or {'skipped': reason}}."""
    summary = {}
    for cell in cells:
        for system in systems:
            records = results.get((cell.key, system.key), [])
            skipped = [r['skipped'] for r in records if 'skipped' in r]
            measured = [r for r in records if 'value' in r]
            if skipped and not measured:
                summary[(cell.key, system.key)] = {'skipped': skipped[0]}
            elif measured:
                entry = {'value': Stat([r['value'] for r in measured]),
                         'runs': [(r.get('rep'), r['value']) for r in measured]}
                if cell.workload == 'chain':
                    entry['p99'] = Stat([r['p99_us'] for r in measured])
                if all('hwm_kib' in r for r in measured):
                    entry['hwm'] = Stat([r['hwm_kib'] for r in measured])
                summary[(cell.key, system.key)] = entry
    return summary


def fmt(x):
    """Three significant digits, with k and M for large counts."""
    if abs(x) >= 1e6:
        return f'{x / 1e6:.3g}M'
    if abs(x) >= 1e4:
        return f'{x / 1e3:.3g}k'
    if abs(x) >= 1e3:
        return f'{x:.0f}'
    return f'{x:.3g}'


def fmt_stat(stat):
    return f'{fmt(stat.median)} ({fmt(stat.low)}–{fmt(stat.high)})'


def ratio(summary, cell, system, ref_driver, systems):
    ref = next((s for s in systems if s.driver == ref_driver), None)
    mine = summary.get((cell.key, system.key), {}).get('value')
    theirs = summary.get((cell.key, ref.key), {}).get('value') if ref else None
    if mine is None or theirs is None or theirs.median == 0:
        return None
    return mine.median / theirs.median


# -- report --------------------------------------------------------------


def markdown_table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' if i == 0 else '--:' for i in range(len(header))) + '|']
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return '\n'.join(lines)


def cell_text(summary, cell, system):
    entry = summary.get((cell.key, system.key))
    if cell.workload not in WORKLOADS_OF.get(system.driver, (cell.workload,)):
        return ''
    if cell.key in TOO_SLOW.get(system.driver, ()):
        return 'not run²'
    if entry is None:
        return 'failed'
    if 'skipped' in entry:
        return 'skipped¹'
    if 'p99' in entry:
        return f'{fmt(entry["value"].median)} / {fmt(entry["p99"].median)}'
    return fmt_stat(entry['value'])


def verdict(ok, noise=False):
    if ok is None:
        return 'n/a'
    text = '**met**' if ok else '**missed**'
    return text + ', within noise' if noise else text


def idle_fd_growth(summary, by_key, system):
    """Bytes of peak RSS per idle watched fd, event objects included: the
    growth from ping-pong P=100 N=0 to N=10000, over 10000."""
    low, high = by_key.get('pingpong P=100 N=0'), by_key.get('pingpong P=100 N=10000')
    if low is None or high is None or system is None:
        return None
    a = summary.get((low.key, system.key), {}).get('hwm')
    b = summary.get((high.key, system.key), {}).get('hwm')
    if a is None or b is None:
        return None
    return (b.median - a.median) * 1024 / 10000


def targets(summary, cells, systems):
    """The targets set for iops-glib: against the GLib peers for every
    backend, and against libev for the Linux fast path (epoll)."""
    by_key = {c.key: c for c in cells}
    rows = []

    def ratio_row(system, cell_key, ref, goal, what):
        cell = by_key.get(cell_key)
        if cell is None:
            return
        r = ratio(summary, cell, system, ref, systems)
        ref_system = next((s for s in systems if s.driver == ref), None)
        mine = summary.get((cell.key, system.key), {}).get('runs')
        theirs = summary.get((cell.key, ref_system.key), {}).get('runs') if ref_system else None
        paired = paired_ratio(mine, theirs) if mine and theirs else None
        noise = paired is not None and paired[1] < goal <= paired[2]
        rows.append([f'{system.label}, {what} ≥ {goal:.2f}× {LABELS[ref]}',
                     'n/a' if r is None else f'{r:.2f}×',
                     'n/a' if paired is None
                     else f'{paired[0]:.3f}× ({paired[1]:.3f}–{paired[2]:.3f})',
                     verdict(None if r is None else r >= goal, noise)])

    for system in systems:
        if system.driver != 'iops-glib-oneshot':
            continue
        ratio_row(system, 'pingpong P=1 N=0', REF_GLIB, 1.0, 'ping-pong P=1 N=0')
        ratio_row(system, 'pingpong P=1 N=0', 'libverto-glib', 1.2, 'ping-pong P=1 N=0')
        if system.backend != 'epoll':
            continue
        ratio_row(system, 'pingpong P=1 N=10000', REF_LIBEV, 1.0, 'ping-pong P=1 N=10000')
        ratio_row(system, 'pingpong P=1 N=0', REF_LIBEV, 1.0, 'ping-pong P=1 N=0')
        ratio_row(system, 'pingpong P=100 N=10000', REF_LIBEV, 1.2, 'ping-pong P=100 N=10000')
        for k in ('1000', '100000'):
            ratio_row(system, f'churn K={k}', REF_LIBEV, 1.2, f'timer churn K={k}')
            ratio_row(system, f'churn K={k}', 'libev-cached', 0.5, f'timer churn K={k}')

        chain = by_key.get('chain 100 µs')
        mean = summary.get((chain.key, system.key), {}).get('value') if chain else None
        if chain is not None:
            rows.append([f'{system.label}, timer chain 100 µs: mean lateness + 100 µs ≤ 150 µs',
                         'n/a' if mean is None else f'{mean.median + 100:.0f} µs', '',
                         verdict(None if mean is None else mean.median + 100 <= 150)])

        mine = idle_fd_growth(summary, by_key, system)
        ref = next((s for s in systems if s.driver == 'libevent'), None)
        theirs = idle_fd_growth(summary, by_key, ref) if ref is not None else None
        if mine is not None or theirs is not None:
            ok = None if mine is None or theirs is None else mine <= theirs
            rows.append([f'{system.label}, RSS growth per idle watched fd (P=100, N 0 → 10000) '
                         f'≤ {LABELS["libevent"]}',
                         'n/a' if ok is None else f'{mine:.0f} vs {theirs:.0f} B', '',
                         verdict(ok)])
    return rows


def machine_info(opts):
    cpu = 'unknown'
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name')), cpu)
    except OSError:
        pass
    versions = {}
    for module, name in (('glib-2.0', 'GLib'), ('libevent', 'libevent'),
                         ('libuv', 'libuv'), ('libverto', 'libverto')):
        try:
            out = subprocess.run(['pkg-config', '--modversion', module],
                                 capture_output=True, text=True)
            if out.returncode == 0:
                versions[name] = out.stdout.strip()
        except OSError:
            pass
    return {'nproc': os.cpu_count(), 'cpu': cpu, 'kernel': platform.release(),
            'versions': versions}


def the_command():
    args = []
    for arg in sys.argv[1:]:
        if os.path.isabs(arg):
            rel = os.path.relpath(arg, REPO)
            arg = rel if not rel.startswith('..') else '<path>'
        args.append(shlex.quote(arg))
    return ' '.join(['bench/run.py'] + args)


def report(opts, summary, cells, systems, notes, failures, info, charts):
    out = []
    when = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    versions = ', '.join(f'{k} {v}' for k, v in info['versions'].items())
    out.append(f'Measured {when} with `{the_command()}`, in {info["elapsed"]:.0f} s.')
    out.append('')
    out.append(f'Machine: {info["nproc"]} CPUs ({info["cpu"]}), Linux {info["kernel"]}; {versions}.')
    out.append('')
    out.append(f'Each figure is the median of {opts.reps} runs, each run a fresh process, '
               f'with the lowest and highest run in brackets.')
    out.append('')

    rows = targets(summary, cells, systems)
    if rows:
        out += ['### Targets', '',
                'A ratio target is judged on the ratio of medians. Beside it, the median of '
                'the ratios of runs paired by repetition, with its bootstrap 95% interval: '
                'where the goal falls inside that interval, the verdict is marked '
                '"within noise", as another run could give the other answer.', '',
                markdown_table(['target', 'ratio of medians', 'paired ratio (95% interval)', ''],
                               rows), '']

    for workload in ('pingpong', 'write', 'churn'):
        wcells = [c for c in cells if c.workload == workload]
        if not wcells:
            continue
        unit, _, title = WORKLOADS[workload]
        header = ['system'] + [c.label for c in wcells]
        out += [f'### {title} — {unit}, higher is better', '',
                markdown_table(header, [[s.label] + [cell_text(summary, c, s) for c in wcells]
                                        for s in systems]), '']
        ratio_rows = []
        for s in systems:
            row = [s.label]
            for c in wcells:
                g = ratio(summary, c, s, REF_GLIB, systems)
                e = ratio(summary, c, s, REF_LIBEV, systems)
                row.append(' / '.join('n/a' if r is None else f'{r:.2f}' for r in (g, e)))
            ratio_rows.append(row)
        out += [f'Ratio of medians to {LABELS[REF_GLIB]} / to {LABELS[REF_LIBEV]}:', '',
                markdown_table(header, ratio_rows), '']

    wcells = [c for c in cells if c.workload == 'chain']
    if wcells:
        out += [f'### {WORKLOADS["chain"][2]} — mean / p99 µs, lower is better', '',
                markdown_table(['system'] + [f'delay {c.label}' for c in wcells],
                               [[s.label] + [cell_text(summary, c, s) for c in wcells]
                                for s in systems]), '']

    mcells = [c for c in cells if c.workload.startswith('memory')]
    if mcells:
        header = ['system'] + [f'{c.label} {"fd watches" if c.workload == "memory-io" else "timers"}'
                               for c in mcells]
        out += ['### Memory — RSS growth in bytes per armed event, lower is better', '',
                markdown_table(header, [[s.label] + [cell_text(summary, c, s) for c in mcells]
                                        for s in systems]), '']

    if any(cell.key in TOO_SLOW.get(s.driver, ()) for cell in cells for s in systems):
        notes.append('² Not run: ' + '; '.join(f'{LABELS[d]} at {", ".join(k)}'
                                               for d, k in TOO_SLOW.items())
                     + ' (does not finish within the watchdog).')
    skipped = sorted({e['skipped'] for e in summary.values() if 'skipped' in e})
    if skipped:
        notes.append('¹ Skipped by the driver: ' + '; '.join(skipped) + '.')
    if failures:
        notes.append(f'{len(failures)} run(s) failed their checks: ' + '; '.join(failures))
    if notes:
        out += ['Notes:', ''] + [f'- {n}' for n in notes] + ['']
    for name, alt in charts:
        out += [f'![{alt}]({name})', '']
    return '\n'.join(out).rstrip() + '\n'


# -- charts --------------------------------------------------------------


def gnuplot_quote(text):
    return '"' + text.replace('\\', '\\\\').replace('"', '\\"') + '"'


# One colour and point type per system, the same in both charts; iops-glib
# lines are solid and thicker, the others dashed.
COLOURS = ('#d62728', '#ff7f0e', '#9467bd', '#e377c2', '#1f77b4', '#17becf',
           '#2ca02c', '#000000', '#8c564b', '#bcbd22', '#7f7f7f', '#393b79')


def line_style(i, system):
    iops = system.driver.startswith('iops-glib')
    return (f'lc rgb "{COLOURS[i % len(COLOURS)]}" pt {i % 13 + 1} ps 1.2 '
            f'lw {2.5 if iops else 1.5} dt {1 if iops else 2}')


def two_panels(title, out_path, xtics, n_x, ylabel, xlabel, panels):
    """A chart of two panels side by side, the key right of the second."""
    script = ['set terminal pngcairo noenhanced size 1400,560 font ",10"',
              f'set output {gnuplot_quote(out_path)}',
              f'set multiplot title {gnuplot_quote(title)}',
              'set logscale y', 'set grid', f'set xtics ({xtics})',
              f'set xrange [-0.3:{n_x - 0.7}]', f'set xlabel {gnuplot_quote(xlabel)}',
              f'set ylabel {gnuplot_quote(ylabel)}']
    for i, (subtitle, plots) in enumerate(panels):
        script += [f'set origin {0.0 if i == 0 else 0.37},0',
                   f'set size {0.37 if i == 0 else 0.63},0.95',
                   'unset key' if i == 0 else 'set key outside right top',
                   f'set title {gnuplot_quote(subtitle)}',
                   ('plot ' + ', \\\n     '.join(plots)) if plots else 'clear']
    script.append('unset multiplot')
    return script


def chart_pingpong(summary, cells, systems, out_dir):
    pairs = sorted({int(c.args[1]) for c in cells if c.workload == 'pingpong'})
    idle = sorted({int(c.args[3]) for c in cells if c.workload == 'pingpong'})
    data = os.path.join(out_dir, 'pingpong.dat')
    plots = {p: [] for p in pairs}
    index = 0
    with open(data, 'w', encoding='utf-8') as f:
        for p in pairs:
            for i, s in enumerate(systems):
                rows = []
                for x, n in enumerate(idle):
                    entry = summary.get((f'pingpong P={p} N={n}', s.key), {}).get('value')
                    if entry:
                        rows.append(f'{x} {entry.median} {entry.low} {entry.high}')
                if rows:
                    f.write(f'# P={p} {s.label}\n' + '\n'.join(rows) + '\n\n\n')
                    plots[p].append(f'{gnuplot_quote(data)} index {index} using 1:2:3:4 '
                                    f'with yerrorlines {line_style(i, s)} '
                                    f'title {gnuplot_quote(s.label)}')
                    index += 1
    return two_panels('Ping-pong: deliveries per second against idle watched fds '
                      '(median of runs, bars min–max)',
                      os.path.join(out_dir, CHARTS[0]),
                      ', '.join(f'"{n}" {x}' for x, n in enumerate(idle)), len(idle),
                      'deliveries/s', 'idle watched fds (N)',
                      [(f'{p} token{"s" if p > 1 else ""} in flight (P={p})', plots[p])
                       for p in pairs])


def chart_lateness(summary, cells, systems, out_dir):
    delays = [c for c in cells if c.workload == 'chain']
    data = os.path.join(out_dir, 'lateness.dat')
    plots = {'mean': [], 'p99': []}
    index = 0
    with open(data, 'w', encoding='utf-8') as f:
        for i, s in enumerate(systems):
            rows = []
            for x, c in enumerate(delays):
                entry = summary.get((c.key, s.key))
                if entry and 'value' in entry:
                    # A log axis cannot show 0: clamp to 0.01 µs.
                    rows.append(f'{x} {max(entry["value"].median, 0.01)} '
                                f'{max(entry["p99"].median, 0.01)}')
            if rows:
                f.write(f'# {s.label}\n' + '\n'.join(rows) + '\n\n\n')
                for column, key in ((2, 'mean'), (3, 'p99')):
                    plots[key].append(f'{gnuplot_quote(data)} index {index} using 1:{column} '
                                      f'with linespoints {line_style(i, s)} '
                                      f'title {gnuplot_quote(s.label)}')
                index += 1
    return two_panels('Timer fire chain: lateness (fire − due) against the requested delay '
                      '(median of runs)',
                      os.path.join(out_dir, CHARTS[1]),
                      ', '.join(f'"{c.label}" {x}' for x, c in enumerate(delays)), len(delays),
                      'lateness (µs)', 'requested delay',
                      [('mean lateness', plots['mean']), ('p99 lateness', plots['p99'])])


def make_charts(summary, cells, systems, out_dir, notes):
    charts = []
    gnuplot = shutil.which('gnuplot')
    for name, alt, build in ((CHARTS[0], 'ping-pong deliveries/s against idle fds', chart_pingpong),
                             (CHARTS[1], 'timer lateness against delay', chart_lateness)):
        script = build(summary, cells, systems, out_dir)
        path = os.path.join(out_dir, name.replace('.png', '.gp'))
        with open(path, 'w', encoding='utf-8') as f:
            f.write('\n'.join(script) + '\n')
        if gnuplot is None:
            continue
        result = subprocess.run([gnuplot, path], capture_output=True, text=True)
        if result.returncode == 0:
            charts.append((name, alt))
        else:
            notes.append(f'gnuplot failed on {name}: {result.stderr.strip()}')
    if gnuplot is None:
        notes.append('gnuplot not found: no charts.')
    return charts


def replace_docs_section(start_marker, end_marker, text):
    """Puts @text between two markers of docs/benchmarks.md."""
    path = os.path.join(REPO, 'docs', 'benchmarks.md')
    with open(path, encoding='utf-8') as f:
        doc = f.read()
    start, end = doc.find(start_marker), doc.find(end_marker)
    if start < 0 or end < start:
        sys.exit(f'{path}: the markers {start_marker} and {end_marker} are missing')
    doc = doc[:start + len(start_marker)] + '\n' + text + doc[end:]
    with open(path, 'w', encoding='utf-8') as f:
        f.write(doc)


def update_docs(text, charts, out_dir):
    replace_docs_section(DOCS_START, DOCS_END, text)
    for name, _ in charts:
        shutil.copyfile(os.path.join(out_dir, name), os.path.join(REPO, 'docs', name))


# -- main ----------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-C', '--build-dir', default=os.path.join(REPO, 'build'),
                        help='meson build directory (default: build)')
    parser.add_argument('--out', default=os.path.join(REPO, 'bench', 'results'),
                        help='where raw results, report and charts go (default: bench/results)')
    parser.add_argument('--reps', type=int, default=5, help='runs per cell and system (default: 5)')
    parser.add_argument('--seconds', type=float, default=0.2,
                        help='measuring time per run (default: 0.2)')
    parser.add_argument('--warmup', type=float, default=0.05,
                        help='unmeasured time before it (default: 0.05)')
    parser.add_argument('--iops-backends',
                        help='comma-separated iops-glib backends (default: all of the build)')
    parser.add_argument('--systems', help='comma-separated systems to run (default: all)')
    parser.add_argument('--workloads', help='comma-separated workloads to run (default: all)')
    parser.add_argument('--cells', help="comma-separated cells to run, as the tables name them "
                        "(for example 'pingpong P=1 N=0'; default: all)")
    parser.add_argument('--timeout', type=float, default=120, help='seconds per run before it fails')
    parser.add_argument('--smoke', action='store_true',
                        help='one run per cell with tiny counts: checks only, for the test suite')
    parser.add_argument('--update-docs', action='store_true',
                        help='write the report into docs/benchmarks.md and the charts into docs/')
    parser.add_argument('--quiet', action='store_true', help='no progress lines')
    opts = parser.parse_args()
    if opts.smoke:
        opts.reps = 1
        if opts.update_docs:
            parser.error('--smoke figures are not benchmarks: no --update-docs')

    os.makedirs(opts.out, exist_ok=True)
    notes = []
    systems = discover(opts, notes)
    cells = make_cells(opts.smoke)
    if opts.workloads:
        cells = [c for c in cells if c.workload in opts.workloads.split(',')]
    if opts.cells:
        cells = [c for c in cells if c.key in opts.cells.split(',')]
    if not systems or not cells:
        sys.exit('nothing to run')

    print(f'{len(systems)} systems x {len(cells)} cells x {opts.reps} runs', file=sys.stderr)
    started = time.monotonic()
    with open(os.path.join(opts.out, 'raw.jsonl'), 'w', encoding='utf-8') as raw:
        results, failures = run_matrix(opts, systems, cells, raw)
    info = machine_info(opts)
    info['elapsed'] = time.monotonic() - started

    summary = summarize(results, cells, systems)
    charts = make_charts(summary, cells, systems, opts.out, notes)
    text = report(opts, summary, cells, systems, notes, failures, info, charts)
    with open(os.path.join(opts.out, 'benchmarks.md'), 'w', encoding='utf-8') as f:
        f.write(text)
    if opts.update_docs:
        update_docs(text, charts, opts.out)
    if not opts.quiet:
        print(text)
    if failures:
        print(f'{len(failures)} run(s) failed', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
