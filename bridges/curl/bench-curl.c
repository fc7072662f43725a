/* bench-curl.c — the libcurl bridge against curl's own loop and curl's GLib example
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   iops-bench-curl [--reps N] [--smoke] [--systems KEY,…] [--workloads NAME,…]
 *
 * Starts lighttpd (Debian's, on 127.0.0.1 and an unused port, with a
 * configuration of its own in a temporary folder serving a 1 KiB and a
 * 5 MiB file) and runs, interleaved, every system on every workload:
 *
 *   small   2,000 GETs of 1 KiB, 50 in flight
 *   large   20 GETs of 5 MiB, all in flight
 *   idle    small again, with 10,000 idle fds watched on the same IOPS
 *           (the bridge on the epoll backend only)
 *
 * Systems: the bridge on IopsGLibIOPS (epoll one-shot, epoll persistent,
 * gsource one-shot); a curl_multi_perform() + curl_multi_poll() loop, the
 * loop libcurl's documentation teaches; a GLib integration in the design
 * of curl's docs/examples/ghiper.c (a GIOChannel watch made anew whenever
 * curl changes a socket's events, a new timeout source for every timer
 * callback, the earlier ones left pending); and curl's multi_socket API
 * on a bare epoll loop, in the design of docs/examples/ephiperfifo.c.
 * Every transfer is checked (HTTP 200, the file's size); a wrong one
 * makes the run fail. Each rate is printed twice: per second, and per
 * second of the client thread's CPU time ("client CPU" columns), which
 * other load on the machine disturbs less.
 *
 * Each repetition is one run of each (workload, system), the system order
 * reversed every other repetition; the connections are made inside the
 * timed part, on a fresh multi handle. Prints JSON lines for
 * bench/bridges.py.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "bridge-test-util.h"
#include "iops-curl.h"

#define SMALL_SIZE 1024
#define LARGE_SIZE (5 * 1024 * 1024)

typedef struct
{
  char       *name;
  char       *cpu_name;    /* of its client-CPU column */
  const char *key;         /* for --workloads */
  const char *file;        /* "small" or "large", in the document root */
  gsize       file_size;
  guint       n;           /* transfers */
  guint       in_flight;
  guint       idle;        /* idle watched fds on the IOPS */
  gboolean    bytes_rate;  /* MB/s rather than requests/s */
} Workload;

/* -- one run: N transfers through C easy handles ------------------------- */

typedef struct _Run Run;

typedef struct
{
  Run  *run;
  CURL *easy;
  gsize bytes;
} Slot;

struct _Run
{
  const Workload *w;
  CURLM          *multi;
  Slot           *slots;
  guint           n_slots;
  guint           started;
  guint           finished;
  guint64         bytes;
  void          (*all_done) (Run *run);
  gpointer        loop;       /* the system's own */
  gint64          wall_us;    /* of the timed part: from the first add */
  gint64          cpu_us;     /* to the last done; CPU of this thread */
};

static gint64
thread_cpu_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* The timed part starts here, just before the first transfer is added. */
static void
run_clock_start (Run *run)
{
  run->cpu_us = thread_cpu_us ();
  run->wall_us = g_get_monotonic_time ();
}

static void
run_clock_stop (Run *run)
{
  run->wall_us = g_get_monotonic_time () - run->wall_us;
  run->cpu_us = thread_cpu_us () - run->cpu_us;
}

static size_t
on_data (char   *data,
         size_t  size,
         size_t  nmemb,
         void   *user_data)
{
  Slot *slot = user_data;

  slot->bytes += size * nmemb;
  return size * nmemb;
}

static void
run_prepare (Run            *run,
             const Workload *w,
             const char     *url)
{
  run->w = w;
  run->multi = curl_multi_init ();
  run->n_slots = MIN (w->in_flight, w->n);
  run->slots = g_new0 (Slot, run->n_slots);
  for (guint i = 0; i < run->n_slots; i++)
    {
      Slot *slot = &run->slots[i];

      slot->run = run;
      slot->easy = curl_easy_init ();
      curl_easy_setopt (slot->easy, CURLOPT_URL, url);
      curl_easy_setopt (slot->easy, CURLOPT_WRITEFUNCTION, on_data);
      curl_easy_setopt (slot->easy, CURLOPT_WRITEDATA, slot);
      curl_easy_setopt (slot->easy, CURLOPT_PRIVATE, slot);
    }
}

