/* bench-hiredis.c — pipelined SET+GET: the bridge against hiredis's own adapters
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   iops-bench-hiredis [--reps N] [--smoke]
 *
 * Starts a redis-server on 127.0.0.1 and an unused port, then, for each
 * repetition, runs every system on every workload (the order of the
 * systems alternates every other repetition) and prints one JSON line per
 * run, then the target lines (see bench/bridges.py for the format).
 *
 * Workload "setget c=N": N connections, each keeping a window of
 * WINDOW commands in flight, alternately SET key value and GET key, until
 * each connection has had its share of the total; every reply is checked
 * (SET: +OK, GET: the value just set). The rate is replies per second from
 * the first command to the last reply; connecting is not timed. The
 * redis-server is often the bottleneck, so each run also reports its
 * replies per second of the client's own CPU time (user + system, from
 * getrusage), as the workload "... client CPU".
 * "idle=10000" adds that many eventfds, never ready, watched for reading
 * on the same loop.
 *
 * Systems: the bridge on an IopsGLibIOPS (epoll backend with one-shot
 * and with persistent watches, gsource backend), hiredis's
 * adapters/glib.h on a GMainContext and adapters/libev.h on an ev_loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iops-hiredis.h>
#include <hiredis/adapters/glib.h>
#ifdef HAVE_LIBEV
# include <hiredis/adapters/libev.h>
#endif

#include "bridge-test-util.h"

#define WINDOW      64      /* commands in flight per connection */
#define KEYS        1024    /* distinct keys per connection */
#define VALUE_LEN   32
#define IDLE_FDS    10000

/* -- the loops under test ------------------------------------------------- */

typedef struct _Loop Loop;

typedef struct
{
  const char *key;
  const char *label;
  gboolean    idle_cells;   /* also run with idle fds */
  void      (*init)     (Loop *loop);
  int       (*attach)   (Loop *loop, redisAsyncContext *ac);
  void      (*run)      (Loop *loop);
  void      (*stop)     (Loop *loop);
  void      (*add_idle) (Loop *loop, int fd);
  void      (*fini)     (Loop *loop);
  /* for the bridge */
  const char *backend;
  gboolean    persistent;
} System;

struct _Loop
{
  const System  *system;
  GMainContext  *context;
  IopsGLibIOPS  *glib_iops;
  GPtrArray     *idle_events;   /* bridge: IopsIOEvent */
  GMainLoop     *main_loop;     /* glib adapter */
  GPtrArray     *sources;       /* glib adapter: RedisSource */
  GArray        *idle_fds;
#ifdef HAVE_LIBEV
  struct ev_loop *ev;
  GPtrArray      *idle_watchers; /* ev_io */
#endif
};

/* The bridge on an IopsGLibIOPS. */

static void
bridge_init (Loop *loop)
{
  loop->context = g_main_context_new ();
  loop->glib_iops = g_object_new (IOPS_TYPE_GLIB_IOPS,
                                  "context", loop->context,
                                  "backend", loop->system->backend,
                                  "persistent", loop->system->persistent,
                                  NULL);
  loop->idle_events = g_ptr_array_new ();
}

static int
bridge_attach (Loop              *loop,
               redisAsyncContext *ac)
{
  return iops_hiredis_attach (ac, IOPS_IOPS (loop->glib_iops));
}

static void
bridge_run (Loop *loop)
{
  iops_iops_start_watching (IOPS_IOPS (loop->glib_iops));
}

static void
bridge_stop (Loop *loop)
{
  iops_iops_stop_watching (IOPS_IOPS (loop->glib_iops));
}

static void
bridge_add_idle (Loop *loop,
                 int   fd)
{
  IopsIOEvent *event = iops_iops_io_event_factory (IOPS_IOPS (loop->glib_iops));

  iops_io_event_set_fd (event, fd);
  iops_iops_update_event (IOPS_IOPS (loop->glib_iops), event, IOPS_EVACTION_WATCH,
                          IOPS_READ_EVENT);
  g_ptr_array_add (loop->idle_events, event);
}

