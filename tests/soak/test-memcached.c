/* test-memcached.c — soak: a memcached text-protocol client on IopsIOPS
 * against a real memcached that is killed and restarted mid-run
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The client talks only to the IopsIOPS interface: every connect, send and
 * recv happens in a callback of an IopsIOEvent, and every request is guarded
 * by its own IopsTimerEvent. One cycle is:
 *
 *  1. a round of pipelined set/get on every connection, every value checked;
 *  2. the same, with memcached SIGSTOPped half-way: the oldest request on
 *     each connection must time out, which ends the connection and fails
 *     its other requests (then SIGCONT);
 *  3. the same, with memcached SIGKILLed half-way: every outstanding request
 *     must end with an error or a timeout;
 *  4. memcached restarted on the same port, fresh connections, a full round.
 *
 * start_watching() must return by itself after each round, because nothing
 * is armed any more.
 *
 * Then open fds (sockets, epoll fds, timerfds) and RSS must be back where
 * they started.
 *
 * Environment (defaults give about 10 s per backend):
 *   IOPS_SOAK_CONNS    concurrent connections (1000)
 *   IOPS_SOAK_OPS      operations per connection and round (1000)
 *   IOPS_SOAK_DEPTH    requests in flight per connection (8)
 *   IOPS_SOAK_SECONDS  repeat whole cycles until this many seconds passed (0)
 *
 * Long soak (ten minutes on the epoll backend):
 *   IOPS_SOAK_SECONDS=600 IOPS_GLIB_BACKEND=epoll build/tests/soak/test-memcached --tap
 * or through meson, for both backends:
 *   IOPS_SOAK_SECONDS=600 meson test -C build --timeout-multiplier 0 \
 *     test-memcached-epoll test-memcached-gsource
 *
 * Under valgrind use small counts, e.g.
 *   IOPS_SOAK_CONNS=50 IOPS_SOAK_OPS=40 meson test -C build --setup valgrind \
 *     test-memcached-epoll test-memcached-gsource
 *
 * Skipped when /usr/bin/memcached (or memcached in PATH) is missing.
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>

#include "iops-test-util.h"

#define N_KEYS            4        /* keys per connection, reused round-robin */
#define MAX_DEPTH         32
#define REQUEST_TIMEOUT_US (10 * G_USEC_PER_SEC)
#define STALL_TIMEOUT_US  (1 * G_USEC_PER_SEC)  /* while the server is stopped */
#define PHASE_DEADLINE_S  120      /* only a hang ever gets near it */
#define READY_DEADLINE_US (10 * G_USEC_PER_SEC)
#define READY_POLL_US     (5 * 1000)
#define RSS_TOLERANCE_KB  (8 * 1024)
#define FD_HEADROOM       256

typedef struct _Soak Soak;
typedef struct _SoakConn SoakConn;
typedef struct _SoakTimer SoakTimer;

/* -- a request and its timeout ------------------------------------------ */

#define SOAK_TYPE_TIMER (soak_timer_get_type ())
G_DECLARE_FINAL_TYPE (SoakTimer, soak_timer, SOAK, TIMER, IopsTimerEvent)

struct _SoakTimer
{
  IopsTimerEvent parent_instance;
  SoakConn      *conn;
};

G_DEFINE_FINAL_TYPE (SoakTimer, soak_timer, IOPS_TYPE_TIMER_EVENT)

typedef struct
{
  SoakTimer *timer;      /* one per slot, re-armed per request */
  guint      seq;        /* operation number within the round */
} Request;

/* -- a client connection ------------------------------------------------ */

typedef enum
{
  CONN_CONNECTING,
  CONN_OPEN,
  CONN_DONE,      /* every operation answered */
  CONN_FAILED,
} ConnState;

#define SOAK_TYPE_CONN (soak_conn_get_type ())
G_DECLARE_FINAL_TYPE (SoakConn, soak_conn, SOAK, CONN, IopsIOEvent)