static void
slot_start (Slot *slot)
{
  slot->bytes = 0;
  slot->run->started++;
  if (curl_multi_add_handle (slot->run->multi, slot->easy) != CURLM_OK)
    g_error ("curl_multi_add_handle failed");
}

static void
run_begin (Run *run)
{
  for (guint i = 0; i < run->n_slots; i++)
    slot_start (&run->slots[i]);
}

/* Every system reports its finished transfers here: checked, then the
 * same handle goes again while transfers are left. */
static void
run_transfer_done (Run      *run,
                   CURL     *easy,
                   CURLcode  result)
{
  Slot *slot = NULL;
  long status = 0;

  curl_easy_getinfo (easy, CURLINFO_PRIVATE, (char **) &slot);
  curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &status);
  if (result != CURLE_OK || status != 200 || slot->bytes != run->w->file_size)
    g_error ("%s: transfer failed: %s, HTTP %ld, %zu of %zu bytes", run->w->name,
             curl_easy_strerror (result), status, slot->bytes, run->w->file_size);
  run->bytes += slot->bytes;
  run->finished++;
  curl_multi_remove_handle (run->multi, easy);
  if (run->started < run->w->n)
    slot_start (slot);
  else if (run->finished == run->w->n)
    run->all_done (run);
}

static void
run_clear (Run *run)
{
  for (guint i = 0; i < run->n_slots; i++)
    curl_easy_cleanup (run->slots[i].easy);
  g_free (run->slots);
  curl_multi_cleanup (run->multi);
}

/* -- idle fds ------------------------------------------------------------ */

typedef struct
{
  GPtrArray *events;  /* IopsIOEvent, watched for READ */
  GArray    *fds;
} IdleFds;

static void
on_idle_ready (IopsIOEvent    *event,
               IopsEventFlags  flags,
               gpointer        data)
{
  g_error ("an idle fd was reported ready");
}

static void
idle_fds_open (IdleFds  *idle,
               IopsIOPS *iops,
               guint     n)
{
  idle->events = g_ptr_array_new_with_free_func (g_object_unref);
  idle->fds = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint i = 0; i < n / 2; i++)
    {
      int pair[2];

      if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0)
        g_error ("socketpair: %s (raise the fd limit)", g_strerror (errno));
      for (int end = 0; end < 2; end++)
        {
          IopsIOEvent *event = iops_io_event_new (pair[end]);

          g_signal_connect (event, "ready", G_CALLBACK (on_idle_ready), NULL);
          iops_iops_update_event (iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
          g_ptr_array_add (idle->events, event);
          g_array_append_val (idle->fds, pair[end]);
        }
    }
}

static void
idle_fds_close (IdleFds  *idle,
                IopsIOPS *iops)
{
  for (guint i = 0; i < idle->events->len; i++)
    iops_iops_update_event (iops, g_ptr_array_index (idle->events, i), IOPS_EVACTION_CLEANUP, 0);
  for (guint i = 0; i < idle->fds->len; i++)
    close (g_array_index (idle->fds, int, i));
  g_ptr_array_unref (idle->events);
  g_array_unref (idle->fds);
}

/* -- the systems ------------------------------------------------------------ */

typedef struct _System System;

struct _System
{
  const char *key;
  const char *label;
  void      (*run) (Run *run, const System *sys);  /* brackets the timed part */
  const char *backend;
  gboolean    persistent;
  gboolean    with_idle;  /* also runs the idle workload */
};

/* The bridge on an IopsGLibIOPS of its own context. */

static void
bridge_on_done (IopsCurl *bridge,
                CURL     *easy,
                CURLcode  result,
                gpointer  user_data)
{
  run_transfer_done (user_data, easy, result);
}

static void
bridge_all_done (Run *run)
{
  /* Idle watches keep the IOPS armed: start_watching would not return. */
  iops_iops_stop_watching (run->loop);
}

