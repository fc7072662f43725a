/* bench-cares.c — the c-ares bridge against an ares_fds ()/select () loop
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   iops-bench-cares [--reps N] [--smoke] [--only SYSTEM]
 *
 * Starts two dnsmasq on 127.0.0.1 with a generated hosts file, asked in
 * turn (ARES_OPT_ROTATE: one dnsmasq's socket buffer, the kernel's default
 * size, holds some 188 queries, and 200 in flight would lose a dozen per
 * run, each costing a c-ares timeout). For each repetition it runs every
 * system of every workload in turn (the order reversed every other
 * repetition), printing the JSON lines that bench/bridges.py reads:
 *
 * - "lookups": 10,000 A lookups (ares_getaddrinfo (), no sorting), 200 in
 *   flight, each callback starting the next; every answer is checked.
 *   Systems: the bridge on IopsGLibIOPS (epoll one-shot, epoll persistent,
 *   gsource) and the loop of c-ares's own examples: ares_fds (),
 *   ares_timeout (), select (), ares_process ().
 * - "lookups idle=10000": the same with 10,000 more fds watched (never
 *   ready) on the bridge's IOPS. The select loop cannot take part: with
 *   those fds open, c-ares's socket number is above FD_SETSIZE.
 * - "mute server": one query to a server that never answers (3 tries);
 *   the figure is the loop's wakeups per c-ares deadline, for the bridge
 *   and for the naive glue that arms the IOPS timer with ares_timeout ()'s
 *   milliseconds as they are.
 *
 * Each lookups line comes with two more workloads: the same run's
 * lookups per CPU-second of this process ("… cpu", which dnsmasq's speed
 * does not bound) and how busy the dnsmasqs were ("… dnsmasq busy", % of
 * one CPU). --only runs one system's lookups, to profile it.
 *
 * A wrong or missing answer makes the run fail (exit status 1).
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <iops-cares.h>

#include "bridge-test-util.h"

#define N_NAMES 1000

/* dnsmasq's socket buffer (the kernel's default size) holds fewer than
 * 200 queries: when dnsmasq falls behind it drops a few, which c-ares
 * sends again after this. Short, so that a drop costs little time; the
 * number of timeouts is in every line. */
#define LOOKUP_TIMEOUT_MS 100

static int opt_reps = 7;
static gboolean opt_smoke;
static char *opt_only;

static guint n_lookups = 10000;
static guint n_inflight = 200;
static guint n_idle = 10000;
static int mute_timeout_ms = 20;

static const char *w_lookups;
static const char *w_idle;
static const char *w_mute = "mute server";

/* -- the names --------------------------------------------------------------- */

static in_addr_t
address_of (guint i)
{
  return htonl ((127u << 24) | (1u << 16) | ((i / 250) << 8) | (i % 250 + 1));
}

static char *
name_of (guint i)
{
  return g_strdup_printf ("n%04u.bench.test", i);
}

static void
write_hosts (const char *path)
{
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < N_NAMES; i++)
    {
      struct in_addr addr = { address_of (i) };
      g_autofree char *name = name_of (i);

      g_string_append_printf (text, "%s %s\n", inet_ntoa (addr), name);
    }
  if (!g_file_set_contents (path, text->str, text->len, &error))
    g_error ("%s", error->message);
}

/* -- the workload shared by every system ------------------------------------- */

typedef struct _Lookups Lookups;

typedef struct
{
  Lookups *run;
  guint    name;
} Lookup;

struct _Lookups
{
  ares_channel channel;
  guint        started;
  guint        done;
  guint        failed;
  guint        timeouts;
  char        *names[N_NAMES];
  Lookup      *lookups;      /* n_lookups, made before the clock starts */
};

static void start_lookup (Lookups *run);

static void
on_addrinfo (void                 *arg,
             int                   status,
             int                   timeouts,
             struct ares_addrinfo *result)
{
  Lookup *lookup = arg;
  Lookups *run = lookup->run;
  const struct ares_addrinfo_node *node = result ? result->nodes : NULL;
  struct sockaddr_in sa = { 0 };