static void
bridge_fini (Loop *loop)
{
  for (guint i = 0; i < loop->idle_events->len; i++)
    {
      IopsIOEvent *event = loop->idle_events->pdata[i];

      iops_iops_update_event (IOPS_IOPS (loop->glib_iops), event, IOPS_EVACTION_CLEANUP, 0);
      g_object_unref (event);
    }
  g_ptr_array_unref (loop->idle_events);
  g_clear_object (&loop->glib_iops);
  g_main_context_unref (loop->context);
}

/* hiredis's adapters/glib.h: one GSource per connection. */

static void
glib_init (Loop *loop)
{
  loop->context = g_main_context_new ();
  loop->main_loop = g_main_loop_new (loop->context, FALSE);
  loop->sources = g_ptr_array_new ();
}

static int
glib_attach (Loop              *loop,
             redisAsyncContext *ac)
{
  GSource *source = redis_source_new (ac);

  g_source_attach (source, loop->context);
  g_ptr_array_add (loop->sources, source);
  return REDIS_OK;
}

static void
glib_run (Loop *loop)
{
  g_main_loop_run (loop->main_loop);
}

static void
glib_stop (Loop *loop)
{
  g_main_loop_quit (loop->main_loop);
}

static void
glib_fini (Loop *loop)
{
  /* The adapter's cleanup hook removes its poll but leaves the source. */
  for (guint i = 0; i < loop->sources->len; i++)
    {
      g_source_destroy (loop->sources->pdata[i]);
      g_source_unref (loop->sources->pdata[i]);
    }
  g_ptr_array_unref (loop->sources);
  g_main_loop_unref (loop->main_loop);
  g_main_context_unref (loop->context);
}

#ifdef HAVE_LIBEV
/* hiredis's adapters/libev.h. */

static void
libev_init (Loop *loop)
{
  loop->ev = ev_loop_new (EVFLAG_AUTO);
  loop->idle_watchers = g_ptr_array_new_with_free_func (g_free);
}

static int
libev_attach (Loop              *loop,
              redisAsyncContext *ac)
{
  return redisLibevAttach (loop->ev, ac);
}

static void
libev_run (Loop *loop)
{
  ev_run (loop->ev, 0);
}

static void
libev_stop (Loop *loop)
{
  ev_break (loop->ev, EVBREAK_ALL);
}

static void
libev_idle_ready (struct ev_loop *ev,
                  ev_io          *watcher,
                  int             revents)
{
  g_error ("an idle fd became ready");
}

static void
libev_add_idle (Loop *loop,
                int   fd)
{
  ev_io *watcher = g_new0 (ev_io, 1);

  ev_io_init (watcher, libev_idle_ready, fd, EV_READ);
  ev_io_start (loop->ev, watcher);
  g_ptr_array_add (loop->idle_watchers, watcher);
}

static void
libev_fini (Loop *loop)
{
  for (guint i = 0; i < loop->idle_watchers->len; i++)
    ev_io_stop (loop->ev, loop->idle_watchers->pdata[i]);
  g_ptr_array_unref (loop->idle_watchers);
  ev_loop_destroy (loop->ev);
}
#endif

static const System systems[] = {
  { "bridge-epoll", "bridge, IopsGLibIOPS epoll (one-shot)", TRUE,
    bridge_init, bridge_attach, bridge_run, bridge_stop, bridge_add_idle, bridge_fini,
    "epoll", FALSE },
  { "bridge-epoll-persistent", "bridge, IopsGLibIOPS epoll (persistent)", FALSE,
    bridge_init, bridge_attach, bridge_run, bridge_stop, bridge_add_idle, bridge_fini,
    "epoll", TRUE },
  { "bridge-gsource", "bridge, IopsGLibIOPS gsource (one-shot)", FALSE,
    bridge_init, bridge_attach, bridge_run, bridge_stop, bridge_add_idle, bridge_fini,
    "gsource", FALSE },
  { "glib-adapter", "hiredis adapters/glib.h", FALSE,
    glib_init, glib_attach, glib_run, glib_stop, NULL, glib_fini, NULL, FALSE },
#ifdef HAVE_LIBEV
  { "libev-adapter", "hiredis adapters/libev.h", TRUE,
    libev_init, libev_attach, libev_run, libev_stop, libev_add_idle, libev_fini, NULL, FALSE },
#endif
};