struct _SoakConn
{
  IopsIOEvent  parent_instance;
  Soak        *soak;
  guint        id;
  int          fd;
  ConnState    state;
  guint        issued;           /* operations sent this round */
  Request      ring[MAX_DEPTH];  /* in flight, oldest at head */
  guint        head, n_pending;
  GByteArray  *out;
  gsize        out_sent;
  GByteArray  *in;
};

G_DEFINE_FINAL_TYPE (SoakConn, soak_conn, IOPS_TYPE_IO_EVENT)

/* -- the whole run ------------------------------------------------------- */

struct _Soak
{
  IopsIOPS    *iops;
  GMainContext *context;

  guint        n_conns, ops, depth;
  guint        round;
  SoakConn   **conns;
  guint16      port;

  GSubprocess *server;
  gboolean     server_exited;
  guint64      fault_after;      /* answers before the fault; 0: none */
  int          fault_signal;     /* SIGKILL or SIGSTOP */
  gboolean     faulted;
  gboolean     sent_kill;        /* the process may be reaped already */
  gint64       timeout_us;

  /* per round */
  guint64      issued, answered, errors, timeouts, abandoned;
  guint        conn_failures, verify_failures;
  gboolean     hung;
  guint        peak_fds;

  /* totals */
  guint64      total_answered;
  gint64       busy_us;
};

static void soak_conn_fail (SoakConn   *self,
                            const char *why);

/* Values differ in length and content per connection, operation and round,
 * so a reply from the wrong key, request or round cannot pass. */