static void
sys_bridge (Run          *run,
            const System *sys)
{
  GMainContext *context = g_main_context_new ();
  IopsGLibIOPS *glib_iops = g_object_new (IOPS_TYPE_GLIB_IOPS, "context", context,
                                          "backend", sys->backend,
                                          "persistent", sys->persistent, NULL);
  IopsIOPS *iops = IOPS_IOPS (glib_iops);
  IdleFds idle;
  IopsCurl *bridge;

  g_assert_cmpstr (iops_glib_iops_get_backend (glib_iops), ==, sys->backend);
  idle_fds_open (&idle, iops, run->w->idle);
  bridge = iops_curl_attach (run->multi, iops, bridge_on_done, run, NULL);
  run->loop = iops;
  run->all_done = bridge_all_done;

  run_clock_start (run);
  run_begin (run);
  iops_iops_start_watching (iops);
  run_clock_stop (run);

  iops_curl_detach (bridge);
  idle_fds_close (&idle, iops);
  g_object_unref (glib_iops);
  g_main_context_unref (context);
}

/* curl's own loop: curl_multi_perform(), then curl_multi_poll(). */

static void
poll_all_done (Run *run)
{
}

static void
poll_read_info (Run *run)
{
  CURLMsg *msg;
  int left;

  while ((msg = curl_multi_info_read (run->multi, &left)) != NULL)
    if (msg->msg == CURLMSG_DONE)
      {
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;

        run_transfer_done (run, easy, result);
      }
}

static void
sys_multi_poll (Run          *run,
                const System *sys)
{
  int running;

  run->all_done = poll_all_done;
  run_clock_start (run);
  run_begin (run);
  while (run->finished < run->w->n)
    {
      if (curl_multi_perform (run->multi, &running) != CURLM_OK)
        g_error ("curl_multi_perform failed");
      poll_read_info (run);
      if (run->finished < run->w->n &&
          curl_multi_poll (run->multi, NULL, 0, 1000, NULL) != CURLM_OK)
        g_error ("curl_multi_poll failed");
    }
  run_clock_stop (run);
}

/* The design of curl's docs/examples/ghiper.c (written here, not copied):
 * one GIOChannel per socket and a new watch source whenever curl changes
 * what it waits for; a new timeout source for every timer callback, the
 * earlier ones left to fire, and -1 ignored; the latest one removed when
 * no transfer runs. Unlike ghiper.c it runs on a context of its own (so
 * sources are kept by pointer, not by id) and frees each socket's
 * GIOChannel, which ghiper.c leaks. */

typedef struct
{
  Run          *run;
  GMainContext *context;
  GMainLoop    *loop;
  GSource      *timer_event;  /* the latest timeout source, referenced */
  int           still_running;
} GhiperGlobal;

typedef struct
{
  GIOChannel *channel;
  GSource    *watch;  /* referenced */
} GhiperSocket;

static void
ghiper_check_info (GhiperGlobal *g)
{
  CURLMsg *msg;
  int left;

  while ((msg = curl_multi_info_read (g->run->multi, &left)) != NULL)
    if (msg->msg == CURLMSG_DONE)
      {
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;

        run_transfer_done (g->run, easy, result);
      }
}

static gboolean
ghiper_timer_cb (gpointer data)
{
  GhiperGlobal *g = data;

  curl_multi_socket_action (g->run->multi, CURL_SOCKET_TIMEOUT, 0, &g->still_running);
  ghiper_check_info (g);
  return G_SOURCE_REMOVE;
}

static int
ghiper_update_timeout (CURLM *multi,
                       long   timeout_ms,
                       void  *data)
{
  GhiperGlobal *g = data;
  GSource *source;

  if (timeout_ms < 0)
    return 0;
  source = g_timeout_source_new (timeout_ms);
  g_source_set_callback (source, ghiper_timer_cb, g, NULL);
  g_source_attach (source, g->context);
  g_clear_pointer (&g->timer_event, g_source_unref);
  g->timer_event = source;
  return 0;
}

static gboolean
ghiper_event_cb (GIOChannel   *channel,
                 GIOCondition  condition,
                 gpointer      data)
{
  GhiperGlobal *g = data;
  int action = ((condition & G_IO_IN) ? CURL_CSELECT_IN : 0) |
               ((condition & G_IO_OUT) ? CURL_CSELECT_OUT : 0);

  curl_multi_socket_action (g->run->multi, g_io_channel_unix_get_fd (channel), action,
                            &g->still_running);
  ghiper_check_info (g);
  if (g->still_running)
    return G_SOURCE_CONTINUE;
  if (g->timer_event != NULL)
    g_source_destroy (g->timer_event);
  return G_SOURCE_REMOVE;
}

