/* bench-mosquitto.c — iops-bench-mosquitto: QoS 1 round trips through a broker
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   iops-bench-mosquitto [--reps N] [--smoke] [--count N] [--idle N] [--burst N]
 *                        [--workload NAME]
 *
 * Starts its own mosquitto broker on 127.0.0.1. One client subscribes to a
 * topic and publishes QoS 1 messages to it, one at a time: each message is
 * published from the callback that received the previous one (publish →
 * broker → PUBACK, and broker → PUBLISH → PUBACK back). The same client
 * code runs on:
 *
 *  - the bridge, on an IopsGLibIOPS (epoll backend, one-shot and persistent
 *    watches; gsource backend), driven by its GMainContext;
 *  - libmosquitto's own loop, mosquitto_loop_forever() on its thread
 *    (mosquitto_loop_start()).
 *
 * and, with --idle N watched fds that never become ready on the same IOPS,
 * the bridge on epoll again.
 *
 * A second workload measures the pitfall of publishing from outside any
 * callback: --burst QoS 0 messages of 16 KiB published in one go from the
 * application's code, more than the socket takes at once. The time until
 * libmosquitto reports the last one written, with iops_mosquitto_update()
 * after the burst, without it (the bridge's once-a-second tick finds the
 * rest), and on the loop thread.
 *
 * Every system of every workload runs once per
 * repetition, interleaved, in reverse order every other repetition; each
 * run is a fresh connection, and only the round trips are timed. Every
 * message is checked (its index, in order). Prints the JSON lines of
 * bench/bridges.py.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "iops-mosquitto.h"

#define TOPIC        "iops/bench/rtt"
#define BURST_TOPIC  "iops/bench/burst"   /* nobody subscribes */
#define PAYLOAD_SIZE 32
#define BURST_SIZE   16384
#define DEADLINE_S   120

static int      opt_reps = 7;
static gboolean opt_smoke;
static int      opt_count = 20000;
static int      opt_idle = 10000;
static int      opt_burst = 2000;
static char    *opt_workload;

G_GNUC_NORETURN G_GNUC_PRINTF (1, 2) static void
fail (const char *format,
      ...)
{
  va_list args;

  va_start (args, format);
  fprintf (stderr, "iops-bench-mosquitto: ");
  vfprintf (stderr, format, args);
  fprintf (stderr, "\n");
  va_end (args);
  exit (1);
}

static gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* -- the client: the same for every system -------------------------------------- */

typedef struct _Client Client;

struct _Client
{
  struct mosquitto *mosq;
  int               count;       /* round trips to make, or messages to burst */
  gboolean          burst;
  int               received;
  int               written;     /* burst messages libmosquitto wrote */
  int               written_at_once;  /* ... by the time the burst's publishes returned */
  gint64            started_ns;
  gint64            finished_ns;
  gboolean          subscribed;
  gboolean          done;
  gboolean          failed;
  /* What the driver does once subscribed, when the last message came
   * back, and once disconnected after that (from the callbacks). */
  void            (*on_subscribed)   (Client *client);
  void            (*on_done)         (Client *client);
  void            (*on_disconnected) (Client *client);
  gpointer          driver;
};

static void
client_publish (Client *client,
                int     index)
{
  char payload[PAYLOAD_SIZE] = { 0 };
  int rc;

  g_snprintf (payload, sizeof payload, "%d", index);
  rc = mosquitto_publish (client->mosq, NULL, TOPIC, sizeof payload, payload, 1, false);
  if (rc != MOSQ_ERR_SUCCESS)
    fail ("mosquitto_publish: %s", mosquitto_strerror (rc));
}

static void
on_connect (struct mosquitto *mosq,
            void             *data,
            int               rc)
{
  if (rc != 0)
    fail ("connection refused: %s", mosquitto_connack_string (rc));
  mosquitto_subscribe (mosq, NULL, TOPIC, 1);
}

