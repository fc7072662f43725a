/* bridge-test-util.c — real servers and mute peers for the bridges' tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __linux__
# include <sys/prctl.h>
#endif

#include "bridge-test-util.h"

/* How often bridge_server_stop () repeats its SIGTERM. */
#define BRIDGE_SERVER_TERM_AGAIN_MS 50

struct _BridgeServer
{
  GSubprocess *process;
  GThread     *reader;    /* reads the merged output until EOF */
  GMutex       lock;
  GCond        changed;   /* a line came, or the output ended */
  GString     *output;    /* everything the server printed */
  gboolean     eof;
  gboolean     killed;
};

static struct sockaddr_in
loopback (guint16 port)
{
  struct sockaddr_in addr = { 0 };

  addr.sin_family = AF_INET;
  addr.sin_port = htons (port);
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  return addr;
}

static int
bound_socket (int      type,
              guint16 *port)
{
  struct sockaddr_in addr = loopback (0);
  socklen_t len = sizeof addr;
  int fd = socket (AF_INET, type | SOCK_CLOEXEC, 0);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &addr, &len), ==, 0);
  *port = ntohs (addr.sin_port);
  return fd;
}

guint16
bridge_unused_port (int type)
{
  guint16 port;

  /* Closed at once: the server binds it a moment later. Another process
   * could take it in between; the kernel hands out ephemeral ports in
   * turn, so that takes a machine busy with thousands of new ports. */
  close (bound_socket (type, &port));
  return port;
}

/* Binds @fd to @port on 127.0.0.1; FALSE when the port is taken. */
static gboolean
bind_port (int     fd,
           guint16 port)
{
  struct sockaddr_in addr = loopback (port);

  return bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0;
}

guint16
bridge_unused_port_tcp_udp (void)
{
  /* Most UDP ports the kernel hands out are free for TCP too; a few
   * attempts find one. */
  for (guint attempt = 0; attempt < 100; attempt++)
    {
      guint16 port;
      int udp = bound_socket (SOCK_DGRAM, &port);
      int tcp = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      gboolean free_for_tcp;

      g_assert_cmpint (tcp, >=, 0);
      free_for_tcp = bind_port (tcp, port);
      close (tcp);
      close (udp);
      if (free_for_tcp)
        return port;
    }
  g_error ("no port on 127.0.0.1 is free for both TCP and UDP");
}

int
bridge_mute_peer (int      type,
                  guint16 *port)
{
  int fd = bound_socket (type, port);

  if (type == SOCK_STREAM)
    g_assert_cmpint (listen (fd, 128), ==, 0);
  return fd;
}

static gpointer
read_output (gpointer data)
{
  BridgeServer *server = data;
  GInputStream *out = g_subprocess_get_stdout_pipe (server->process);
  char buf[4096];
  gssize n;

  while ((n = g_input_stream_read (out, buf, sizeof buf, NULL, NULL)) > 0)
    {
      g_mutex_lock (&server->lock);
      g_string_append_len (server->output, buf, n);
      g_cond_broadcast (&server->changed);
      g_mutex_unlock (&server->lock);
    }
  g_mutex_lock (&server->lock);
  server->eof = TRUE;
  g_cond_broadcast (&server->changed);
  g_mutex_unlock (&server->lock);
  return NULL;
}

gboolean
bridge_server_wait_line (BridgeServer *server,
                         const char   *text,
                         guint         timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;
  gboolean found;

  g_mutex_lock (&server->lock);
  while (!(found = strstr (server->output->str, text) != NULL) && !server->eof)
    if (!g_cond_wait_until (&server->changed, &server->lock, deadline))
      {
        found = strstr (server->output->str, text) != NULL;
        break;
      }
  g_mutex_unlock (&server->lock);
  return found;
}

static void
bridge_server_free (BridgeServer *server)
{
  g_thread_join (server->reader);
  g_string_free (server->output, TRUE);
  g_mutex_clear (&server->lock);
  g_cond_clear (&server->changed);
  g_object_unref (server->process);
  g_free (server);
}

/* In the child, before exec: a test or benchmark that crashes, and so
 * never stops its server, must not leave it running. */
static void
die_with_parent (gpointer data)
{
#ifdef __linux__
  prctl (PR_SET_PDEATHSIG, SIGKILL);
#endif
}

static GSubprocess *
spawn_server (const char *const *argv,
              GError           **error)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  return g_subprocess_launcher_spawnv (launcher, argv, error);
}

