/* test-bridge-util.c — the shared helpers of the bridges' tests, tested
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The servers here are small Python programs (Debian's /usr/bin/python3)
 * standing in for the behaviours of real servers that matter: one that
 * exits on SIGTERM, one that forgets the first, as mosquitto 2.0 does for
 * a SIGTERM that comes before its main loop runs, and one that ignores it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge-test-util.h"

#define PYTHON "/usr/bin/python3"

static const char server_obeying_term[] =
  "import signal\n"
  "print('ready', flush=True)\n"
  "signal.pause()\n";

static const char server_ignoring_term[] =
  "import signal\n"
  "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
  "print('ready', flush=True)\n"
  "while True:\n"
  "    signal.pause()\n";

/* Like mosquitto 2.0 when the SIGTERM comes before its main loop runs:
 * the first one is forgotten. */
static const char server_missing_first_term[] =
  "import signal, sys\n"
  "terms = []\n"
  "def on_term(signum, frame):\n"
  "    terms.append(signum)\n"
  "    if len(terms) > 1:\n"
  "        sys.exit(0)\n"
  "signal.signal(signal.SIGTERM, on_term)\n"
  "print('ready', flush=True)\n"
  "while True:\n"
  "    signal.pause()\n";

static gboolean
can_bind (int     type,
          guint16 port)
{
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons (port),
                              .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  int fd = socket (AF_INET, type | SOCK_CLOEXEC, 0);
  gboolean bound;

  g_assert_cmpint (fd, >=, 0);
  bound = bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0;
  close (fd);
  return bound;
}

static void
test_unused_port_tcp_udp (void)
{
  for (guint i = 0; i < 20; i++)
    {
      guint16 port = bridge_unused_port_tcp_udp ();

      g_assert_cmpuint (port, >, 0);
      g_assert_true (can_bind (SOCK_STREAM, port));
      g_assert_true (can_bind (SOCK_DGRAM, port));
    }
}

static BridgeServer *
start_python (const char *script)
{
  const char *argv[] = { PYTHON, "-c", script, NULL };

  return bridge_server_start_or_fail (argv, "ready");
}

static void
test_stop_on_term (void)
{
  BridgeServer *server = start_python (server_obeying_term);

  g_assert_true (bridge_server_stop_within (server, TEST_DEADLINE_MS));
}

static void
test_stop_repeats_term (void)
{
  BridgeServer *server = start_python (server_missing_first_term);

  g_assert_true (bridge_server_stop_within (server, TEST_DEADLINE_MS));
}

/* The server ignores SIGTERM: the stop waits its bound, not less, then
 * kills it and returns (freeing the server joins the thread that reads its
 * output, which ends only once the process is gone). */
static void
test_stop_ignored_term (void)
{
  const guint bound_ms = 300;
  BridgeServer *server = start_python (server_ignoring_term);
  gint64 start = g_get_monotonic_time ();

  g_assert_false (bridge_server_stop_within (server, bound_ms));
  g_assert_cmpint (g_get_monotonic_time () - start, >=, bound_ms * G_TIME_SPAN_MILLISECOND);
}

static void
test_stop_after_kill (void)
{
  BridgeServer *server = start_python (server_obeying_term);

  bridge_server_kill (server);
  bridge_server_kill (server);
  g_assert_false (bridge_server_stop_within (server, TEST_DEADLINE_MS));
}

static void
test_stop_null (void)
{
  bridge_server_stop (NULL);
  g_assert_false (bridge_server_stop_within (NULL, 0));
}

static void
test_count_quiet (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();

  g_assert_cmpuint (bridge_count_dispatches (context, 50), ==, 0);
}

static gboolean
count_down (gpointer data)
{
  guint *left = data;

  return --*left > 0 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* Five dispatches of another source read five, whatever their priority. */
static void
test_count_some (gconstpointer data)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GSource) idle = g_idle_source_new ();
  guint left = 5;

  g_source_set_priority (idle, GPOINTER_TO_INT (data));
  g_source_set_callback (idle, count_down, &left, NULL);
  g_source_attach (idle, context);
  g_assert_cmpuint (bridge_count_dispatches (context, 50), ==, 5);
  g_assert_cmpuint (left, ==, 0);
}

static gboolean
spin (gpointer data)
{
  (*(guint *) data)++;
  return G_SOURCE_CONTINUE;
}

/* A source that is always ready starves the lowest-priority wake-up: the
 * clock still ends the count, which is every dispatch. */
static void
test_count_spinning (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GSource) idle = g_idle_source_new ();
  guint calls = 0, n;

  g_source_set_callback (idle, spin, &calls, NULL);
  g_source_attach (idle, context);
  n = bridge_count_dispatches (context, 50);
  g_source_destroy (idle);
  g_assert_cmpuint (n, >, 0);
  g_assert_cmpuint (n, ==, calls);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/iops/bridge/common/unused-port/tcp-udp", test_unused_port_tcp_udp);
  g_test_add_func ("/iops/bridge/common/server/stop-on-term", test_stop_on_term);
  g_test_add_func ("/iops/bridge/common/server/stop-repeats-term", test_stop_repeats_term);
  g_test_add_func ("/iops/bridge/common/server/stop-ignored-term", test_stop_ignored_term);
  g_test_add_func ("/iops/bridge/common/server/stop-after-kill", test_stop_after_kill);
  g_test_add_func ("/iops/bridge/common/server/stop-null", test_stop_null);
  g_test_add_func ("/iops/bridge/common/count-dispatches/quiet", test_count_quiet);
  g_test_add_data_func ("/iops/bridge/common/count-dispatches/default-priority",
                        GINT_TO_POINTER (G_PRIORITY_DEFAULT), test_count_some);
  g_test_add_data_func ("/iops/bridge/common/count-dispatches/low-priority",
                        GINT_TO_POINTER (G_PRIORITY_LOW), test_count_some);
  g_test_add_func ("/iops/bridge/common/count-dispatches/spinning", test_count_spinning);

  return g_test_run ();
}