static gsize
value_build (char    *buf,
             guint    conn,
             guint    seq,
             guint    round)
{
  guint32 h = (conn * 2654435761u) ^ (seq * 40503u) ^ (round * 9973u);
  gsize len = 8 + h % 240;

  for (gsize i = 0; i < len; i++)
    buf[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[(h + i * 7) % 36];
  return len;
}

/* Even operations set key (seq / 2) % N_KEYS, odd ones get it back. */
static void
request_format (SoakConn *self,
                guint     seq)
{
  Soak *soak = self->soak;
  char value[256];
  char line[128];
  guint key = (seq / 2) % N_KEYS;
  int n;

  if (seq % 2 == 0)
    {
      gsize len = value_build (value, self->id, seq, soak->round);

      n = g_snprintf (line, sizeof line, "set k:%u:%u 0 0 %zu\r\n", self->id, key, len);
      g_byte_array_append (self->out, (guint8 *) line, (guint) n);
      g_byte_array_append (self->out, (guint8 *) value, (guint) len);
      g_byte_array_append (self->out, (guint8 *) "\r\n", 2);
    }
  else
    {
      n = g_snprintf (line, sizeof line, "get k:%u:%u\r\n", self->id, key);
      g_byte_array_append (self->out, (guint8 *) line, (guint) n);
    }
}

/* Returns how many bytes of @in the reply to @seq takes, 0 if incomplete,
 * -1 if it is wrong. */
static gssize
reply_parse (SoakConn *self,
             guint     seq)
{
  const char *in = (const char *) self->in->data;
  gsize len = self->in->len;
  const char *eol = memchr (in, '\n', len);
  char value[256], header[128];
  gsize vlen, need;

  if (eol == NULL)
    return len > 512 ? -1 : 0;

  /* The buffer is not NUL-terminated: compare lengths first. */
  if (seq % 2 == 0)
    return eol - in + 1 == 8 && memcmp (in, "STORED\r\n", 8) == 0 ? 8 : -1;

  vlen = value_build (value, self->id, seq - 1, self->soak->round);
  g_snprintf (header, sizeof header, "VALUE k:%u:%u 0 %zu\r\n",
              self->id, (seq / 2) % N_KEYS, vlen);
  need = strlen (header) + vlen + strlen ("\r\nEND\r\n");
  if ((gsize) (eol - in + 1) != strlen (header) || memcmp (in, header, strlen (header)) != 0)
    return -1;
  if (len < need)
    return 0;
  if (memcmp (in + strlen (header), value, vlen) != 0 ||
      memcmp (in + strlen (header) + vlen, "\r\nEND\r\n", 7) != 0)
    return -1;
  return (gssize) need;
}

static void
soak_conn_rewatch (SoakConn *self)
{
  IopsEventFlags flags = 0;

  if (self->state == CONN_CONNECTING || self->out_sent < self->out->len)
    flags |= IOPS_WRITE_EVENT;
  if (self->state == CONN_OPEN && self->n_pending > 0)
    flags |= IOPS_READ_EVENT;
  /* Nothing in flight: unwatched, so that start_watching() returns once
   * every connection is done. */
  iops_iops_update_event (self->soak->iops, IOPS_IO_EVENT (self),
                          flags != 0 ? IOPS_EVACTION_WATCH : IOPS_EVACTION_UNWATCH, flags);
}

static void
soak_conn_fill (SoakConn *self)
{
  Soak *soak = self->soak;

  while (self->n_pending < soak->depth && self->issued < soak->ops)
    {
      Request *r = &self->ring[(self->head + self->n_pending) % soak->depth];

      r->seq = self->issued++;
      request_format (self, r->seq);
      iops_iops_update_timer (soak->iops, IOPS_TIMER_EVENT (r->timer),
                              IOPS_EVACTION_WATCH, soak->timeout_us);
      self->n_pending++;
      soak->issued++;
    }
}

static gboolean
soak_conn_flush (SoakConn *self)
{
  while (self->out_sent < self->out->len)
    {
      ssize_t n = send (self->fd, self->out->data + self->out_sent,
                        self->out->len - self->out_sent, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return TRUE;
      if (n < 0)
        {
          soak_conn_fail (self, g_strerror (errno));
          return FALSE;
        }
      self->out_sent += (gsize) n;
    }
  g_byte_array_set_size (self->out, 0);
  self->out_sent = 0;
  return TRUE;
}

static void
soak_conn_answered (SoakConn *self)
{
  Soak *soak = self->soak;
  Request *r = &self->ring[self->head];

  iops_iops_update_timer (soak->iops, IOPS_TIMER_EVENT (r->timer),
                          IOPS_EVACTION_UNWATCH, 0);
  self->head = (self->head + 1) % soak->depth;
  self->n_pending--;
  soak->answered++;

  /* Stop or kill the server from inside the loop, requests in flight. */
  if (soak->fault_after > 0 && !soak->faulted && soak->answered >= soak->fault_after)
    {
      soak->faulted = TRUE;
      soak->sent_kill = soak->fault_signal == SIGKILL;
      g_subprocess_send_signal (soak->server, soak->fault_signal);
    }
}

static gboolean
soak_conn_read (SoakConn *self)
{
  guint8 buf[16384];
  ssize_t n;

  n = recv (self->fd, buf, sizeof buf, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return TRUE;
  if (n <= 0)
    {
      soak_conn_fail (self, n == 0 ? "connection closed by the server" : g_strerror (errno));
      return FALSE;
    }
  g_byte_array_append (self->in, buf, (guint) n);

  while (self->n_pending > 0)
    {
      gssize used = reply_parse (self, self->ring[self->head].seq);

      if (used == 0)
        break;
      if (used < 0)
        {
          self->soak->verify_failures++;
          soak_conn_fail (self, "unexpected reply");
          return FALSE;
        }
      g_byte_array_remove_range (self->in, 0, (guint) used);
      soak_conn_answered (self);
    }
  return TRUE;
}

static void
soak_conn_ready (SoakConn       *self,
                 IopsEventFlags  ready)
{
  if (self->state == CONN_CONNECTING)
    {
      int err = 0;
      socklen_t len = sizeof err;

      getsockopt (self->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0)
        {
          soak_conn_fail (self, g_strerror (err));
          return;
        }
      self->state = CONN_OPEN;
    }
  else if ((ready & IOPS_READ_EVENT) && !soak_conn_read (self))
    return;

  soak_conn_fill (self);
  if (!soak_conn_flush (self))
    return;
  if (self->issued == self->soak->ops && self->n_pending == 0)
    self->state = CONN_DONE;
  soak_conn_rewatch (self);
}

static void
soak_conn_ready_r (IopsIOEvent *event)
{
  soak_conn_ready (SOAK_CONN (event), IOPS_READ_EVENT);
}

static void
soak_conn_ready_w (IopsIOEvent *event)
{
  soak_conn_ready (SOAK_CONN (event), IOPS_WRITE_EVENT);
}

static void
soak_conn_ready_rw (IopsIOEvent *event)
{
  soak_conn_ready (SOAK_CONN (event), IOPS_RW_EVENT);
}

static int
soak_conn_fileno (IopsIOEvent *event)
{
  return SOAK_CONN (event)->fd;
}

static void
soak_conn_close (SoakConn *self)
{
  Soak *soak = self->soak;

  for (guint i = 0; i < soak->depth; i++)
    iops_iops_update_timer (soak->iops, IOPS_TIMER_EVENT (self->ring[i].timer),
                            IOPS_EVACTION_CLEANUP, 0);
  if (self->fd >= 0)
    {
      iops_iops_update_event (soak->iops, IOPS_IO_EVENT (self), IOPS_EVACTION_CLEANUP, 0);
      close (self->fd);
      self->fd = -1;
    }
}

/* A pipelined text protocol cannot resynchronise: one failure ends the
 * connection and every request still in flight on it. */
static void
soak_conn_fail (SoakConn   *self,
                const char *why)
{
  Soak *soak = self->soak;

  if (!soak->faulted)
    g_test_message ("connection %u failed: %s", self->id, why);
  soak->conn_failures++;
  soak->errors += self->n_pending;
  soak->abandoned += soak->ops - self->issued;
  for (guint i = 0; i < self->n_pending; i++)
    iops_iops_update_timer (soak->iops,
                            IOPS_TIMER_EVENT (self->ring[(self->head + i) % soak->depth].timer),
                            IOPS_EVACTION_UNWATCH, 0);
  self->n_pending = 0;
  self->state = CONN_FAILED;
  soak_conn_close (self);
}

static void
soak_timer_ready (IopsTimerEvent *timer,
                  int             flags)
{
  SoakConn *conn = SOAK_TIMER (timer)->conn;

  /* Equal timeouts fire in the order they were armed (rule 7): the oldest
   * request expires first. It counts as a timeout, the others on the
   * connection as errors. */
  g_assert_true (conn->ring[conn->head].timer == SOAK_TIMER (timer));
  conn->soak->timeouts++;
  conn->n_pending--;
  conn->head = (conn->head + 1) % conn->soak->depth;
  soak_conn_fail (conn, "request timed out");
}

static void
soak_conn_finalize (GObject *object)
{
  SoakConn *self = SOAK_CONN (object);

  for (guint i = 0; i < MAX_DEPTH; i++)
    g_clear_object (&self->ring[i].timer);
  g_byte_array_unref (self->out);
  g_byte_array_unref (self->in);
  G_OBJECT_CLASS (soak_conn_parent_class)->finalize (object);
}

static void
soak_conn_class_init (SoakConnClass *klass)
{
  IopsIOEventClass *event_class = IOPS_IO_EVENT_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = soak_conn_finalize;
  event_class->fileno = soak_conn_fileno;
  event_class->ready_r = soak_conn_ready_r;
  event_class->ready_w = soak_conn_ready_w;
  event_class->ready_rw = soak_conn_ready_rw;
}

static void
soak_conn_init (SoakConn *self)
{
  self->fd = -1;
  self->out = g_byte_array_new ();
  self->in = g_byte_array_new ();
}

static void
soak_timer_class_init (SoakTimerClass *klass)
{
  IOPS_TIMER_EVENT_CLASS (klass)->ready = soak_timer_ready;
}

static void
soak_timer_init (SoakTimer *self)
{
}

static SoakConn *
soak_conn_new (Soak *soak,
               guint id)
{
  SoakConn *self = g_object_new (SOAK_TYPE_CONN, NULL);

  self->soak = soak;
  self->id = id;
  for (guint i = 0; i < soak->depth; i++)
    {
      self->ring[i].timer = g_object_new (SOAK_TYPE_TIMER, NULL);
      self->ring[i].timer->conn = self;
    }
  return self;
}

static void
soak_conn_connect (SoakConn *self)
{
  struct sockaddr_in addr = { .sin_family = AF_INET };
  int one = 1;

  addr.sin_port = g_htons (self->soak->port);
  addr.sin_addr.s_addr = g_htonl (INADDR_LOOPBACK);
  self->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  g_assert_cmpint (self->fd, >=, 0);
  setsockopt (self->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  self->state = CONN_CONNECTING;
  if (connect (self->fd, (struct sockaddr *) &addr, sizeof addr) != 0 && errno != EINPROGRESS)
    {
      soak_conn_fail (self, g_strerror (errno));
      return;
    }
  soak_conn_rewatch (self);
}

/* -- memcached ----------------------------------------------------------- */

static void
server_exited_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      data)
{
  Soak *soak = data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  if (G_SUBPROCESS (source) == soak->server)
    soak->server_exited = TRUE;
}

static guint16
free_port (void)
{
  struct sockaddr_in addr = { .sin_family = AF_INET };
  socklen_t len = sizeof addr;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  addr.sin_addr.s_addr = g_htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &addr, &len), ==, 0);
  close (fd);
  return g_ntohs (addr.sin_port);
}

static gboolean
try_connect (guint16 port)
{
  struct sockaddr_in addr = { .sin_family = AF_INET };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  gboolean ok;

  addr.sin_port = g_htons (port);
  addr.sin_addr.s_addr = g_htonl (INADDR_LOOPBACK);
  ok = connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0;
  close (fd);
  return ok;
}

static const char *
memcached_path (void)
{
  static char *path = NULL;

  if (path == NULL)
    path = g_find_program_in_path ("memcached");
  if (path == NULL && g_file_test ("/usr/bin/memcached", G_FILE_TEST_IS_EXECUTABLE))
    path = g_strdup ("/usr/bin/memcached");
  return path;
}

/* In the child: memcached must not outlive a test that crashed, nor keep
 * the test's stderr (and so meson) waiting. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* Starts memcached on soak->port and waits until it accepts connections.
 * FALSE if it exited (the port was taken) or never became ready. */
static gboolean
server_start (Soak *soak)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autofree char *port = g_strdup_printf ("%u", soak->port);
  g_autofree char *conns = g_strdup_printf ("%u", MAX (4096, soak->n_conns + 64));
  gint64 deadline;
  const char *argv[] = {
    memcached_path (), "-p", port, "-U", "0", "-l", "127.0.0.1", "-c", conns,
    "-b", "4096", "-t", "2", "-m", "64",
    geteuid () == 0 ? "-u" : NULL, "root", NULL,
  };

  g_clear_object (&soak->server);
  soak->server_exited = FALSE;
  soak->sent_kill = FALSE;
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  soak->server = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_wait_async (soak->server, NULL, server_exited_cb, soak);

  /* An outside process: poll for readiness, bounded. */
  deadline = g_get_monotonic_time () + READY_DEADLINE_US;
  while (g_get_monotonic_time () < deadline)
    {
      while (g_main_context_iteration (NULL, FALSE))
        ;
      if (soak->server_exited)
        return FALSE;
      if (try_connect (soak->port))
        return TRUE;
      g_usleep (READY_POLL_US);
    }
  return FALSE;
}

