/* broker.c — a real mosquitto broker for the bridge's tests and benchmark
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>
#include <sys/socket.h>

#include "broker.h"

/* mosquitto 2.0 prints "mosquitto version 2.0.11 running" once its
 * listeners are open. */
#define READY_LINE " running"

static const char *
broker_program (void)
{
  /* Debian installs the broker outside a user's PATH. */
  return g_file_test ("/usr/sbin/mosquitto", G_FILE_TEST_IS_EXECUTABLE)
         ? "/usr/sbin/mosquitto" : "mosquitto";
}

static char *
write_config (const char *dir,
              guint16     port,
              gboolean    verbose,
              GError    **error)
{
  g_autofree char *path = g_build_filename (dir, "mosquitto.conf", NULL);
  g_autofree char *text = g_strdup_printf (
      "listener %u 127.0.0.1\n"
      "allow_anonymous true\n"
      "persistence false\n"
      "log_dest stderr\n"
      "%s",
      port,
      verbose ? "log_type all\n"
              : "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n");

  if (!g_file_set_contents (path, text, -1, error))
    return NULL;
  return g_steal_pointer (&path);
}

TestBroker *
test_broker_start (gboolean   verbose,
                   GError   **error)
{
  g_autoptr(TestBroker) broker = g_new0 (TestBroker, 1);
  g_autofree char *config = NULL;
  const char *argv[] = { broker_program (), "-c", NULL, NULL };

  broker->dir = g_dir_make_tmp ("iops-mosquitto-XXXXXX", error);
  if (broker->dir == NULL)
    return NULL;
  broker->port = bridge_unused_port (SOCK_STREAM);
  config = write_config (broker->dir, broker->port, verbose, error);
  if (config == NULL)
    return NULL;
  argv[2] = config;
  broker->server = bridge_server_start (argv, READY_LINE, error);
  if (broker->server == NULL)
    return NULL;
  return g_steal_pointer (&broker);
}

void
test_broker_kill (TestBroker *broker)
{
  bridge_server_kill (broker->server);
}

void
test_broker_free (TestBroker *broker)
{
  g_autofree char *config = NULL;

  if (broker == NULL)
    return;
  /* SIGKILL, for speed: the broker keeps nothing (persistence false) to
   * lose, and on SIGTERM mosquitto 2.0 ends only at the next turn of its
   * loop, some 100 ms later, which made the tests 2.5 s longer. (A SIGTERM
   * that comes before its main loop runs it forgets; bridge_server_stop ()
   * repeats it, so that would not hang.) */
  if (broker->server != NULL)
    bridge_server_kill (broker->server);
  g_clear_pointer (&broker->server, bridge_server_stop);
  if (broker->dir != NULL)
    {
      config = g_build_filename (broker->dir, "mosquitto.conf", NULL);
      g_unlink (config);
      g_rmdir (broker->dir);
      g_free (broker->dir);
    }
  g_free (broker);
}