  run->done++;
  run->timeouts += timeouts;
  if (node != NULL)
    memcpy (&sa, node->ai_addr, MIN ((size_t) node->ai_addrlen, sizeof sa));
  /* Exactly the one address of that name. */
  if (status != ARES_SUCCESS || node == NULL || node->ai_next != NULL ||
      node->ai_family != AF_INET || sa.sin_addr.s_addr != address_of (lookup->name))
    run->failed++;
  ares_freeaddrinfo (result);
  /* Two for one until n_inflight are out: a burst of 200 datagrams at
   * once overflows dnsmasq's socket buffer, and c-ares would wait for its
   * timeout to send the lost ones again. */
  for (guint k = 0; k < 2 && status != ARES_EDESTRUCTION && run->started < n_lookups &&
                    run->started - run->done < n_inflight; k++)
    start_lookup (run);
}

static void
start_lookup (Lookups *run)
{
  struct ares_addrinfo_hints hints = { .ai_family = AF_INET, .ai_flags = ARES_AI_NOSORT };
  Lookup *lookup = &run->lookups[run->started++];

  ares_getaddrinfo (run->channel, run->names[lookup->name], NULL, &hints, on_addrinfo, lookup);
}

static void
lookups_init (Lookups *run)
{
  memset (run, 0, sizeof *run);
  for (guint i = 0; i < N_NAMES; i++)
    run->names[i] = name_of (i);
  run->lookups = g_new (Lookup, n_lookups);
  for (guint k = 0; k < n_lookups; k++)
    run->lookups[k] = (Lookup) { run, k % N_NAMES };
}

static void
lookups_clear (Lookups *run)
{
  for (guint i = 0; i < N_NAMES; i++)
    g_free (run->names[i]);
  g_free (run->lookups);
}

static void
lookups_start (Lookups *run)
{
  while (run->started < MIN (n_inflight, 20u) && run->started < n_lookups)
    start_lookup (run);
}

static gboolean
lookups_check (const Lookups *run,
               const char    *system)
{
  if (run->done == n_lookups && run->failed == 0)
    return TRUE;
  g_printerr ("iops-bench-cares: %s: %u of %u lookups done, %u wrong or failed\n",
              system, run->done, n_lookups, run->failed);
  return FALSE;
}

static void
fill_options (struct ares_options *options,
              int                 *optmask,
              int                  timeout_ms,
              int                  tries)
{
  memset (options, 0, sizeof *options);
  options->flags = ARES_FLAG_NOSEARCH;
  options->timeout = timeout_ms;
  options->tries = tries;
  options->lookups = (char *) "b";
  options->socket_receive_buffer_size = 1 << 20;
  *optmask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
             ARES_OPT_SOCK_RCVBUF | ARES_OPT_ROTATE;
}

static void
set_server (ares_channel  channel,
            const char   *servers)
{
  if (ares_set_servers_ports_csv (channel, servers) != ARES_SUCCESS)
    g_error ("ares_set_servers_ports_csv (%s) failed", servers);
}

/* -- the systems -------------------------------------------------------------- */

typedef struct
{
  const char *name;
  const char *label;
  const char *backend;    /* NULL: the select loop */
  gboolean    persistent;
} System;

static const System systems[] = {
  { "bridge-epoll", "bridge, IopsGLibIOPS epoll", "epoll", FALSE },
  { "bridge-epoll-persistent", "bridge, IopsGLibIOPS epoll persistent", "epoll", TRUE },
  { "bridge-gsource", "bridge, IopsGLibIOPS gsource", "gsource", FALSE },
  { "select", "ares_fds + select + ares_process", NULL, FALSE },
};

static IopsGLibIOPS *
new_iops (GMainContext *context,
          const System *system)
{
  IopsGLibIOPS *iops = g_object_new (IOPS_TYPE_GLIB_IOPS, "context", context,
                                     "backend", system->backend,
                                     "persistent", system->persistent, NULL);

  if (g_strcmp0 (iops_glib_iops_get_backend (iops), system->backend) != 0)
    g_error ("asked for backend %s, got %s", system->backend, iops_glib_iops_get_backend (iops));
  return iops;
}