static void
server_stop (Soak *soak)
{
  gint64 deadline = g_get_monotonic_time () + READY_DEADLINE_US;

  if (soak->server == NULL)
    return;
  if (!soak->sent_kill)
    g_subprocess_send_signal (soak->server, SIGKILL);
  while (!soak->server_exited && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (soak->server_exited);
  g_clear_object (&soak->server);
}

/* -- resources ------------------------------------------------------------ */

/* The open fds, as "number:target" pairs, shown on a leak. Counted are
 * the kinds the client and the IOPS create: sockets, epoll fds, timerfds.
 * GLib's child-watch machinery opens and closes pidfds and eventfds on its
 * worker thread whenever it likes, so those would make the count racy. */
static char *
list_fds (guint *n)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  GString *list = g_string_new (NULL);
  const char *name;

  g_assert_nonnull (dir);
  *n = 0;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/fd", name, NULL);
      g_autofree char *target = g_file_read_link (path, NULL);

      if (target == NULL)
        continue;  /* the directory being read, or a racing close */
      g_string_append_printf (list, " %s:%s", name, target);
      if (g_str_has_prefix (target, "socket:") ||
          g_str_equal (target, "anon_inode:[eventpoll]") ||
          g_str_equal (target, "anon_inode:[timerfd]"))
        (*n)++;
    }
  return g_string_free (list, FALSE);
}