static void
on_subscribe (struct mosquitto *mosq,
              void             *data,
              int               mid,
              int               n_granted,
              const int        *granted)
{
  Client *client = data;

  client->subscribed = TRUE;
  client->on_subscribed (client);
}

static void
on_message (struct mosquitto               *mosq,
            void                           *data,
            const struct mosquitto_message *msg)
{
  Client *client = data;
  char expected[PAYLOAD_SIZE] = { 0 };

  g_snprintf (expected, sizeof expected, "%d", client->received);
  if (msg->payloadlen != PAYLOAD_SIZE || memcmp (msg->payload, expected, PAYLOAD_SIZE) != 0)
    {
      client->failed = TRUE;
      fprintf (stderr, "iops-bench-mosquitto: message %d out of order\n", client->received);
    }
  if (++client->received < client->count)
    {
      client_publish (client, client->received);
      return;
    }
  client->finished_ns = now_ns ();
  client->done = TRUE;
  client->on_done (client);
}

/* For QoS 0, libmosquitto calls this once it wrote the whole message. */
static void
on_publish (struct mosquitto *mosq,
            void             *data,
            int               mid)
{
  Client *client = data;

  if (!client->burst || ++client->written < client->count)
    return;
  client->finished_ns = now_ns ();
  client->done = TRUE;
  client->on_done (client);
}

static void
on_disconnect (struct mosquitto *mosq,
               void             *data,
               int               rc)
{
  Client *client = data;

  if (!client->done)
    fail ("disconnected after %d round trips, %d written: %s",
          client->received, client->written, mosquitto_strerror (rc));
  if (client->on_disconnected != NULL)
    client->on_disconnected (client);
}

static void
client_init (Client   *client,
             gboolean  burst)
{
  memset (client, 0, sizeof *client);
  client->burst = burst;
  client->count = burst ? opt_burst : opt_count;
  client->mosq = mosquitto_new (NULL, true, client);
  if (client->mosq == NULL)
    fail ("mosquitto_new: %s", g_strerror (errno));
  mosquitto_connect_callback_set (client->mosq, on_connect);
  mosquitto_subscribe_callback_set (client->mosq, on_subscribe);
  mosquitto_message_callback_set (client->mosq, on_message);
  mosquitto_publish_callback_set (client->mosq, on_publish);
  mosquitto_disconnect_callback_set (client->mosq, on_disconnect);
}

static void
client_connect (Client  *client,
                guint16  port)
{
  int rc = mosquitto_connect_async (client->mosq, "127.0.0.1", port, 60);

  if (rc != MOSQ_ERR_SUCCESS)
    fail ("mosquitto_connect_async: %s", mosquitto_strerror (rc));
}

/* From the application's code, outside any callback. */
static void
client_start (Client *client)
{
  static guint8 bulk[BURST_SIZE];
  int rc;

  client->started_ns = now_ns ();
  if (!client->burst)
    {
      client_publish (client, 0);
      return;
    }
  for (int i = 0; i < client->count; i++)
    if ((rc = mosquitto_publish (client->mosq, NULL, BURST_TOPIC, BURST_SIZE, bulk, 0,
                                 false)) != MOSQ_ERR_SUCCESS)
      fail ("mosquitto_publish: %s", mosquitto_strerror (rc));
  client->written_at_once = client->written;
}

/* Of the latest run, for the record. */
static int last_written_at_once;

static double
client_rate (Client *client)
{
  last_written_at_once = client->written_at_once;
  if (client->failed)
    fail ("a message was lost or out of order");
  return client->count / ((client->finished_ns - client->started_ns) / 1e9);
}

/* -- idle fds ------------------------------------------------------------------------ */

typedef struct
{
  int          *fds;
  IopsIOEvent **events;
  int           n;
} Idle;