static void
ghiper_set_watch (GhiperGlobal *g,
                  GhiperSocket *sock,
                  int           what)
{
  GIOCondition kind = ((what & CURL_POLL_IN) ? G_IO_IN : 0) | ((what & CURL_POLL_OUT) ? G_IO_OUT : 0);

  if (sock->watch != NULL)
    {
      g_source_destroy (sock->watch);
      g_source_unref (sock->watch);
    }
  sock->watch = g_io_create_watch (sock->channel, kind);
  g_source_set_callback (sock->watch, G_SOURCE_FUNC (ghiper_event_cb), g, NULL);
  g_source_attach (sock->watch, g->context);
}

static void
ghiper_remove_socket (GhiperSocket *sock)
{
  if (sock == NULL)
    return;
  if (sock->watch != NULL)
    {
      g_source_destroy (sock->watch);
      g_source_unref (sock->watch);
    }
  g_io_channel_unref (sock->channel);
  g_free (sock);
}

static int
ghiper_sock_cb (CURL          *easy,
                curl_socket_t  fd,
                int            what,
                void          *data,
                void          *socketp)
{
  GhiperGlobal *g = data;
  GhiperSocket *sock = socketp;

  if (what == CURL_POLL_REMOVE)
    {
      ghiper_remove_socket (sock);
      return 0;
    }
  if (sock == NULL)
    {
      sock = g_new0 (GhiperSocket, 1);
      sock->channel = g_io_channel_unix_new (fd);
      curl_multi_assign (g->run->multi, fd, sock);
    }
  ghiper_set_watch (g, sock, what);
  return 0;
}

static void
ghiper_all_done (Run *run)
{
  GhiperGlobal *g = run->loop;

  g_main_loop_quit (g->loop);
}

static void
sys_ghiper (Run          *run,
            const System *sys)
{
  GhiperGlobal g = { run, g_main_context_new (), NULL, NULL, 0 };

  g.loop = g_main_loop_new (g.context, FALSE);
  curl_multi_setopt (run->multi, CURLMOPT_SOCKETFUNCTION, ghiper_sock_cb);
  curl_multi_setopt (run->multi, CURLMOPT_SOCKETDATA, &g);
  curl_multi_setopt (run->multi, CURLMOPT_TIMERFUNCTION, ghiper_update_timeout);
  curl_multi_setopt (run->multi, CURLMOPT_TIMERDATA, &g);
  run->loop = &g;
  run->all_done = ghiper_all_done;

  run_clock_start (run);
  run_begin (run);
  g_main_loop_run (g.loop);
  run_clock_stop (run);

  /* curl said REMOVE for every socket as its transfer ended; the timeout
   * sources still pending go with the context. */
  curl_multi_setopt (run->multi, CURLMOPT_SOCKETFUNCTION, (curl_socket_callback) NULL);
  curl_multi_setopt (run->multi, CURLMOPT_TIMERFUNCTION, (curl_multi_timer_callback) NULL);
  g_clear_pointer (&g.timer_event, g_source_unref);
  g_main_loop_unref (g.loop);
  g_main_context_unref (g.context);
}

/* curl's multi_socket API on a bare epoll loop, without GLib (the design
 * of curl's docs/examples/ephiperfifo.c, written here): the plain way to
 * use that API, a yardstick for what the bridge and GLib add. */

typedef struct
{
  Run    *run;
  int     epfd;
  gint64  deadline;  /* curl's timer, monotonic µs; -1: none */
  int     still_running;
} EpollLoop;

static int
epoll_sock_cb (CURL          *easy,
               curl_socket_t  fd,
               int            what,
               void          *data,
               void          *socketp)
{
  EpollLoop *loop = data;
  struct epoll_event ev = { 0 };

  if (what == CURL_POLL_REMOVE)
    {
      epoll_ctl (loop->epfd, EPOLL_CTL_DEL, fd, NULL);
      return 0;
    }
  ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
  ev.data.fd = fd;
  if (socketp == NULL)
    {
      epoll_ctl (loop->epfd, EPOLL_CTL_ADD, fd, &ev);
      curl_multi_assign (loop->run->multi, fd, loop);  /* "registered" */
    }
  else
    {
      epoll_ctl (loop->epfd, EPOLL_CTL_MOD, fd, &ev);
    }
  return 0;
}

static int
epoll_timer_cb (CURLM *multi,
                long   timeout_ms,
                void  *data)
{
  EpollLoop *loop = data;

  loop->deadline = timeout_ms < 0 ? -1 : g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;
  return 0;
}