/* -- the workload ----------------------------------------------------------- */

typedef struct _Run Run;

typedef struct
{
  Run               *run;
  redisAsyncContext *ac;
  guint              id;
  guint              sent;
  guint              received;
  guint              total;
} Conn;

typedef struct
{
  double rate;       /* replies per second of wall time */
  double cpu_rate;   /* replies per second of this process's CPU time */
} Result;

struct _Run
{
  Loop     loop;
  Conn    *conns;
  guint    n_conns;
  guint    connected;
  guint    finished;
  guint    wrong;
  gint64   started, ended;
};

static void
format_value (char  *buf,
              guint  conn,
              guint  pair)
{
  g_snprintf (buf, VALUE_LEN + 1, "%010u:%05u:abcdefghijklmnop", pair, conn);
}

static void on_reply (redisAsyncContext *ac, void *reply, void *privdata);

static void
conn_send_next (Conn *conn)
{
  guint i = conn->sent++;
  guint pair = i / 2;
  char key[32];

  g_snprintf (key, sizeof key, "b:%u:%u", conn->id, pair % KEYS);
  if (i % 2 == 0)
    {
      char value[VALUE_LEN + 1];

      format_value (value, conn->id, pair);
      redisAsyncCommand (conn->ac, on_reply, GUINT_TO_POINTER (i), "SET %s %s", key, value);
    }
  else
    redisAsyncCommand (conn->ac, on_reply, GUINT_TO_POINTER (i), "GET %s", key);
}

static gboolean
reply_is_right (Conn       *conn,
                redisReply *r,
                guint       i)
{
  char value[VALUE_LEN + 1];

  if (r == NULL)
    return FALSE;
  if (i % 2 == 0)
    return r->type == REDIS_REPLY_STATUS && strcmp (r->str, "OK") == 0;
  format_value (value, conn->id, i / 2);
  return r->type == REDIS_REPLY_STRING && r->len == VALUE_LEN && memcmp (r->str, value, VALUE_LEN) == 0;
}

static void
on_reply (redisAsyncContext *ac,
          void              *reply,
          void              *privdata)
{
  Conn *conn = ac->data;
  Run *run = conn->run;

  if (!reply_is_right (conn, reply, GPOINTER_TO_UINT (privdata)))
    run->wrong++;
  conn->received++;
  if (conn->sent < conn->total)
    conn_send_next (conn);
  else if (conn->received == conn->total && ++run->finished == run->n_conns)
    {
      run->ended = g_get_monotonic_time ();
      run->loop.system->stop (&run->loop);
    }
}

static void
on_connect (const redisAsyncContext *ac,
            int                      status)
{
  Conn *conn = ac->data;

  if (status != REDIS_OK)
    g_error ("connect: %s", ac->errstr);
  if (++conn->run->connected == conn->run->n_conns)
    conn->run->loop.system->stop (&conn->run->loop);
}

static void
on_disconnect (const redisAsyncContext *ac,
               int                      status)
{
  if (status != REDIS_OK)
    g_error ("disconnect: %s", ac->errstr);
}

static void
run_connect (Run     *run,
             guint16  port)
{
  for (guint id = 0; id < run->n_conns; id++)
    {
      Conn *conn = &run->conns[id];
      redisAsyncContext *ac = redisAsyncConnect ("127.0.0.1", port);

      if (ac == NULL || ac->err != 0)
        g_error ("redisAsyncConnect: %s", ac != NULL ? ac->errstr : "out of memory");
      conn->ac = ac;
      ac->data = conn;
      if (run->loop.system->attach (&run->loop, ac) != REDIS_OK)
        g_error ("attach failed");
      redisAsyncSetConnectCallback (ac, on_connect);
      redisAsyncSetDisconnectCallback (ac, on_disconnect);
    }
  run->loop.system->run (&run->loop);
  g_assert_cmpuint (run->connected, ==, run->n_conns);
}

