#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs the GTK demo headless under Xvfb and checks what it shows.

    check-gtk-demo.py --screenshot PATH -- DEMO [DEMO ARGUMENTS...]

Starts Xvfb on a free display (-displayfd), runs DEMO with --auto-quit and
--screenshot PATH on the X11 backend, then checks the summary it prints
(every transfer complete, every byte received, events counted, the window
redrawn while the transfers ran) and the PNG, read with GdkPixbuf:
its size is the window's, and each progress bar, at the bounds the demo
printed, is filled with the accent colour across its width, while the
window's background is not. Exits 77 (skipped) when Xvfb or GdkPixbuf's
typelib is missing.
"""

import argparse
import os
import re
import select
import shutil
import subprocess
import sys
import time

XVFB_START_TIMEOUT = 15
DEMO_TIMEOUT = 90


def fail(message):
    print('FAIL: ' + message)
    sys.exit(1)


def start_xvfb():
    """Starts Xvfb on a free display; returns (process, display)."""
    xvfb = shutil.which('Xvfb')
    if xvfb is None:
        print('Xvfb not found (Debian package xvfb): GTK demo test skipped')
        sys.exit(77)
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [xvfb, '-displayfd', str(write_fd), '-screen', '0', '1024x768x24',
         '-nolisten', 'tcp', '-noreset'],
        pass_fds=[write_fd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    number = b''
    deadline = time.monotonic() + XVFB_START_TIMEOUT
    # Xvfb writes the display number once it accepts connections.
    while not number.endswith(b'\n'):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([read_fd], [], [], remaining)[0]:
            process.kill()
            fail('Xvfb did not start within %d s' % XVFB_START_TIMEOUT)
        chunk = os.read(read_fd, 64)
        if not chunk:
            fail('Xvfb exited with status %s' % process.wait())
        number += chunk
    os.close(read_fd)
    return process, ':' + number.decode().strip()


def load_gdk_pixbuf():
    """Returns the GLib and GdkPixbuf modules of PyGObject, or skips the
    test when they are missing."""
    try:
        import gi
        gi.require_version('GdkPixbuf', '2.0')
        from gi.repository import GdkPixbuf, GLib
    except (ImportError, ValueError) as error:
        print('GdkPixbuf for Python not found (Debian packages python3-gi and '
              'gir1.2-gdkpixbuf-2.0): GTK demo test skipped (%s)' % error)
        sys.exit(77)
    return GLib, GdkPixbuf


def read_png(path):
    """Loads the screenshot with GdkPixbuf; returns (width, height,
    channels, rowstride, pixel bytes) of an 8-bit RGB or RGBA PNG."""
    GLib, GdkPixbuf = load_gdk_pixbuf()
    with open(path, 'rb') as f:
        if f.read(8) != b'\x89PNG\r\n\x1a\n':
            fail('%s is not a PNG' % path)
    try:
        pixbuf = GdkPixbuf.Pixbuf.new_from_file(path)
    except GLib.Error as error:
        fail('%s cannot be decoded: %s' % (path, error.message))
    channels = pixbuf.get_n_channels()
    if (pixbuf.get_colorspace() != GdkPixbuf.Colorspace.RGB
            or pixbuf.get_bits_per_sample() != 8 or channels not in (3, 4)):
        fail('unexpected PNG format: %d bits per sample, %d channels'
             % (pixbuf.get_bits_per_sample(), channels))
    return (pixbuf.get_width(), pixbuf.get_height(), channels,
            pixbuf.get_rowstride(), pixbuf.read_pixel_bytes().get_data())


def is_accent(pixel):
    """The blue of Adwaita's accent (#3584e4), and its shades."""
    r, g, b = pixel[0], pixel[1], pixel[2]
    return b >= 150 and b - r >= 80 and b - g >= 30


def pixel_at(image, x, y):
    width, height, channels, rowstride, pixels = image
    start = y * rowstride + x * channels
    return pixels[start:start + channels]


def check_bar(image, number, bounds):
    """Some row of the bar's bounds is the accent colour across at least 90%
    of its width: the bar is full, and drawn where the demo says it is."""
    x0, y0, w, h = bounds
    best = 0
    for y in range(y0, y0 + h):
        run = sum(1 for x in range(x0, x0 + w) if is_accent(pixel_at(image, x, y)))
        best = max(best, run)
    if best < 0.9 * w:
        fail('progress bar %d at %s: at most %d of %d pixels in a row have the '
             'accent colour' % (number, bounds, best, w))
    print('ok: progress bar %d is full (%d of %d accent pixels in a row)' % (number, best, w))


