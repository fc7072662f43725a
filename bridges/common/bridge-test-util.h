/* bridge-test-util.h — real servers and mute peers for the bridges' tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every bridge test talks to the real server from Debian (redis-server,
 * mosquitto, dnsmasq, an HTTP server), started here on 127.0.0.1 and an
 * unused port, and stopped (or killed mid-run) here. Readiness is the
 * server's own "I am listening" line on its output, waited for with a
 * deadline: no sleeps.
 */
#pragma once

#include <gio/gio.h>

#include "iops-test-util.h"

G_BEGIN_DECLS

/* Generous: a server that needs longer than this is broken. */
#define BRIDGE_SERVER_READY_MS 10000

/* Generous too: a server still running this long after SIGTERM is
 * killed. */
#define BRIDGE_SERVER_STOP_MS 5000

typedef struct _BridgeServer BridgeServer;

/* A port on 127.0.0.1 that nothing listens on right now, for @type
 * (SOCK_STREAM or SOCK_DGRAM): the kernel's choice for port 0. */
guint16       bridge_unused_port   (int type);
/* A port on 127.0.0.1 that is free for TCP and for UDP, for a server that
 * binds both (a DNS server). */
guint16       bridge_unused_port_tcp_udp (void);

/* Starts @argv (argv[0] is looked up in PATH) with stdout and stderr
 * merged into a pipe that a thread of its own keeps reading, and waits up
 * to BRIDGE_SERVER_READY_MS for a line containing @ready_line. Returns
 * NULL with @error set when the program cannot start, exits or never says
 * it is ready; its output is then in the error message. On Linux the
 * server is killed when the calling thread ends, so a test that crashes
 * leaves no server behind: call it from the thread that runs the test. */
BridgeServer *bridge_server_start  (const char *const *argv,
                                    const char        *ready_line,
                                    GError           **error);
/* As bridge_server_start(), and a test failure on error. */
BridgeServer *bridge_server_start_or_fail (const char *const *argv,
                                           const char        *ready_line);

/* Waits up to @timeout_ms for a line containing @text from the server
 * since it started (the line may have come already). */
gboolean      bridge_server_wait_line (BridgeServer *server,
                                       const char   *text,
                                       guint         timeout_ms);

/* SIGKILL, as a crash would: no goodbye on any connection. Waits for the
 * process to be gone. Safe to call twice. */
void          bridge_server_kill   (BridgeServer *server);
/* SIGTERM, repeated until the exit (a server may miss one that comes
 * before its main loop runs: mosquitto 2.0 does), waits up to
 * BRIDGE_SERVER_STOP_MS for the exit, then SIGKILL, and frees @server.
 * NULL is ignored. */
void          bridge_server_stop   (BridgeServer *server);
/* The same with a bound of @timeout_ms. Returns TRUE when the server
 * exited on SIGTERM, FALSE when it had to be killed (or was already). */
gboolean      bridge_server_stop_within (BridgeServer *server,
                                         guint         timeout_ms);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BridgeServer, bridge_server_stop)

/* A peer that never answers: a TCP socket listening on 127.0.0.1 that
 * never accepts (the kernel completes the handshake, nothing is ever
 * sent), or a UDP socket bound there that never reads. Returns the socket;
 * its port is in *@port. Close it to end the test's mute peer. */
int           bridge_mute_peer     (int      type,
                                    guint16 *port);

/* Iterates @context for @ms milliseconds and returns how many iterations
 * dispatched a source. Unlike test_iterate_for(), its own wake-up at the
 * end is not counted, so a quiet loop reads 0: the wake-up has the lowest
 * priority there is, so it dispatches alone, and a spinning loop that
 * never lets it run is ended by the clock. */
guint         bridge_count_dispatches (GMainContext *context,
                                       guint         ms);

G_END_DECLS