static guint64
rss_kb (void)
{
  g_autofree char *status = NULL;
  const char *line;

#ifdef __GLIBC__
  /* Free heap kept by malloc is not a leak: give it back first. */
  malloc_trim (0);
#endif
  g_assert_true (g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  line = strstr (status, "VmRSS:");
  g_assert_nonnull (line);
  return g_ascii_strtoull (line + strlen ("VmRSS:"), NULL, 10);
}

/* -- rounds -------------------------------------------------------------- */

static gboolean
phase_deadline (gpointer data)
{
  Soak *soak = data;

  soak->hung = TRUE;
  iops_iops_stop_watching (soak->iops);
  return G_SOURCE_CONTINUE;
}

/* Connects every client, runs the loop until nothing is armed, closes
 * every client. Returns the wall time in µs. */
static gint64
run_round (Soak   *soak,
           int     fault_signal)
{
  GSource *deadline = g_timeout_source_new_seconds (PHASE_DEADLINE_S);
  gint64 start;

  soak->round++;
  soak->issued = soak->answered = soak->errors = soak->timeouts = soak->abandoned = 0;
  soak->conn_failures = soak->verify_failures = 0;
  soak->fault_signal = fault_signal;
  soak->fault_after = fault_signal != 0 ? (guint64) soak->n_conns * soak->ops / 2 : 0;
  soak->faulted = FALSE;
  soak->timeout_us = fault_signal == SIGSTOP ? STALL_TIMEOUT_US : REQUEST_TIMEOUT_US;
  soak->hung = FALSE;

  g_source_set_callback (deadline, phase_deadline, soak, NULL);
  g_source_attach (deadline, soak->context);

  start = g_get_monotonic_time ();
  for (guint i = 0; i < soak->n_conns; i++)
    {
      soak->conns[i] = soak_conn_new (soak, i);
      soak_conn_connect (soak->conns[i]);
    }
  if (soak->peak_fds == 0)
    g_free (list_fds (&soak->peak_fds));
  /* Rule 8: returns once every connection and timer is disarmed. */
  iops_iops_start_watching (soak->iops);
  start = g_get_monotonic_time () - start;

  g_source_destroy (deadline);
  g_source_unref (deadline);
  g_assert_false (soak->hung);

  /* Every request sent got its answer, an error or a timeout. */
  g_assert_cmpuint (soak->issued, ==, soak->answered + soak->errors + soak->timeouts);
  for (guint i = 0; i < soak->n_conns; i++)
    {
      SoakConn *conn = soak->conns[i];

      g_assert_cmpuint (conn->n_pending, ==, 0);
      g_assert_true (conn->state == CONN_DONE || conn->state == CONN_FAILED);
      soak_conn_close (conn);
      g_assert_finalize_object (conn);
      soak->conns[i] = NULL;
    }
  g_assert_cmpuint (soak->verify_failures, ==, 0);
  return start;
}

static void
round_report (Soak       *soak,
              const char *what,
              gint64      wall_us)
{
  g_test_message ("%s round %u: %" G_GUINT64_FORMAT " ops answered in %.2f s "
                  "(%.0f ops/s), %" G_GUINT64_FORMAT " errors, %" G_GUINT64_FORMAT
                  " timeouts, %" G_GUINT64_FORMAT " never sent",
                  what, soak->round, soak->answered, wall_us / 1e6,
                  soak->answered / MAX (wall_us / 1e6, 1e-6),
                  soak->errors, soak->timeouts, soak->abandoned);
}

static void
round_full (Soak *soak)
{
  gint64 wall = run_round (soak, 0);

  round_report (soak, "full", wall);
  g_assert_cmpuint (soak->conn_failures, ==, 0);
  g_assert_cmpuint (soak->answered, ==, (guint64) soak->n_conns * soak->ops);
  soak->total_answered += soak->answered;
  soak->busy_us += wall;
}

static void
round_stalled (Soak *soak)
{
  guint64 total = (guint64) soak->n_conns * soak->ops;
  gint64 wall = run_round (soak, SIGSTOP);

  round_report (soak, "stalled", wall);
  g_subprocess_send_signal (soak->server, SIGCONT);
  g_assert_true (soak->faulted);
  /* A stopped server fails nothing by itself: the timers end it all. */
  g_assert_cmpuint (soak->timeouts, >, 0);
  g_assert_cmpuint (soak->answered, <, total);
}

static void
round_killed (Soak *soak)
{
  guint64 total = (guint64) soak->n_conns * soak->ops;
  gint64 wall = run_round (soak, SIGKILL);

  round_report (soak, "killed", wall);
  g_assert_true (soak->faulted);
  /* Killed with requests in flight: some of them failed. */
  g_assert_cmpuint (soak->errors + soak->timeouts, >, 0);
  g_assert_cmpuint (soak->answered, <, total);
}

static guint
env_uint (const char *name,
          guint       fallback)
{
  const char *value = g_getenv (name);

  return value != NULL && *value != '\0' ? (guint) g_ascii_strtoull (value, NULL, 10) : fallback;
}

/* Room for every client; memcached inherits the raised limit, which its
 * -c needs. Returns how many connections fit. */
static guint
raise_fd_limit (guint wanted)
{
  struct rlimit rl;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &rl), ==, 0);
  if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 8192)
    rl.rlim_cur = 8192;
  else
    rl.rlim_cur = rl.rlim_max;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &rl), ==, 0);
  return (guint) MIN ((rlim_t) wanted, rl.rlim_cur - FD_HEADROOM);
}