static void
need_fds (int n)
{
  struct rlimit limit;

  getrlimit (RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur >= (rlim_t) n)
    return;
  limit.rlim_cur = MIN ((rlim_t) n, limit.rlim_max);
  if (setrlimit (RLIMIT_NOFILE, &limit) < 0 || limit.rlim_cur < (rlim_t) n)
    fail ("needs %d fds; RLIMIT_NOFILE allows %lu", n, (unsigned long) limit.rlim_max);
}

static void
idle_ready (IopsIOEvent    *event,
            IopsEventFlags  flags,
            gpointer        data)
{
  fail ("an idle fd was reported ready");
}

/* Both ends of socketpairs nobody writes to, each watched for read. */
static void
idle_watch (Idle     *idle,
            IopsIOPS *iops,
            int       n)
{
  idle->n = n + n % 2;
  idle->fds = g_new (int, idle->n);
  idle->events = g_new (IopsIOEvent *, idle->n);
  for (int i = 0; i < idle->n; i += 2)
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, idle->fds + i) < 0)
      fail ("socketpair: %s", g_strerror (errno));
  for (int i = 0; i < idle->n; i++)
    {
      idle->events[i] = iops_io_event_new (idle->fds[i]);
      g_signal_connect (idle->events[i], "ready", G_CALLBACK (idle_ready), NULL);
      iops_iops_update_event (iops, idle->events[i], IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
    }
}

static void
idle_clear (Idle     *idle,
            IopsIOPS *iops)
{
  for (int i = 0; i < idle->n; i++)
    {
      iops_iops_update_event (iops, idle->events[i], IOPS_EVACTION_CLEANUP, 0);
      g_object_unref (idle->events[i]);
      close (idle->fds[i]);
    }
  g_clear_pointer (&idle->fds, g_free);
  g_clear_pointer (&idle->events, g_free);
  idle->n = 0;
}

/* -- the bridge on an IopsGLibIOPS ------------------------------------------------------- */

static void
bridge_done (Client *client)
{
  /* From the callback: the bridge writes the DISCONNECT and libmosquitto
   * closes the socket. */
  mosquitto_disconnect (client->mosq);
}

/* Ends start_watching(), which idle fds keep running. */
static void
bridge_stop (Client *client)
{
  iops_iops_stop_watching (client->driver);
}

static gboolean
deadline_passed (gpointer data)
{
  fail ("no progress for %d s", DEADLINE_S);
}

typedef struct
{
  const char *workload;
  const char *system;
  const char *label;
  const char *backend;   /* NULL: the thread */
  gboolean    persistent;
  gboolean    idle;
  gboolean    burst;
  gboolean    update;    /* iops_mosquitto_update() after the first publishes */
} Cell;

static double
run_bridge (const Cell *cell,
            guint16     port)
{
  GMainContext *context = g_main_context_new ();
  g_autoptr(IopsGLibIOPS) glib_iops = g_object_new (IOPS_TYPE_GLIB_IOPS, "context", context,
                                                    "backend", cell->backend,
                                                    "persistent", cell->persistent, NULL);
  IopsIOPS *iops = IOPS_IOPS (glib_iops);
  GSource *deadline = g_timeout_source_new_seconds (DEADLINE_S);
  Idle idle = { 0 };
  IopsMosquitto *bridge;
  Client client;
  double rate;

  g_source_set_callback (deadline, deadline_passed, NULL, NULL);
  g_source_attach (deadline, context);
  idle_watch (&idle, iops, cell->idle ? opt_idle : 0);
  client_init (&client, cell->burst);
  client.on_subscribed = bridge_stop;
  client.on_done = bridge_done;
  client.on_disconnected = bridge_stop;
  client.driver = iops;

  client_connect (&client, port);
  bridge = iops_mosquitto_attach (client.mosq, iops);
  iops_iops_start_watching (iops);    /* until subscribed */
  if (!client.subscribed)
    fail ("not subscribed");

  client_start (&client);
  if (cell->update)
    iops_mosquitto_update (bridge);   /* published outside a callback */
  iops_iops_start_watching (iops);    /* until disconnected */
  if (!client.done)
    fail ("the loop returned after %d round trips", client.received);
  rate = client_rate (&client);

  iops_mosquitto_detach (bridge);
  mosquitto_destroy (client.mosq);
  idle_clear (&idle, iops);
  g_source_destroy (deadline);
  g_source_unref (deadline);
  g_clear_object (&glib_iops);
  g_main_context_unref (context);
  return rate;
}