static int
epoll_wait_ms (const EpollLoop *loop)
{
  gint64 left;

  if (loop->deadline < 0)
    return -1;
  left = loop->deadline - g_get_monotonic_time ();
  return left <= 0 ? 0 : (int) ((left + 999) / 1000);
}

static void
epoll_turn (EpollLoop *loop)
{
  struct epoll_event events[64];
  int n = epoll_wait (loop->epfd, events, G_N_ELEMENTS (events), epoll_wait_ms (loop));

  for (int i = 0; i < n; i++)
    {
      guint32 e = events[i].events;
      int action = (e & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_IN | CURL_CSELECT_OUT :
                   ((e & EPOLLIN) ? CURL_CSELECT_IN : 0) | ((e & EPOLLOUT) ? CURL_CSELECT_OUT : 0);

      curl_multi_socket_action (loop->run->multi, events[i].data.fd, action, &loop->still_running);
      poll_read_info (loop->run);
    }
  if (loop->deadline >= 0 && g_get_monotonic_time () >= loop->deadline)
    {
      loop->deadline = -1;
      curl_multi_socket_action (loop->run->multi, CURL_SOCKET_TIMEOUT, 0, &loop->still_running);
      poll_read_info (loop->run);
    }
}

static void
sys_socket_epoll (Run          *run,
                  const System *sys)
{
  EpollLoop loop = { run, epoll_create1 (EPOLL_CLOEXEC), -1, 0 };

  curl_multi_setopt (run->multi, CURLMOPT_SOCKETFUNCTION, epoll_sock_cb);
  curl_multi_setopt (run->multi, CURLMOPT_SOCKETDATA, &loop);
  curl_multi_setopt (run->multi, CURLMOPT_TIMERFUNCTION, epoll_timer_cb);
  curl_multi_setopt (run->multi, CURLMOPT_TIMERDATA, &loop);
  run->all_done = poll_all_done;

  run_clock_start (run);
  run_begin (run);
  while (run->finished < run->w->n)
    epoll_turn (&loop);
  run_clock_stop (run);

  curl_multi_setopt (run->multi, CURLMOPT_SOCKETFUNCTION, (curl_socket_callback) NULL);
  curl_multi_setopt (run->multi, CURLMOPT_TIMERFUNCTION, (curl_multi_timer_callback) NULL);
  close (loop.epfd);
}

static const System systems[] = {
  { "bridge-epoll", "bridge, IopsGLibIOPS epoll, one-shot", sys_bridge, "epoll", FALSE, TRUE },
  { "bridge-epoll-persistent", "bridge, IopsGLibIOPS epoll, persistent", sys_bridge, "epoll", TRUE, TRUE },
  { "bridge-gsource", "bridge, IopsGLibIOPS gsource, one-shot", sys_bridge, "gsource", FALSE, FALSE },
  { "multi-poll", "curl_multi_poll() loop", sys_multi_poll, NULL, FALSE, FALSE },
  { "socket-epoll", "multi_socket on a bare epoll loop", sys_socket_epoll, NULL, FALSE, FALSE },
  { "ghiper", "GLib, curl's ghiper.c design", sys_ghiper, NULL, FALSE, FALSE },
};

/* -- the server ------------------------------------------------------------ */

typedef struct
{
  char         *dir;
  BridgeServer *process;
  guint16       port;
} Server;

static char *
find_lighttpd (void)
{
  char *path = g_find_program_in_path ("lighttpd");

  if (path == NULL && g_file_test ("/usr/sbin/lighttpd", G_FILE_TEST_IS_EXECUTABLE))
    path = g_strdup ("/usr/sbin/lighttpd");
  return path;
}

static void
write_file (const char *dir,
            const char *name,
            gsize       size)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *data = g_malloc (size);
  g_autoptr(GError) error = NULL;

  for (gsize i = 0; i < size; i++)
    data[i] = (char) ('a' + i % 26);
  if (!g_file_set_contents (path, data, size, &error))
    g_error ("%s", error->message);
}