/* Runs memcached -V: checks it works, and lets GLib create its child-watch
 * worker before the fds and RSS are counted. */
static void
warm_up (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error,
                                                  memcached_path (), "-V", NULL);

  g_assert_no_error (error);
  g_subprocess_wait_check (proc, NULL, &error);
  g_assert_no_error (error);
}

static void
test_memcached_soak (void)
{
  Soak soak = { 0 };
  g_autofree char *fds_before_list = NULL, *fds_after_list = NULL;
  guint fds_before, fds_after, wanted;
  guint64 rss_before, rss_after;
  guint64 long_s = env_uint ("IOPS_SOAK_SECONDS", 0);
  gint64 started, end;
  guint cycles = 0;
  gboolean started_server = FALSE;

  if (memcached_path () == NULL)
    {
      g_test_skip ("memcached is not installed (apt-get install memcached)");
      return;
    }
#ifdef __SANITIZE_THREAD__
  /* GSubprocess reaps memcached on GLib's worker thread, and GLib is not
   * instrumented: TSan would report GLib against itself. test-threads is
   * the TSan test. */
  g_test_skip ("not run under ThreadSanitizer (GSubprocess, uninstrumented GLib)");
  return;
#endif

  wanted = env_uint ("IOPS_SOAK_CONNS", 1000);
  soak.n_conns = raise_fd_limit (wanted);
  if (soak.n_conns < wanted)
    g_test_message ("RLIMIT_NOFILE allows only %u connections", soak.n_conns);
  soak.ops = MAX (env_uint ("IOPS_SOAK_OPS", 1000), 4) & ~1u;
  soak.depth = CLAMP (env_uint ("IOPS_SOAK_DEPTH", 8), 1, MAX_DEPTH);
  soak.conns = g_new0 (SoakConn *, soak.n_conns);

  warm_up ();
  fds_before_list = list_fds (&fds_before);
  rss_before = rss_kb ();

  soak.context = g_main_context_new ();
  soak.iops = IOPS_IOPS (iops_glib_iops_new (soak.context));
  g_test_message ("backend %s, %u connections, %u ops each, %u in flight",
                  iops_glib_iops_get_backend (IOPS_GLIB_IOPS (soak.iops)),
                  soak.n_conns, soak.ops, soak.depth);

  /* memcached cannot bind port 0: pick a free one and retry on a race. */
  for (guint attempt = 0; attempt < 5 && !started_server; attempt++)
    {
      soak.port = free_port ();
      started_server = server_start (&soak);
    }
  g_assert_true (started_server);

  started = g_get_monotonic_time ();
  end = started + (gint64) long_s * G_USEC_PER_SEC;
  do
    {
      gboolean restarted = FALSE;

      round_full (&soak);
      round_stalled (&soak);
      round_killed (&soak);

      /* Same port: the clients reconnect to where they were. Its old
       * sockets may linger for a moment, hence the retries. */
      server_stop (&soak);
      for (guint attempt = 0; attempt < 20 && !restarted; attempt++)
        restarted = server_start (&soak);
      g_assert_true (restarted);
      round_full (&soak);
      cycles++;
    }
  while (g_get_monotonic_time () < end);

  server_stop (&soak);
  g_test_message ("%u cycle(s) in %.1f s: %.0f ops/s in full rounds",
                  cycles, (g_get_monotonic_time () - started) / 1e6,
                  soak.total_answered / MAX (soak.busy_us / 1e6, 1e-6));

  g_assert_finalize_object (soak.iops);
  g_main_context_unref (soak.context);
  g_free (soak.conns);

  fds_after_list = list_fds (&fds_after);
  rss_after = rss_kb ();
  g_test_message ("open sockets, epoll fds and timerfds %u -> %u (%u while "
                  "connected), VmRSS %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT " kB",
                  fds_before, fds_after, soak.peak_fds, rss_before, rss_after);
  /* The count sees the client's sockets at all. */
  g_assert_cmpuint (soak.peak_fds, >=, fds_before + soak.n_conns);
  if (fds_after != fds_before)
    g_test_message ("fds before:%s\nfds after:%s", fds_before_list, fds_after_list);
  g_assert_cmpuint (fds_after, ==, fds_before);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  /* The sanitizer holds freed memory back (ASan's quarantine); its own
   * leak check stands in for this one. */
  g_test_message ("RSS not checked under a sanitizer");
#else
  g_assert_cmpuint (rss_after, <=, rss_before + RSS_TOLERANCE_KB);
#endif
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/iops/soak/memcached", test_memcached_soak);

  return g_test_run ();
}
