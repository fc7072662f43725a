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

static void
signal_and_wait (BridgeServer *server,
                 int           signum)
{
  if (!server->killed)
    {
      g_subprocess_send_signal (server->process, signum);
      server->killed = TRUE;
    }
  g_subprocess_wait (server->process, NULL, NULL);
}

void
bridge_server_kill (BridgeServer *server)
{
  signal_and_wait (server, SIGKILL);
}

void
bridge_server_stop (BridgeServer *server)
{
  if (server == NULL)
    return;
  signal_and_wait (server, SIGTERM);
  bridge_server_free (server);
}