BridgeServer *
bridge_server_start (const char *const *argv,
                     const char        *ready_line,
                     GError           **error)
{
  BridgeServer *server;
  GSubprocess *process;

  process = spawn_server (argv, error);
  if (process == NULL)
    return NULL;

  server = g_new0 (BridgeServer, 1);
  server->process = process;
  server->output = g_string_new (NULL);
  g_mutex_init (&server->lock);
  g_cond_init (&server->changed);
  server->reader = g_thread_new ("bridge-server-output", read_output, server);

  if (bridge_server_wait_line (server, ready_line, BRIDGE_SERVER_READY_MS))
    return server;

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
               "%s did not print \"%s\" within %d ms; its output:\n%s",
               argv[0], ready_line, BRIDGE_SERVER_READY_MS, server->output->str);
  bridge_server_kill (server);
  bridge_server_free (server);
  return NULL;
}

BridgeServer *
bridge_server_start_or_fail (const char *const *argv,
                             const char        *ready_line)
{
  g_autoptr(GError) error = NULL;
  BridgeServer *server = bridge_server_start (argv, ready_line, &error);

  g_assert_no_error (error);
  return server;
}

void
bridge_server_kill (BridgeServer *server)
{
  if (!server->killed)
    {
      g_subprocess_send_signal (server->process, SIGKILL);
      server->killed = TRUE;
    }
  g_subprocess_wait (server->process, NULL, NULL);
}

static void
on_exited (GObject      *process,
           GAsyncResult *result,
           gpointer      data)
{
  gboolean *exited = data;

  g_subprocess_wait_finish (G_SUBPROCESS (process), result, NULL);
  *exited = TRUE;
}

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
send_term (gpointer data)
{
  g_subprocess_send_signal (data, SIGTERM);
  return G_SOURCE_CONTINUE;
}

/* SIGTERM, and waits up to @timeout_ms for the exit on a context of its
 * own (the caller's may be a test's, with sources that must not run
 * here); after that, SIGKILL, and the same wait until the exit. A server
 * may miss a SIGTERM that comes before its main loop runs (mosquitto 2.0
 * sets the flag its handler clears only then), so the signal is sent
 * again every BRIDGE_SERVER_TERM_AGAIN_MS until the exit. */
static gboolean
term_wait_or_kill (BridgeServer *server,
                   guint         timeout_ms)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GSource) timeout = g_timeout_source_new (timeout_ms);
  g_autoptr(GSource) again = g_timeout_source_new (BRIDGE_SERVER_TERM_AGAIN_MS);
  gboolean exited = FALSE, expired = FALSE, in_time;

  g_main_context_push_thread_default (context);
  g_subprocess_wait_async (server->process, NULL, on_exited, &exited);
  g_source_set_callback (timeout, set_flag, &expired, NULL);
  g_source_attach (timeout, context);
  g_source_set_callback (again, send_term, server->process, NULL);
  g_source_attach (again, context);
  g_subprocess_send_signal (server->process, SIGTERM);
  while (!exited && !expired)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (again);
  in_time = exited;
  if (!exited)
    {
      g_subprocess_send_signal (server->process, SIGKILL);
      server->killed = TRUE;
    }
  /* The pending wait must finish before its flag and context go. */
  while (!exited)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timeout);
  g_main_context_pop_thread_default (context);
  return in_time;
}

gboolean
bridge_server_stop_within (BridgeServer *server,
                           guint         timeout_ms)
{
  gboolean on_term = FALSE;

  if (server == NULL)
    return FALSE;
  if (!server->killed)
    on_term = term_wait_or_kill (server, timeout_ms);
  else
    g_subprocess_wait (server->process, NULL, NULL);
  bridge_server_free (server);
  return on_term;
}

void
bridge_server_stop (BridgeServer *server)
{
  bridge_server_stop_within (server, BRIDGE_SERVER_STOP_MS);
}

guint
bridge_count_dispatches (GMainContext *context,
                         guint         ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) ms * G_TIME_SPAN_MILLISECOND;
  g_autoptr(GSource) wakeup = g_timeout_source_new (ms);
  gboolean woke = FALSE;
  guint n = 0;

  g_source_set_priority (wakeup, G_MAXINT);
  g_source_set_callback (wakeup, set_flag, &woke, NULL);
  g_source_attach (wakeup, context);
  while (!woke && g_get_monotonic_time () < end)
    if (g_main_context_iteration (context, TRUE) && !woke)
      n++;
  g_source_destroy (wakeup);
  return n;
}