static void
add_idle_fds (Loop  *loop,
              guint  n)
{
  loop->idle_fds = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint i = 0; i < n; i++)
    {
      int fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);

      if (fd < 0)
        g_error ("eventfd: %s (raise the open file limit)", g_strerror (errno));
      loop->system->add_idle (loop, fd);
      g_array_append_val (loop->idle_fds, fd);
    }
}

static void
close_idle_fds (Loop *loop)
{
  if (loop->idle_fds == NULL)
    return;
  for (guint i = 0; i < loop->idle_fds->len; i++)
    close (g_array_index (loop->idle_fds, int, i));
  g_array_unref (loop->idle_fds);
}

static gint64
cpu_time_usecs (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * G_USEC_PER_SEC +
         usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

/* One timed run; exits on a wrong reply. */
static Result
run_setget (const System *system,
            guint16       port,
            guint         n_conns,
            guint         total,
            guint         idle)
{
  Run run = { .loop.system = system, .n_conns = n_conns };
  Result result;
  gint64 cpu_started;
  double replies;

  run.conns = g_new0 (Conn, n_conns);
  system->init (&run.loop);
  if (idle > 0)
    add_idle_fds (&run.loop, idle);
  for (guint id = 0; id < n_conns; id++)
    run.conns[id] = (Conn) { .run = &run, .id = id, .total = total / n_conns };
  run_connect (&run, port);

  cpu_started = cpu_time_usecs ();
  run.started = g_get_monotonic_time ();
  for (guint id = 0; id < n_conns; id++)
    for (guint i = 0; i < WINDOW && run.conns[id].sent < run.conns[id].total; i++)
      conn_send_next (&run.conns[id]);
  system->run (&run.loop);
  result.cpu_rate = cpu_time_usecs () - cpu_started;

  if (run.finished != n_conns || run.wrong != 0)
    g_error ("%s: %u of %u connections finished, %u wrong replies",
             system->key, run.finished, n_conns, run.wrong);
  replies = (double) (total / n_conns * n_conns);
  result.rate = replies * G_USEC_PER_SEC / (double) (run.ended - run.started);
  result.cpu_rate = replies * G_USEC_PER_SEC / MAX (result.cpu_rate, 1);

  /* Nothing is pending: each context is freed at once. */
  for (guint id = 0; id < n_conns; id++)
    redisAsyncDisconnect (run.conns[id].ac);
  system->fini (&run.loop);
  close_idle_fds (&run.loop);
  g_free (run.conns);
  return result;
}

/* -- the driver ------------------------------------------------------------ */

typedef struct
{
  const char *name;
  guint       conns;
  guint       idle;
} Workload;

static const Workload workloads[] = {
  { "setget c=1", 1, 0 },
  { "setget c=50", 50, 0 },
  { "setget c=1 idle=10000", 1, IDLE_FDS },
  { "setget c=50 idle=10000", 50, IDLE_FDS },
};

static void
print_target (const char *target,
              const char *workload,
              const char *system,
              const char *vs,
              const char *vs_workload,
              double      min)
{
  printf ("{\"target\": \"%s\", \"workload\": \"%s\", \"system\": \"%s\", \"vs\": \"%s\", "
          "\"vs_workload\": \"%s\", \"min\": %.2f}\n",
          target, workload, system, vs, vs_workload, min);
}

static void
print_targets (void)
{
  const char *cells[] = { "c=1", "c=50" };

  for (guint i = 0; i < G_N_ELEMENTS (cells); i++)
    {
      g_autofree char *plain = g_strdup_printf ("setget %s", cells[i]);
      g_autofree char *idle = g_strdup_printf ("setget %s idle=10000", cells[i]);
      g_autofree char *t1 = g_strdup_printf ("%s: bridge ≥ 0.95× hiredis's libev adapter", plain);
      g_autofree char *t2 = g_strdup_printf ("%s: bridge ≥ 1.0× hiredis's GLib adapter", plain);
      g_autofree char *t3 = g_strdup_printf ("%s: bridge with 10,000 idle fds ≥ 0.9× with none",
                                             plain);

#ifdef HAVE_LIBEV
      print_target (t1, plain, "bridge-epoll", "libev-adapter", plain, 0.95);
#endif
      print_target (t2, plain, "bridge-epoll", "glib-adapter", plain, 1.0);
      print_target (t3, idle, "bridge-epoll", "bridge-epoll", plain, 0.9);
    }
}

static void
raise_fd_limit (void)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max)
    {
      limit.rlim_cur = limit.rlim_max;
      setrlimit (RLIMIT_NOFILE, &limit);
    }
}

