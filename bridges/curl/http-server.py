#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The HTTP server of the curl bridge's tests.

  http-server.py PORT

Listens on 127.0.0.1:PORT (HTTP/1.1, keep-alive, one thread per
connection) and prints "iops-curl-test-server ready on port PORT" once it
accepts connections. Paths:

  /blob/SIZE/SEED   200, SIZE bytes of blob(SEED, SIZE)
  /stall/SIZE/SEED  200 with Content-Length SIZE, the first half of the
                    body, then nothing: the connection stays open until the
                    server is killed
  /close/SIZE/SEED  as /blob, then the server closes the connection

blob(SEED, SIZE) is a xorshift64 sequence started from SEED, as
little-endian 64-bit words cut to SIZE bytes: the test computes the same
bytes on its own to check every reply.
"""

import http.server
import struct
import sys
import threading

MASK = (1 << 64) - 1

_cache = {}
_cache_lock = threading.Lock()


def blob(seed, size):
    key = (seed, size)
    with _cache_lock:
        data = _cache.get(key)
    if data is None:
        x = (seed * 0x9E3779B97F4A7C15 + 1) & MASK
        words = []
        for _ in range((size + 7) // 8):
            x ^= (x << 13) & MASK
            x ^= x >> 7
            x ^= (x << 17) & MASK
            words.append(x)
        data = struct.pack('<%dQ' % len(words), *words)[:size]
        with _cache_lock:
            _cache[key] = data
    return data


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, format, *args):
        pass  # one line per request would only bury a failure's output

    def do_GET(self):
        parts = self.path.strip('/').split('/')
        if len(parts) != 3 or parts[0] not in ('blob', 'stall', 'close'):
            self.send_error(404)
            return
        try:
            size, seed = int(parts[1]), int(parts[2])
        except ValueError:
            self.send_error(400)
            return
        body = blob(seed, size)
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(size))
        if parts[0] == 'close':
            self.send_header('Connection', 'close')
            self.close_connection = True
        self.end_headers()
        if parts[0] == 'stall':
            self.wfile.write(body[:size // 2])
            self.wfile.flush()
            threading.Event().wait()  # until the test kills the process
        self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # hundreds of connects arrive at once


def main():
    port = int(sys.argv[1])
    server = Server(('127.0.0.1', port), Handler)
    print(f'iops-curl-test-server ready on port {port}', flush=True)
    server.serve_forever()


if __name__ == '__main__':
    main()