/* 10,000 fds watched for reading on @iops that never become readable:
 * both ends of socketpairs nobody writes to. */
typedef struct
{
  int          *fds;
  IopsIOEvent **events;
  guint         n;
} Idle;

static void
idle_start (Idle     *idle,
            IopsIOPS *iops,
            guint     n)
{
  idle->n = n;
  idle->fds = g_new (int, n);
  idle->events = g_new (IopsIOEvent *, n);
  for (guint i = 0; i < n; i += 2)
    {
      if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, idle->fds + i) != 0)
        g_error ("socketpair: %s", g_strerror (errno));
      for (guint k = i; k < i + 2; k++)
        {
          idle->events[k] = iops_io_event_new (idle->fds[k]);
          iops_iops_update_event (iops, idle->events[k], IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
        }
    }
}

static void
idle_stop (Idle     *idle,
           IopsIOPS *iops)
{
  for (guint i = 0; i < idle->n; i++)
    {
      iops_iops_update_event (iops, idle->events[i], IOPS_EVACTION_CLEANUP, 0);
      g_object_unref (idle->events[i]);
      close (idle->fds[i]);
    }
  g_free (idle->events);
  g_free (idle->fds);
}

/* User and system time of this process, µs: the client's side of the
 * work, which dnsmasq's speed does not bound. */
