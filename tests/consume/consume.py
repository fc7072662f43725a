#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Consumes iops-glib from outside, the two ways a user would.

    consume.py install --meson MESON --build-dir DIR --cc CC --program FILE.c
    consume.py subproject --meson MESON --source-root DIR --program FILE.c

install: `meson install --destdir` of DIR into a temporary directory; checks
that every file meson says it installs is there; then compiles FILE.c with
`pkg-config --cflags --libs iops-glib-1.0` (PKG_CONFIG_PATH and
PKG_CONFIG_SYSROOT_DIR pointing into the DESTDIR) and runs it against the
installed library.

subproject: makes a temporary meson project (the files next to this
script) whose subprojects/iops-glib is a symlink to the source root, then
configures, builds and runs it. The project asks for
dependency('iops-glib-1.0', fallback: 'iops-glib'), forced to the fallback,
so the dependency comes from the subproject's meson.override_dependency().

Both run FILE.c (examples/c/ping.c), which exits 0 once its read and its
timer are done. Every command runs under a time limit.
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
STEP_TIMEOUT = 300
RUN_TIMEOUT = 30
EXPECTED_OUTPUT = ['read 4 bytes', '50 ms later']


def fail(message):
    print('FAIL: ' + message)
    sys.exit(1)


def run(command, timeout=STEP_TIMEOUT, env=None, cwd=None):
    print('$ ' + ' '.join(shlex.quote(c) for c in command), flush=True)
    try:
        result = subprocess.run(command, env=env, cwd=cwd, capture_output=True,
                                text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        fail('timed out after %d s' % timeout)
    if result.returncode != 0:
        sys.stdout.write(result.stdout[-4000:])
        sys.stdout.write(result.stderr[-4000:])
        fail('exit status %d' % result.returncode)
    return result.stdout


def check_program_output(output):
    lines = output.split('\n')
    if [line for line in lines if line] != EXPECTED_OUTPUT:
        fail('the program printed %r, expected %r' % (output, EXPECTED_OUTPUT))
    print('ok: the program ran: ' + ' / '.join(EXPECTED_OUTPUT))


def check_installed_files(meson, build_dir, destdir):
    installed = json.loads(run([meson, 'introspect', '--installed', build_dir]))
    missing = [path for path in installed.values()
               if not os.path.lexists(destdir + path)]
    if missing:
        fail('not installed: ' + ', '.join(missing))
    names = sorted(os.path.basename(path) for path in installed.values())
    for wanted in ('iops-glib.h', 'iops-enum-types.h', 'iops-glib-1.0.pc'):
        if wanted not in names:
            fail('%s is not among the installed files' % wanted)
    print('ok: all %d installed files are in the DESTDIR' % len(installed))
    return installed


def mirror_into_sysroot(sysroot, flags):
    """PKG_CONFIG_SYSROOT_DIR prefixes every package's paths, GLib's too: a
    real sysroot holds the dependencies, so link theirs in, as they are."""
    for flag in flags:
        if flag[:2] not in ('-I', '-L'):
            continue
        path = flag[2:]
        target = sysroot + path
        if os.path.isdir(path) and not os.path.lexists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(path, target)


def consume_install(args):
    with tempfile.TemporaryDirectory(prefix='iops-consume-') as tmp:
        destdir = os.path.join(tmp, 'destdir')
        run([args.meson, 'install', '-C', args.build_dir, '--no-rebuild',
             '--quiet', '--destdir', destdir])
        installed = check_installed_files(args.meson, args.build_dir, destdir)
        pc_dirs = sorted({os.path.dirname(destdir + path) for path in installed.values()
                          if path.endswith('/pkgconfig/iops-glib-1.0.pc')})
        if len(pc_dirs) != 1:
            fail('no single installed iops-glib-1.0.pc: %s' % pc_dirs)

        deps_flags = run(['pkg-config', '--cflags', '--libs', 'glib-2.0', 'gobject-2.0']).split()
        mirror_into_sysroot(destdir, deps_flags)

        env = dict(os.environ,
                   PKG_CONFIG_PATH=pc_dirs[0] + os.pathsep + os.environ.get('PKG_CONFIG_PATH', ''),
                   PKG_CONFIG_SYSROOT_DIR=destdir)
        flags = run(['pkg-config', '--cflags', '--libs', 'iops-glib-1.0'], env=env).split()
        print('pkg-config: ' + ' '.join(flags))
        if not any(f.startswith('-I' + destdir) and f.endswith('/iops-glib-1.0') for f in flags):
            fail('pkg-config does not point into the DESTDIR')

        program = os.path.join(tmp, 'consumer')
        run(shlex.split(args.cc) + [args.program, '-o', program, '-Wall', '-Werror'] + flags)
        libdirs = [f[2:] for f in flags if f.startswith('-L' + destdir)]
        run_env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(libdirs))
        check_program_output(run([program], timeout=RUN_TIMEOUT, env=run_env))
        # The program must have used the installed library, not another.
        maps = run(['ldd', program], env=run_env)
        if destdir not in maps:
            fail('the program was not linked with the installed library:\n' + maps)
        print('ok: linked with the library in the DESTDIR')


def consume_subproject(args):
    with tempfile.TemporaryDirectory(prefix='iops-subproject-') as tmp:
        project = os.path.join(tmp, 'project')
        shutil.copytree(os.path.join(HERE, 'project'), project)
        shutil.copy(args.program, os.path.join(project, 'consumer.c'))
        os.makedirs(os.path.join(project, 'subprojects'))
        os.symlink(os.path.abspath(args.source_root),
                   os.path.join(project, 'subprojects', 'iops-glib'))
        build = os.path.join(tmp, 'build')
        run([args.meson, 'setup', build, project,
             '--force-fallback-for=iops-glib-1.0'])
        run([args.meson, 'compile', '-C', build, 'iops-consumer'])
        check_program_output(run([os.path.join(build, 'iops-consumer')], timeout=RUN_TIMEOUT))
        print('ok: built and ran a project using iops-glib as a subproject')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('mode', choices=['install', 'subproject'])
    parser.add_argument('--meson', required=True)
    parser.add_argument('--build-dir')
    parser.add_argument('--source-root')
    parser.add_argument('--cc', default='cc')
    parser.add_argument('--program', required=True)
    args = parser.parse_args()
    if args.mode == 'install':
        consume_install(args)
    else:
        consume_subproject(args)


if __name__ == '__main__':
    main()