static void
server_start (Server     *server,
              const char *lighttpd,
              gsize       large_size)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *docs = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *conf_path = NULL;

  server->dir = g_dir_make_tmp ("iops-bench-curl-XXXXXX", &error);
  g_assert_no_error (error);
  docs = g_build_filename (server->dir, "docs", NULL);
  g_assert_cmpint (g_mkdir (docs, 0700), ==, 0);
  write_file (docs, "small", SMALL_SIZE);
  write_file (docs, "large", large_size);

  server->port = bridge_unused_port (SOCK_STREAM);
  conf = g_strdup_printf ("server.document-root = \"%s\"\n"
                          "server.bind = \"127.0.0.1\"\n"
                          "server.port = %u\n"
                          "server.max-connections = 4096\n"
                          "server.max-keep-alive-requests = 1000000\n"
                          "server.max-keep-alive-idle = 60\n",
                          docs, server->port);
  conf_path = g_build_filename (server->dir, "lighttpd.conf", NULL);
  g_file_set_contents (conf_path, conf, -1, &error);
  g_assert_no_error (error);
  {
    const char *argv[] = { lighttpd, "-D", "-f", conf_path, NULL };

    server->process = bridge_server_start_or_fail (argv, "server started");
  }
}

static void
server_stop (Server *server)
{
  const char *names[] = { "docs/small", "docs/large", "docs", "lighttpd.conf" };

  bridge_server_stop (server->process);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = g_build_filename (server->dir, names[i], NULL);

      g_remove (path);
    }
  g_rmdir (server->dir);
  g_free (server->dir);
}

/* -- the runs ------------------------------------------------------------------ */

typedef struct
{
  double wall;  /* transfers or MB per second */
  double cpu;   /* the same per second of this thread's CPU time */
} Rates;

static Rates
run_once (const System   *sys,
          const Workload *w,
          guint16         port)
{
  g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u/%s", port, w->file);
  Run run = { 0 };
  double work;

  run_prepare (&run, w, url);
  sys->run (&run, sys);
  if (run.finished != w->n)
    g_error ("%s on %s: %u of %u transfers", sys->key, w->name, run.finished, w->n);
  run_clear (&run);
  work = w->bytes_rate ? run.bytes / 1e6 : w->n;
  return (Rates) { work / (run.wall_us / 1e6), work / (MAX (run.cpu_us, 1) / 1e6) };
}

static void
print_rate (const System   *sys,
            const char     *workload,
            int             rep,
            double          rate,
            const char     *unit)
{
  printf ("{\"workload\": \"%s\", \"system\": \"%s\", \"label\": \"%s\", \"rep\": %d, "
          "\"rate\": %.1f, \"unit\": \"%s\"}\n",
          workload, sys->key, sys->label, rep, rate, unit);
}

/* The rate, and the same work per second of the client's own CPU time:
 * steadier on a busy machine, and what the loop's cost shows in. */
static void
print_rates (const System   *sys,
             const Workload *w,
             int             rep,
             Rates           rates)
{
  print_rate (sys, w->name, rep, rates.wall, w->bytes_rate ? "MB/s" : "requests/s");
  print_rate (sys, w->cpu_name, rep, rates.cpu, w->bytes_rate ? "MB/CPU-s" : "requests/CPU-s");
}

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

/* NULL @only selects everything; otherwise a comma-separated list. */
static gboolean
selected (const char *only,
          const char *key)
{
  g_auto(GStrv) keys = NULL;

  if (only == NULL)
    return TRUE;
  keys = g_strsplit (only, ",", -1);
  return g_strv_contains ((const char *const *) keys, key);
}