static gint64
cpu_time (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return (gint64) (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * G_USEC_PER_SEC +
         usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

static void
report (const char   *workload,
        const System *system,
        int           rep,
        double        rate,
        const char   *unit,
        guint         timeouts)
{
  printf ("{\"workload\": \"%s\", \"system\": \"%s\", \"label\": \"%s\", \"rep\": %d, "
          "\"rate\": %.1f, \"unit\": \"%s\", \"timeouts\": %u}\n",
          workload, system->name, system->label, rep, rate, unit, timeouts);
  fflush (stdout);
}

/* -- how busy dnsmasq is ------------------------------------------------------- */

#define N_SERVERS 2

static int server_pids[N_SERVERS] = { -1, -1 };

/* The dnsmasqs are our only children: the processes in the children
 * lists of our threads. */
static void
find_server_pids (void)
{
  g_autoptr(GDir) tasks = g_dir_open ("/proc/self/task", 0, NULL);
  const char *tid;
  guint n = 0;

  while (tasks != NULL && (tid = g_dir_read_name (tasks)) != NULL)
    {
      g_autofree char *path = g_strdup_printf ("/proc/self/task/%s/children", tid);
      g_autofree char *text = NULL;
      g_auto(GStrv) pids = NULL;

      if (!g_file_get_contents (path, &text, NULL, NULL))
        continue;
      pids = g_strsplit (g_strstrip (text), " ", 0);
      for (guint i = 0; pids[i] != NULL && n < N_SERVERS; i++)
        if (atoi (pids[i]) > 0)
          server_pids[n++] = atoi (pids[i]);
    }
}

/* A process's user and system time, µs (clock-tick resolution), or -1. */
static gint64
process_cpu_time (int pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *after_name;

  if (pid < 0 || !g_file_get_contents (path, &text, NULL, NULL) ||
      (after_name = strrchr (text, ')')) == NULL)
    return -1;
  /* After "pid (comm)": state is field 3; utime and stime are 14 and 15. */
  fields = g_strsplit (after_name + 2, " ", 0);
  if (g_strv_length (fields) < 13)
    return -1;
  return (g_ascii_strtoll (fields[11], NULL, 10) + g_ascii_strtoll (fields[12], NULL, 10)) *
         G_USEC_PER_SEC / sysconf (_SC_CLK_TCK);
}

/* Both dnsmasqs together, µs, or -1. */
static gint64
server_cpu_time (void)
{
  gint64 total = 0;

  for (guint i = 0; i < N_SERVERS; i++)
    {
      gint64 one = process_cpu_time (server_pids[i]);

      if (one < 0)
        return -1;
      total += one;
    }
  return total;
}

/* A lookups run: its wall-clock rate, and its rate per CPU second of this
 * process as a workload of its own ("… cpu"). */
static void
report_lookups (const char   *workload,
                const System *system,
                int           rep,
                gint64        wall_us,
                gint64        cpu_us,
                gint64        server_us,
                guint         timeouts)
{
  g_autofree char *cpu_workload = g_strconcat (workload, " cpu", NULL);
  g_autofree char *busy_workload = g_strconcat (workload, " dnsmasq busy", NULL);

  if (server_us >= 0)
    report (busy_workload, system, rep, 100.0 * server_us / wall_us,
            "% of a CPU", timeouts);
  report (workload, system, rep, n_lookups / (wall_us / (double) G_USEC_PER_SEC),
          "lookups/s", timeouts);
  report (cpu_workload, system, rep, n_lookups / (MAX (cpu_us, 1) / (double) G_USEC_PER_SEC),
          "lookups per CPU-second", timeouts);
}

/* The bridge: one call to attach, start_watching () until nothing is
 * armed (every lookup answered), one call to detach. */
static gboolean
run_bridge (const System *system,
            const char   *servers,
            guint         idle_fds,
            int           rep)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(IopsGLibIOPS) glib_iops = new_iops (context, system);
  IopsIOPS *iops = IOPS_IOPS (glib_iops);
  g_autoptr(GError) error = NULL;
  struct ares_options options;
  IopsCares *cares;
  Lookups run;
  Idle idle = { 0 };
  gint64 started, elapsed, cpu, server;
  int optmask;
  gboolean ok;

  fill_options (&options, &optmask, LOOKUP_TIMEOUT_MS, 5);
  cares = iops_cares_attach (iops, &options, optmask, &error);
  if (cares == NULL)
    g_error ("%s", error->message);
  set_server (iops_cares_get_channel (cares), servers);
  if (idle_fds > 0)
    idle_start (&idle, iops, idle_fds);
  lookups_init (&run);
  run.channel = iops_cares_get_channel (cares);

  started = g_get_monotonic_time ();
  cpu = cpu_time ();
  server = server_cpu_time ();
  lookups_start (&run);
  if (idle_fds > 0)
    {
      /* The idle watches keep start_watching () from returning by itself. */
      while (run.done < n_lookups)
        g_main_context_iteration (context, TRUE);
    }
  else
    iops_iops_start_watching (iops);
  elapsed = g_get_monotonic_time () - started;
  cpu = cpu_time () - cpu;
  server = server >= 0 ? server_cpu_time () - server : -1;

  ok = lookups_check (&run, system->name);
  if (ok)
    report_lookups (idle_fds > 0 ? w_idle : w_lookups, system, rep, elapsed, cpu, server,
                    run.timeouts);
  iops_cares_detach (cares);
  if (idle_fds > 0)
    idle_stop (&idle, iops);
  lookups_clear (&run);
  while (g_main_context_iteration (context, FALSE))
    ;
  return ok;
}

/* The loop of c-ares's own examples (ahost, adig). */
static gboolean
run_select (const System *system,
            const char   *servers,
            int           rep)
{
  struct ares_options options;
  ares_channel channel;
  Lookups run;
  gint64 started, elapsed, cpu, server;
  int optmask;
  gboolean ok;

  fill_options (&options, &optmask, LOOKUP_TIMEOUT_MS, 5);
  if (ares_init_options (&channel, &options, optmask) != ARES_SUCCESS)
    g_error ("ares_init_options failed");
  set_server (channel, servers);
  lookups_init (&run);
  run.channel = channel;

  started = g_get_monotonic_time ();
  cpu = cpu_time ();
  server = server_cpu_time ();
  lookups_start (&run);
  for (;;)
    {
      fd_set readers, writers;
      struct timeval buf, *timeout;
      int nfds;

      FD_ZERO (&readers);
      FD_ZERO (&writers);
      nfds = ares_fds (channel, &readers, &writers);
      if (nfds == 0)
        break;
      timeout = ares_timeout (channel, NULL, &buf);
      select (nfds, &readers, &writers, NULL, timeout);
      ares_process (channel, &readers, &writers);
    }
  elapsed = g_get_monotonic_time () - started;
  cpu = cpu_time () - cpu;
  server = server >= 0 ? server_cpu_time () - server : -1;

  ok = lookups_check (&run, system->name);
  if (ok)
    report_lookups (w_lookups, system, rep, elapsed, cpu, server, run.timeouts);
  ares_destroy (channel);
  lookups_clear (&run);
  return ok;
}

/* -- the mute server: wakeups per deadline --------------------------------------- */

/* The glue most adapters write first: watch what the socket-state
 * callback says, and after every ares_process_fd () arm the timer with
 * ares_timeout ()'s value as it is. */
typedef struct
{
  IopsIOPS       *iops;
  ares_channel    channel;
  IopsIOEvent    *socket;
  IopsTimerEvent *timer;
} Naive;

static void
naive_arm (Naive *naive)
{
  struct timeval buf, *next = ares_timeout (naive->channel, NULL, &buf);

  if (next == NULL)
    iops_iops_update_timer (naive->iops, naive->timer, IOPS_EVACTION_UNWATCH, 0);
  else
    iops_iops_update_timer (naive->iops, naive->timer, IOPS_EVACTION_WATCH,
                            (gint64) next->tv_sec * G_USEC_PER_SEC + next->tv_usec);
}

static void
naive_on_timer (IopsTimerEvent *timer,
                int             flags,
                gpointer        data)
{
  Naive *naive = data;

  ares_process_fd (naive->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  naive_arm (naive);
}

static void
naive_on_socket (IopsIOEvent    *event,
                 IopsEventFlags  flags,
                 gpointer        data)
{
  Naive *naive = data;
  int fd = iops_io_event_get_fd (event);

  ares_process_fd (naive->channel, (flags & IOPS_READ_EVENT) ? fd : ARES_SOCKET_BAD,
                   (flags & IOPS_WRITE_EVENT) ? fd : ARES_SOCKET_BAD);
  if (naive->socket != NULL)
    iops_iops_update_event (naive->iops, naive->socket, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  naive_arm (naive);
}

static void
naive_sock_state (void          *data,
                  ares_socket_t  fd,
                  int            readable,
                  int            writable)
{
  Naive *naive = data;

  if (readable || writable)
    {
      naive->socket = iops_io_event_new (fd);
      g_signal_connect (naive->socket, "ready", G_CALLBACK (naive_on_socket), naive);
      iops_iops_update_event (naive->iops, naive->socket, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
    }
  else if (naive->socket != NULL)
    {
      iops_iops_update_event (naive->iops, naive->socket, IOPS_EVACTION_CLEANUP, 0);
      g_clear_object (&naive->socket);
    }
}

typedef struct
{
  gboolean done;
  int      timeouts;
} MuteQuery;

static void
on_mute_query (void          *arg,
               int            status,
               int            timeouts,
               unsigned char *abuf,
               int            alen)
{
  MuteQuery *query = arg;

  query->done = TRUE;
  query->timeouts = status == ARES_ETIMEOUT ? timeouts : -1;
}

/* Counts the iterations that dispatched something until @query is done;
 * gives up (the query stays not done) after 10 s. */
static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static guint
iterate_until (GMainContext    *context,
               const MuteQuery *query)
{
  GSource *deadline = g_timeout_source_new_seconds (10);
  gboolean expired = FALSE;
  guint n = 0;

  g_source_set_callback (deadline, set_flag, &expired, NULL);
  g_source_attach (deadline, context);
  while (!query->done && !expired)
    if (g_main_context_iteration (context, TRUE))
      n++;
  g_source_destroy (deadline);
  g_source_unref (deadline);
  return n;
}

static const System mute_systems[] = {
  { "bridge-epoll", "bridge, IopsGLibIOPS epoll", "epoll", FALSE },
  { "naive-epoll", "naive glue (ares_timeout as is), epoll", "epoll", FALSE },
};

static gboolean
run_mute (const System *system,
          const char   *servers,
          int           rep)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(IopsGLibIOPS) glib_iops = new_iops (context, system);
  IopsIOPS *iops = IOPS_IOPS (glib_iops);
  struct ares_options options;
  Naive naive = { iops, NULL, NULL, NULL };
  IopsCares *cares = NULL;
  MuteQuery query = { FALSE, 0 };
  int optmask;
  guint n;

  fill_options (&options, &optmask, mute_timeout_ms, 3);
  if (g_str_has_prefix (system->name, "bridge"))
    {
      cares = iops_cares_attach (iops, &options, optmask, NULL);
      naive.channel = iops_cares_get_channel (cares);
    }
  else
    {
      options.sock_state_cb = naive_sock_state;
      options.sock_state_cb_data = &naive;
      if (ares_init_options (&naive.channel, &options, optmask | ARES_OPT_SOCK_STATE_CB) != ARES_SUCCESS)
        g_error ("ares_init_options failed");
      naive.timer = iops_timer_event_new ();
      g_signal_connect (naive.timer, "ready", G_CALLBACK (naive_on_timer), &naive);
    }
  set_server (naive.channel, servers);

  ares_query (naive.channel, "mute.bench.test", ns_c_in, ns_t_a, on_mute_query, &query);
  if (cares == NULL)
    naive_arm (&naive);
  n = iterate_until (context, &query);

  if (cares != NULL)
    iops_cares_detach (cares);
  else
    {
      ares_destroy (naive.channel);
      iops_iops_update_timer (iops, naive.timer, IOPS_EVACTION_CLEANUP, 0);
      g_clear_object (&naive.timer);
    }
  while (g_main_context_iteration (context, FALSE))
    ;
  if (query.timeouts != 3)
    {
      g_printerr ("iops-bench-cares: %s: the mute query ended without its 3 timeouts\n", system->name);
      return FALSE;
    }
  report (w_mute, system, rep, n / 3.0, "wakeups per deadline", 3);
  return TRUE;
}

/* -- main ---------------------------------------------------------------------- */

static void
print_targets (void)
{
  printf ("{\"target\": \"bridge (epoll) >= 0.95x the ares_fds/select loop, per CPU-second\", "
          "\"workload\": \"%s cpu\", \"system\": \"bridge-epoll\", \"vs\": \"select\", \"min\": 0.95}\n",
          w_lookups);
  printf ("{\"target\": \"bridge (epoll) >= 0.95x the ares_fds/select loop\", "
          "\"workload\": \"%s\", \"system\": \"bridge-epoll\", \"vs\": \"select\", \"min\": 0.95}\n",
          w_lookups);
  printf ("{\"target\": \"bridge (epoll) with %u idle fds >= 0.9x with none\", "
          "\"workload\": \"%s\", \"system\": \"bridge-epoll\", \"vs\": \"bridge-epoll\", "
          "\"vs_workload\": \"%s\", \"min\": 0.9}\n",
          n_idle, w_idle, w_lookups);
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
  if (getrlimit (RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur < n_idle + 100)
    g_error ("need %u open files for the idle fds; the limit is %lu",
             n_idle + 100, (unsigned long) limit.rlim_cur);
}

static BridgeServer *
start_dnsmasq (const char *hosts_path,
               guint16    *port)
{
  g_autofree char *hosts = g_strdup_printf ("--addn-hosts=%s", hosts_path);
  g_autofree char *ready = g_strdup_printf ("read %s", hosts_path);
  g_autoptr(GError) error = NULL;

  for (guint attempt = 0; attempt < 5; attempt++)
    {
      g_autofree char *port_arg = NULL;
      BridgeServer *server;
      const char *argv[] = {
        DNSMASQ_PATH, "--no-daemon", "--conf-file=/dev/null", "--no-hosts", hosts,
        "--no-resolv", "--local=/bench.test/", "--listen-address=127.0.0.1",
        "--bind-interfaces", NULL, "--log-facility=-", NULL
      };

      *port = bridge_unused_port_tcp_udp ();  /* dnsmasq binds both */
      port_arg = g_strdup_printf ("--port=%u", *port);
      argv[9] = port_arg;
      g_clear_error (&error);
      if ((server = bridge_server_start (argv, ready, &error)) != NULL)
        return server;
    }
  g_error ("%s", error->message);
}

static gboolean
run_rep (int         rep,
         const char *servers,
         const char *mute_server)
{
  gboolean ok = TRUE;
  guint n = G_N_ELEMENTS (systems);

  for (guint k = 0; k < n; k++)
    {
      const System *system = &systems[rep % 2 == 0 ? k : n - 1 - k];

      if (opt_only != NULL && strcmp (opt_only, system->name) != 0)
        continue;
      ok &= system->backend != NULL ? run_bridge (system, servers, 0, rep)
                                    : run_select (system, servers, rep);
    }
  if (opt_only != NULL)
    return ok;
  ok &= run_bridge (&systems[0], servers, n_idle, rep);
  for (guint k = 0; k < G_N_ELEMENTS (mute_systems); k++)
    ok &= run_mute (&mute_systems[rep % 2 == 0 ? k : 1 - k], mute_server, rep);
  return ok;
}

int
main (int   argc,
      char *argv[])
{
  GOptionEntry entries[] = {
    { "reps", 0, 0, G_OPTION_ARG_INT, &opt_reps, "repetitions (default 7)", "N" },
    { "smoke", 0, 0, G_OPTION_ARG_NONE, &opt_smoke, "tiny counts, one repetition: checks only", NULL },
    { "only", 0, 0, G_OPTION_ARG_STRING, &opt_only, "run only this system's lookups (to profile it)", "SYSTEM" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("— the c-ares bridge against a select loop");
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL, *hosts = NULL;
  g_autofree char *lookups_name = NULL, *idle_name = NULL;
  BridgeServer *servers[N_SERVERS];
  g_autoptr(GString) addresses = g_string_new (NULL);
  g_autofree char *mute_address = NULL;
  guint16 mute_port;
  int mute;
  gboolean ok = TRUE;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || opt_reps < 1)
    {
      g_printerr ("iops-bench-cares: %s\n", error ? error->message : "--reps must be at least 1");
      return 2;
    }
  if (opt_smoke)
    {
      opt_reps = 1;
      n_lookups = 400;
      n_inflight = 50;
      n_idle = 100;
      mute_timeout_ms = 5;
    }
  lookups_name = g_strdup_printf ("lookups n=%u inflight=%u", n_lookups, n_inflight);
  idle_name = g_strdup_printf ("lookups n=%u inflight=%u idle=%u", n_lookups, n_inflight, n_idle);
  w_lookups = lookups_name;
  w_idle = idle_name;
  raise_fd_limit ();

  dir = g_dir_make_tmp ("iops-bench-cares-XXXXXX", &error);
  if (dir == NULL)
    g_error ("%s", error->message);
  hosts = g_build_filename (dir, "hosts", NULL);
  write_hosts (hosts);
  for (guint i = 0; i < N_SERVERS; i++)
    {
      guint16 port;

      servers[i] = start_dnsmasq (hosts, &port);
      g_string_append_printf (addresses, "%s127.0.0.1:%u", i > 0 ? "," : "", port);
    }
  find_server_pids ();
  mute = bridge_mute_peer (SOCK_DGRAM, &mute_port);
  mute_address = g_strdup_printf ("127.0.0.1:%u", mute_port);

  print_targets ();
  for (int rep = 0; rep < opt_reps && ok; rep++)
    ok = run_rep (rep, addresses->str, mute_address);

  close (mute);
  for (guint i = 0; i < N_SERVERS; i++)
    bridge_server_stop (servers[i]);
  g_remove (hosts);
  g_rmdir (dir);
  return ok ? 0 : 1;
}