/* -- mosquitto_loop_forever() on its own thread -------------------------------------------- */

typedef struct
{
  GMutex lock;
  GCond  changed;
} ThreadDriver;

static void
thread_signal (Client *client)
{
  ThreadDriver *driver = client->driver;

  g_mutex_lock (&driver->lock);
  g_cond_broadcast (&driver->changed);
  g_mutex_unlock (&driver->lock);
}

/* Reads @flag under the lock the loop thread signals with. */
static void
thread_wait (Client         *client,
             const gboolean *flag)
{
  ThreadDriver *driver = client->driver;
  gint64 deadline = g_get_monotonic_time () + DEADLINE_S * G_TIME_SPAN_SECOND;

  g_mutex_lock (&driver->lock);
  while (!g_atomic_int_get (flag))
    if (!g_cond_wait_until (&driver->changed, &driver->lock, deadline))
      fail ("no progress for %d s", DEADLINE_S);
  g_mutex_unlock (&driver->lock);
}

static double
run_thread (const Cell *cell,
            guint16     port)
{
  ThreadDriver driver;
  Client client;
  double rate;
  int rc;

  g_mutex_init (&driver.lock);
  g_cond_init (&driver.changed);
  client_init (&client, cell->burst);
  client.on_done = thread_signal;
  client.on_subscribed = thread_signal;
  client.driver = &driver;

  client_connect (&client, port);
  rc = mosquitto_loop_start (client.mosq);
  if (rc != MOSQ_ERR_SUCCESS)
    fail ("mosquitto_loop_start: %s", mosquitto_strerror (rc));
  thread_wait (&client, &client.subscribed);

  /* From this thread, as an application would: libmosquitto wakes its
   * loop thread through its socketpair. */
  g_mutex_lock (&driver.lock);
  client_start (&client);
  g_mutex_unlock (&driver.lock);
  thread_wait (&client, &client.done);
  rate = client_rate (&client);

  mosquitto_disconnect (client.mosq);
  mosquitto_loop_stop (client.mosq, false);
  mosquitto_destroy (client.mosq);
  g_mutex_clear (&driver.lock);
  g_cond_clear (&driver.changed);
  return rate;
}

/* -- the matrix ---------------------------------------------------------------------------- */

static const Cell cells[] = {
  { "rtt qos1", "bridge-epoll", "bridge, IopsGLibIOPS epoll, one-shot", "epoll", FALSE, FALSE, FALSE, TRUE },
  { "rtt qos1", "bridge-epoll-persistent", "bridge, IopsGLibIOPS epoll, persistent", "epoll", TRUE, FALSE, FALSE, TRUE },
  { "rtt qos1", "bridge-gsource", "bridge, IopsGLibIOPS gsource, one-shot", "gsource", FALSE, FALSE, FALSE, TRUE },
  { "rtt qos1", "loop-thread", "mosquitto_loop_start() thread", NULL, FALSE, FALSE, FALSE, FALSE },
  { "rtt qos1 idle", "bridge-epoll", "bridge, IopsGLibIOPS epoll, one-shot", "epoll", FALSE, TRUE, FALSE, TRUE },
  { "burst qos0", "bridge-epoll", "bridge, IopsGLibIOPS epoll, one-shot", "epoll", FALSE, FALSE, TRUE, TRUE },
  { "burst qos0", "bridge-epoll-no-update", "bridge, epoll, without iops_mosquitto_update()", "epoll", FALSE, FALSE, TRUE, FALSE },
  { "burst qos0", "loop-thread", "mosquitto_loop_start() thread", NULL, FALSE, FALSE, TRUE, FALSE },
};