def check_screenshot(path, summary):
    if not os.path.exists(path):
        fail('the demo wrote no screenshot at %s' % path)
    image = read_png(path)
    width, height = image[0], image[1]
    if (width, height) != summary['window']:
        fail('the screenshot is %dx%d, the window %dx%d' % ((width, height) + summary['window']))
    print('ok: screenshot %s is %dx%d, the window size' % (path, width, height))

    colours = set()
    for y in range(0, height, 4):
        for x in range(0, width, 4):
            colours.add(bytes(pixel_at(image, x, y)))
    if len(colours) < 8:
        fail('the screenshot has only %d colours' % len(colours))
    print('ok: the screenshot is not uniform (%d colours sampled)' % len(colours))

    for number, bounds in sorted(summary['bars'].items()):
        if bounds[0] + bounds[2] > width or bounds[1] + bounds[3] > height:
            fail('progress bar %d at %s is outside the window' % (number, bounds))
        check_bar(image, number, bounds)

    # Left of the bars is the window's margin: background, no accent.
    first = summary['bars'][1]
    margin = [pixel_at(image, x, y)
              for y in range(first[1], first[1] + first[3]) for x in range(0, first[0] - 2)]
    if not margin or any(is_accent(p) for p in margin):
        fail('the margin left of the progress bars is not plain background')
    print('ok: the margin left of the bars has no accent colour')


def parse_summary(output):
    summary = {'bars': {}}
    for line in output.splitlines():
        m = re.match(r'bar (\d+): (-?\d+) (-?\d+) (\d+) (\d+)$', line)
        if m:
            summary['bars'][int(m.group(1))] = tuple(int(v) for v in m.groups()[1:])
            continue
        m = re.match(r'([\w ]+): (.*)$', line)
        if m:
            summary[m.group(1)] = m.group(2)
    if 'window' in summary:
        summary['window'] = tuple(int(v) for v in summary['window'].split())
    return summary


def check_summary(summary, transfers, size_kib):
    expected = {
        'transfers': '%d of %d complete' % (transfers, transfers),
        'bytes': '%d of %d' % ((transfers * size_kib * 1024,) * 2),
    }
    for key, value in expected.items():
        if summary.get(key) != value:
            fail('%s: got %r, expected %r' % (key, summary.get(key), value))
        print('ok: %s: %s' % (key, value))
    if int(summary.get('events', '0')) < transfers * 4:
        fail('too few events counted: %s' % summary.get('events'))
    print('ok: %s events, backend %s' % (summary['events'], summary.get('backend')))
    frames = int(summary.get('frames drawn while running', '0'))
    if frames < 3:
        fail('the window was drawn %d times while the transfers ran' % frames)
    print('ok: the window was redrawn %d times while the transfers ran' % frames)
    if sorted(summary['bars']) != list(range(1, transfers + 1)) or 'window' not in summary:
        fail('the summary lacks the window size or the bounds of the bars')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--screenshot', required=True)
    parser.add_argument('demo', nargs=argparse.REMAINDER)
    args = parser.parse_args()
    demo = args.demo[1:] if args.demo[:1] == ['--'] else args.demo
    transfers = int(demo[demo.index('--transfers') + 1])
    size_kib = int(demo[demo.index('--size') + 1])

    load_gdk_pixbuf()  # skip before starting anything
    if os.path.exists(args.screenshot):
        os.unlink(args.screenshot)
    xvfb, display = start_xvfb()
    env = dict(os.environ,
               DISPLAY=display,
               GDK_BACKEND='x11',
               # The software renderer: no GL needed, same pixels everywhere.
               GSK_RENDERER='cairo',
               GTK_A11Y='none',
               NO_AT_BRIDGE='1',
               # No session bus here: the demo is NON_UNIQUE and needs none.
               DBUS_SESSION_BUS_ADDRESS='disabled:',
               G_DEBUG='fatal-criticals')
    env.pop('WAYLAND_DISPLAY', None)
    try:
        result = subprocess.run(demo + ['--auto-quit', '--screenshot', args.screenshot],
                                env=env, capture_output=True, text=True,
                                timeout=DEMO_TIMEOUT)
    except subprocess.TimeoutExpired:
        fail('the demo did not quit within %d s' % DEMO_TIMEOUT)
    finally:
        xvfb.terminate()
        try:
            xvfb.wait(timeout=10)
        except subprocess.TimeoutExpired:
            xvfb.kill()
            xvfb.wait()

    sys.stdout.write(result.stdout)
    sys.stdout.write(result.stderr)
    if result.returncode != 0:
        fail('the demo exited with status %d' % result.returncode)
    if result.stderr.strip():
        fail('the demo wrote to stderr')
    summary = parse_summary(result.stdout)
    check_summary(summary, transfers, size_kib)
    check_screenshot(args.screenshot, summary)
    print('all checks passed')


if __name__ == '__main__':
    main()
