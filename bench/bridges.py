#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs the bridges' benchmarks and reports them.

Each bridge built in bridges/<name>/ has a benchmark executable,
iops-bench-<name>, that starts its own server on 127.0.0.1, runs every
system of every workload interleaved for --reps repetitions (alternating
the system order) and prints one JSON object per line:

  {"workload": "setget c=50", "system": "bridge-epoll", "label": "...",
   "rep": 0, "rate": 123456.0, "unit": "replies/s"}
  {"target": "...", "workload": "...", "system": "...", "vs": "...",
   "vs_workload": "...", "min": 0.95}

A target compares the median rate of one (workload, system) with another
(vs_workload defaults to workload); this script computes the ratio of
medians and the median of per-repetition ratios with a bootstrap interval.

  bench/bridges.py --update-docs      the full run (see docs/benchmarks.md)
  bench/bridges.py --smoke            tiny counts, every check, no timing
"""

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as corebench  # noqa: E402  the shared statistics and docs helpers

DOCS_START = '<!-- bridges:start (written by bench/bridges.py --update-docs) -->'
DOCS_END = '<!-- bridges:end -->'


def discover(build_dir, only):
    exes = sorted(glob.glob(os.path.join(build_dir, 'bridges', '*', 'iops-bench-*')))
    exes = [e for e in exes if os.access(e, os.X_OK) and not e.endswith('.p')]
    if only:
        wanted = only.split(',')
        exes = [e for e in exes if os.path.basename(e)[len('iops-bench-'):] in wanted]
    return exes


def run_one(exe, opts):
    args = [exe, '--reps', str(opts.reps)]
    if opts.smoke:
        args.append('--smoke')
    started = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=opts.timeout)
    records = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith('{'):
            records.append(json.loads(line))
    return proc, records, time.monotonic() - started


def report_bench(name, records):
    rates = {}
    labels = {}
    units = {}
    targets = [r for r in records if 'target' in r]
    for r in records:
        if 'rate' not in r:
            continue
        key = (r['workload'], r['system'])
        rates.setdefault(key, []).append((r.get('rep'), r['rate']))
        labels[r['system']] = r.get('label', r['system'])
        units[r['workload']] = r.get('unit', 'ops/s')

    workloads = list(dict.fromkeys(w for w, _ in rates))
    systems = list(dict.fromkeys(s for _, s in rates))
    lines = [f'### {name}', '']
    header = ['system'] + [f'{w} ({units[w]})' for w in workloads]
    rows = []
    for s in systems:
        row = [labels[s]]
        for w in workloads:
            runs = rates.get((w, s))
            row.append(corebench.fmt_stat(corebench.Stat([v for _, v in runs])) if runs else '')
        rows.append(row)
    lines.append(corebench.markdown_table(header, rows))
    lines.append('')

    met = True
    if targets:
        trows = []
        for t in targets:
            mine = rates.get((t['workload'], t['system']))
            theirs = rates.get((t.get('vs_workload', t['workload']), t['vs']))
            if not mine or not theirs:
                trows.append([t['target'], 'n/a', 'n/a', corebench.verdict(None)])
                met = False
                continue
            r = (statistics.median(v for _, v in mine) /
                 statistics.median(v for _, v in theirs))
            paired = corebench.paired_ratio(mine, theirs)
            noise = paired is not None and paired[1] < t['min'] <= paired[2]
            ok = r >= t['min']
            met = met and ok
            trows.append([t['target'], f'{r:.2f}×',
                          'n/a' if paired is None
                          else f'{paired[0]:.3f}× ({paired[1]:.3f}–{paired[2]:.3f})',
                          corebench.verdict(ok, noise)])
        lines.append(corebench.markdown_table(
            ['target', 'ratio of medians', 'paired (95% interval)', 'verdict'], trows))
        lines.append('')
    return '\n'.join(lines), met


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-C', '--build-dir', default=os.path.join(corebench.REPO, 'build'))
    parser.add_argument('--reps', type=int, default=7, help='repetitions (default: 7)')
    parser.add_argument('--bridges', help='comma-separated bridges to run (default: all built)')
    parser.add_argument('--timeout', type=float, default=1800, help='seconds per benchmark')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny counts, one repetition: checks only, for the test suite')
    parser.add_argument('--update-docs', action='store_true',
                        help='write the report into docs/benchmarks.md')
    opts = parser.parse_args()
    if opts.smoke:
        opts.reps = 1
        if opts.update_docs:
            parser.error('--smoke figures are not benchmarks: no --update-docs')

    exes = discover(opts.build_dir, opts.bridges)
    if not exes:
        print('no bridge benchmark is built (bridges need their client libraries)',
              file=sys.stderr)
        return 77 if opts.smoke else 1

    parts = []
    failed = 0
    for exe in exes:
        name = os.path.basename(exe)[len('iops-bench-'):]
        print(f'==> {name}', file=sys.stderr)
        proc, records, elapsed = run_one(exe, opts)
        if proc.returncode != 0:
            failed += 1
            sys.stderr.write(proc.stderr)
            parts.append(f'### {name}\n\nfailed (exit status {proc.returncode}).\n')
            continue
        text, _ = report_bench(name, records)
        parts.append(text + f'\n{opts.reps} repetitions, {elapsed:.0f} s.\n')

    command = 'bench/bridges.py' + (f' --reps {opts.reps}' if opts.reps != 7 else '')
    text = (f'Measured with `{command}` on {corebench.platform.node() or "this machine"}, '
            f'{time.strftime("%Y-%m-%d")}; medians (min–max) of the repetitions.\n\n'
            + '\n'.join(parts))
    print(text)
    if opts.update_docs:
        corebench.replace_docs_section(DOCS_START, DOCS_END, text)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