static void
run_cell (const Cell *cell,
          guint16     port,
          int         rep)
{
  double rate = cell->backend == NULL ? run_thread (cell, port) : run_bridge (cell, port);
  g_autofree char *workload = cell->idle
                              ? g_strdup_printf ("%s=%d", cell->workload, opt_idle)
                              : g_strdup (cell->workload);

  printf ("{\"workload\": \"%s\", \"system\": \"%s\", \"label\": \"%s\", \"rep\": %d, "
          "\"rate\": %.1f, \"unit\": \"%s\", \"count\": %d",
          workload, cell->system, cell->label, rep, rate,
          cell->burst ? "messages/s" : "round trips/s", cell->burst ? opt_burst : opt_count);
  if (cell->burst)
    printf (", \"written_at_once\": %d", last_written_at_once);
  printf ("}\n");
  fflush (stdout);
}

static void
print_targets (void)
{
  printf ("{\"target\": \"bridge (epoll) >= 0.95x mosquitto_loop_start() thread\", "
          "\"workload\": \"rtt qos1\", \"system\": \"bridge-epoll\", \"vs\": \"loop-thread\", "
          "\"min\": 0.95}\n");
  printf ("{\"target\": \"bridge (epoll) with %d idle fds >= 0.9x with none\", "
          "\"workload\": \"rtt qos1 idle=%d\", \"system\": \"bridge-epoll\", "
          "\"vs\": \"bridge-epoll\", \"vs_workload\": \"rtt qos1\", \"min\": 0.9}\n",
          opt_idle, opt_idle);
}

int
main (int    argc,
      char **argv)
{
  GOptionEntry entries[] = {
    { "reps", 0, 0, G_OPTION_ARG_INT, &opt_reps, "Repetitions (default 7)", "N" },
    { "smoke", 0, 0, G_OPTION_ARG_NONE, &opt_smoke, "Tiny counts, one repetition: a check", NULL },
    { "count", 0, 0, G_OPTION_ARG_INT, &opt_count, "Round trips per run (default 20000)", "N" },
    { "idle", 0, 0, G_OPTION_ARG_INT, &opt_idle, "Idle watched fds (default 10000)", "N" },
    { "burst", 0, 0, G_OPTION_ARG_INT, &opt_burst, "16 KiB messages per burst (default 2000)", "N" },
    { "workload", 0, 0, G_OPTION_ARG_STRING, &opt_workload, "Only the workloads named so (e.g. \"rtt qos1 idle\")", "NAME" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- QoS 1 round trips through mosquitto");
  g_autoptr(GError) error = NULL;
  g_autoptr(TestBroker) broker = NULL;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    fail ("%s", error->message);
  if (opt_smoke)
    {
      opt_reps = 1;
      opt_count = 200;
      opt_idle = 200;
      opt_burst = 20;
    }
  if (opt_reps < 1 || opt_count < 1 || opt_burst < 1 || opt_idle < 0)
    fail ("--reps, --count and --burst must be at least 1, --idle at least 0");
  need_fds (opt_idle + opt_idle % 2 + 64);

  mosquitto_lib_init ();
  broker = test_broker_start (FALSE, &error);
  if (broker == NULL)
    fail ("%s", error->message);

  print_targets ();
  for (int rep = 0; rep < opt_reps; rep++)
    for (guint i = 0; i < G_N_ELEMENTS (cells); i++)
      {
        const Cell *cell = &cells[rep % 2 ? G_N_ELEMENTS (cells) - 1 - i : i];

        if (opt_workload == NULL || g_str_equal (opt_workload, cell->workload))
          run_cell (cell, broker->port, rep);
      }

  mosquitto_lib_cleanup ();
  g_free (opt_workload);
  return 0;
}