static gboolean
runs_on (const System   *sys,
         const Workload *w)
{
  return w->idle == 0 || sys->with_idle;
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

static void
workloads_init (Workload workloads[3],
                gboolean smoke)
{
  Workload *small = &workloads[0], *large = &workloads[1], *idle = &workloads[2];

  *small = (Workload) { NULL, NULL, "small", "small", SMALL_SIZE,
                        smoke ? 40 : 2000, smoke ? 8 : 50, 0, FALSE };
  *large = (Workload) { NULL, NULL, "large", "large", smoke ? 256 * 1024 : LARGE_SIZE,
                        smoke ? 2 : 20, smoke ? 2 : 20, 0, TRUE };
  *idle = *small;
  idle->key = "idle";
  idle->idle = smoke ? 100 : 10000;

  small->name = g_strdup_printf ("small %u×1KiB c=%u", small->n, small->in_flight);
  large->name = g_strdup_printf ("large %u×%zuKiB c=%u", large->n, large->file_size / 1024,
                                 large->in_flight);
  idle->name = g_strdup_printf ("%s idle=%u", small->name, idle->idle);
  for (guint wi = 0; wi < 3; wi++)
    workloads[wi].cpu_name = g_strdup_printf ("%s, client CPU", workloads[wi].name);
}

static void
workloads_clear (Workload workloads[3])
{
  for (guint wi = 0; wi < 3; wi++)
    {
      g_free (workloads[wi].name);
      g_free (workloads[wi].cpu_name);
    }
}

typedef struct
{
  int         reps;
  gboolean    smoke;
  const char *only_systems;
  const char *only_workloads;
} Options;

/* Every repetition runs every selected (workload, system) once, the
 * system order reversed every other repetition. */
static void
run_all (const Options  *opts,
         const Workload  workloads[3],
         guint16         port)
{
  /* Warm-up: the page cache, lighttpd, and the code of every system. */
  if (!opts->smoke)
    for (guint s = 0; s < G_N_ELEMENTS (systems); s++)
      if (selected (opts->only_systems, systems[s].key))
        run_once (&systems[s], &workloads[0], port);

  for (int rep = 0; rep < opts->reps; rep++)
    for (guint wi = 0; wi < 3; wi++)
      for (guint k = 0; k < G_N_ELEMENTS (systems); k++)
        {
          const System *sys = &systems[rep % 2 == 0 ? k : G_N_ELEMENTS (systems) - 1 - k];
          const Workload *w = &workloads[wi];

          if (runs_on (sys, w) && selected (opts->only_systems, sys->key) &&
              selected (opts->only_workloads, w->key))
            print_rates (sys, w, rep, run_once (sys, w, port));
        }
}

/* The targets: the bridge (default mode, epoll backend) against
 * curl's own loop and the ghiper.c design, and against itself with idle
 * fds. */
static void
print_targets (const Workload workloads[3])
{
  for (guint wi = 0; wi < 2; wi++)
    {
      const char *w = workloads[wi].name;
      g_autofree char *vs_poll = g_strdup_printf ("%s: bridge ≥ 0.95× the curl_multi_poll() loop",
                                                  workloads[wi].key);
      g_autofree char *vs_ghiper = g_strdup_printf ("%s: bridge ≥ 1.0× curl's GLib example design",
                                                    workloads[wi].key);

      print_target (vs_poll, w, "bridge-epoll", "multi-poll", w, 0.95);
      print_target (vs_ghiper, w, "bridge-epoll", "ghiper", w, 1.0);
    }
  {
    g_autofree char *target = g_strdup_printf ("%u idle fds: bridge ≥ 0.9× its rate with none",
                                               workloads[2].idle);

    print_target (target, workloads[2].name, "bridge-epoll", "bridge-epoll", workloads[0].name, 0.9);
  }
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *only_systems = NULL;
  g_autofree char *only_workloads = NULL;
  Options opts = { 7, FALSE, NULL, NULL };
  GOptionEntry entries[] = {
    { "reps", 0, 0, G_OPTION_ARG_INT, &opts.reps, "Repetitions (default: 7)", "N" },
    { "smoke", 0, 0, G_OPTION_ARG_NONE, &opts.smoke, "Tiny counts, one repetition: checks only", NULL },
    { "systems", 0, 0, G_OPTION_ARG_STRING, &only_systems, "Only these systems", "KEY,…" },
    { "workloads", 0, 0, G_OPTION_ARG_STRING, &only_workloads, "Only these: small, large, idle", "NAME,…" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("— the libcurl bridge's benchmark");
  g_autoptr(GError) error = NULL;
  g_autofree char *lighttpd = find_lighttpd ();
  Workload workloads[3];
  Server server = { 0 };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || opts.reps < 1)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "--reps must be at least 1");
      return 2;
    }
  if (lighttpd == NULL)
    {
      g_printerr ("lighttpd not found (Debian package lighttpd): skipped\n");
      return 77;
    }
  if (opts.smoke)
    opts.reps = 1;
  opts.only_systems = only_systems;
  opts.only_workloads = only_workloads;

  workloads_init (workloads, opts.smoke);
  raise_fd_limit ();
  curl_global_init (CURL_GLOBAL_DEFAULT);
  server_start (&server, lighttpd, workloads[1].file_size);

  run_all (&opts, workloads, server.port);
  print_targets (workloads);

  server_stop (&server);
  curl_global_cleanup ();
  workloads_clear (workloads);
  return 0;
}