static BridgeServer *
start_redis (guint16 *port)
{
  g_autofree char *port_arg = NULL;
  g_autoptr(GError) error = NULL;
  BridgeServer *server;

  *port = bridge_unused_port (SOCK_STREAM);
  port_arg = g_strdup_printf ("%u", *port);
  server = bridge_server_start ((const char *const[]) {
      "redis-server", "--port", port_arg, "--bind", "127.0.0.1",
      "--save", "", "--appendonly", "no", NULL },
    "Ready to accept connections", &error);
  if (server == NULL)
    g_error ("redis-server: %s", error->message);
  return server;
}

static void
run_cell (const Workload *w,
          const System   *s,
          guint16         port,
          guint           total,
          guint           rep)
{
  Result result = run_setget (s, port, w->conns, total, w->idle);

  printf ("{\"workload\": \"%s\", \"system\": \"%s\", \"label\": \"%s\", \"rep\": %u, "
          "\"rate\": %.1f, \"unit\": \"replies/s\"}\n",
          w->name, s->key, s->label, rep, result.rate);
  printf ("{\"workload\": \"%s client CPU\", \"system\": \"%s\", \"label\": \"%s\", "
          "\"rep\": %u, \"rate\": %.1f, \"unit\": \"replies/CPU-s\"}\n",
          w->name, s->key, s->label, rep, result.cpu_rate);
  fflush (stdout);
}

int
main (int   argc,
      char *argv[])
{
  int reps = 7;
  gboolean smoke = FALSE;
  g_autofree char *only_system = NULL;
  g_auto(GStrv) only_systems = NULL;
  g_autofree char *only_workload = NULL;
  int count = 0;
  GOptionEntry entries[] = {
    { "count", 0, 0, G_OPTION_ARG_INT, &count,
      "Commands per run (default: 200000; 2000 with --smoke)", "N" },
    { "reps", 0, 0, G_OPTION_ARG_INT, &reps, "Repetitions (default: 7)", "N" },
    { "system", 0, 0, G_OPTION_ARG_STRING, &only_system,
      "Run only these systems, comma-separated (for strace or callgrind)", "KEY,…" },
    { "workload", 0, 0, G_OPTION_ARG_STRING, &only_workload,
      "Run only this workload, e.g. 'setget c=1'", "NAME" },
    { "smoke", 0, 0, G_OPTION_ARG_NONE, &smoke, "Tiny counts, one repetition: checks only", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("— the hiredis bridge's benchmark");
  g_autoptr(GError) error = NULL;
  g_autoptr(BridgeServer) server = NULL;
  guint total;
  guint16 port;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error) || reps < 1 || count < 0)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "--reps and --count must be positive");
      return 2;
    }
  if (smoke)
    reps = 1;
  total = count > 0 ? (guint) count : smoke ? 2000 : 200000;

  if (only_system != NULL)
    only_systems = g_strsplit (only_system, ",", -1);
  raise_fd_limit ();
  server = start_redis (&port);

  for (int rep = 0; rep < reps; rep++)
    for (guint w = 0; w < G_N_ELEMENTS (workloads); w++)
      for (guint k = 0; k < G_N_ELEMENTS (systems); k++)
        {
          /* The order alternates, so that no system always runs first. */
          const System *s = &systems[rep % 2 == 0 ? k : G_N_ELEMENTS (systems) - 1 - k];

          if (only_systems != NULL && !g_strv_contains ((const char *const *) only_systems, s->key))
            continue;
          if (only_workload != NULL && strcmp (only_workload, workloads[w].name) != 0)
            continue;
          if (workloads[w].idle == 0 || s->idle_cells)
            run_cell (&workloads[w], s, port, total, rep);
        }
  if (only_systems == NULL && only_workload == NULL)
    print_targets ();
  return 0;
}
