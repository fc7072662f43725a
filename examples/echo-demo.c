/* echo-demo.c — a TCP echo server and its clients, driven through IopsIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One process, one thread, one IopsGLibIOPS. A server listens on
 * 127.0.0.1 (port 0: the kernel picks one), N clients connect to it and each
 * makes K request/reply round trips, one at a time, every request guarded by
 * a timeout timer. Every socket is non-blocking, and every accept, connect,
 * read and write happens in a callback of an IopsIOEvent or IopsTimerEvent:
 * the program only talks to the IopsIOPS interface, exactly as a client
 * library with an IOPS-style event plugin would.
 *
 * Two ways of receiving callbacks are shown: the I/O objects subclass
 * IopsIOEvent / IopsTimerEvent and override the ready vfuncs (the fast path),
 * and the progress ticker is a plain IopsTimerEvent with a "ready" signal
 * handler (what bindings use).
 */
#include <errno.h>
#include <locale.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iops-glib.h>

/* Every request and reply is one fixed-size frame: client id, sequence
 * number, then a payload derived from both, so a reply can be checked
 * byte for byte. */
#define FRAME_LEN 32
#define PROGRESS_INTERVAL_US (250 * G_TIME_SPAN_MILLISECOND)
#define MAX_REPORTED_ERRORS 10

typedef struct _Demo Demo;

static void demo_error            (Demo       *demo,
                                   const char *format,
                                   ...) G_GNUC_PRINTF (2, 3);
static void demo_client_finished  (Demo       *demo);

/* -- frames ------------------------------------------------------------- */

static void
frame_build (guint8  frame[FRAME_LEN],
             guint32 client_id,
             guint32 seq)
{
  guint32 be_id = GUINT32_TO_BE (client_id);
  guint32 be_seq = GUINT32_TO_BE (seq);

  memcpy (frame, &be_id, 4);
  memcpy (frame + 4, &be_seq, 4);
  for (guint i = 8; i < FRAME_LEN; i++)
    frame[i] = (guint8) (client_id * 31 + seq * 7 + i);
}

static void
frame_parse (const guint8  frame[FRAME_LEN],
             guint32      *client_id,
             guint32      *seq)
{
  guint32 be_id, be_seq;

  memcpy (&be_id, frame, 4);
  memcpy (&be_seq, frame + 4, 4);
  *client_id = GUINT32_FROM_BE (be_id);
  *seq = GUINT32_FROM_BE (be_seq);
}

/* -- shared state ------------------------------------------------------- */

typedef struct _EchoListener EchoListener;

struct _Demo
{
  IopsIOPS       *iops;

  /* options */
  guint           n_clients;
  guint           rounds;
  guint           drop_every;     /* server swallows every Nth request */
  gint64          timeout_us;

  struct sockaddr_in addr;        /* where the server listens */
  EchoListener   *listener;
  GPtrArray      *conns;          /* EchoConn, server side */
  GPtrArray      *clients;        /* EchoClient */
  IopsTimerEvent *progress;

  /* counters */
  guint           accepted;
  guint           connected;
  guint           clients_done;
  guint           server_closed;
  guint64         round_trips;
  guint64         timeouts;
  guint64         dropped;
  guint64         stale;
  guint           errors;

  gint64          t_start;
  gint64          t_end;
  gint64          last_tick;
  guint64         last_tick_round_trips;
};

static void
demo_error (Demo       *demo,
            const char *format,
            ...)
{
  g_autofree char *message = NULL;
  va_list args;

  demo->errors++;
  if (demo->errors > MAX_REPORTED_ERRORS)
    return;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("echo-demo: error: %s\n", message);
}

static void
set_nodelay (int fd)
{
  int one = 1;

  /* One small frame per round trip: do not let Nagle hold it back. */
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

/* -- server: one accepted connection ------------------------------------ */

#define ECHO_TYPE_CONN (echo_conn_get_type ())
G_DECLARE_FINAL_TYPE (EchoConn, echo_conn, ECHO, CONN, IopsIOEvent)

struct _EchoConn
{
  IopsIOEvent parent_instance;
  Demo       *demo;
  int         fd;
  guint       frames;             /* requests received */
  guint8      in[64 * FRAME_LEN];
  gsize       in_len;
  guint8      out[64 * FRAME_LEN];
  gsize       out_len;
  gsize       out_sent;
};

G_DEFINE_FINAL_TYPE (EchoConn, echo_conn, IOPS_TYPE_IO_EVENT)

static int
echo_conn_fileno (IopsIOEvent *event)
{
  return ECHO_CONN (event)->fd;
}

/* Idempotent; also used at shutdown for connections still open. */
static void
echo_conn_close (EchoConn *self)
{
  if (self->fd < 0)
    return;
  iops_iops_update_event (self->demo->iops, IOPS_IO_EVENT (self),
                          IOPS_EVACTION_CLEANUP, 0);
  close_fd (&self->fd);
  self->demo->server_closed++;
}

static void
echo_conn_flush (EchoConn *self)
{
  while (self->out_sent < self->out_len)
    {
      ssize_t n = send (self->fd, self->out + self->out_sent,
                        self->out_len - self->out_sent, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
          iops_iops_update_event (self->demo->iops, IOPS_IO_EVENT (self),
                                  IOPS_EVACTION_WATCH, IOPS_WRITE_EVENT);
          return;
        }
      if (n < 0)
        {
          demo_error (self->demo, "server send: %s", g_strerror (errno));
          echo_conn_close (self);
          return;
        }
      self->out_sent += (gsize) n;
    }

  /* Everything echoed: only now read more, which bounds the buffers. */
  self->out_len = self->out_sent = 0;
  iops_iops_update_event (self->demo->iops, IOPS_IO_EVENT (self),
                          IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
}

static void
echo_conn_take_frames (EchoConn *self)
{
  gsize done = 0;

  for (; self->in_len - done >= FRAME_LEN; done += FRAME_LEN)
    {
      self->frames++;
      if (self->demo->drop_every > 0 && self->frames % self->demo->drop_every == 0)
        {
          self->demo->dropped++;   /* the client's timeout will notice */
          continue;
        }
      memcpy (self->out + self->out_len, self->in + done, FRAME_LEN);
      self->out_len += FRAME_LEN;
    }
  memmove (self->in, self->in + done, self->in_len - done);
  self->in_len -= done;
}

static void
echo_conn_read (EchoConn *self)
{
  ssize_t n = recv (self->fd, self->in + self->in_len,
                    sizeof self->in - self->in_len, 0);

  if (n == 0)
    {
      echo_conn_close (self);   /* the client is done */
      return;
    }
  if (n < 0)
    {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        iops_iops_update_event (self->demo->iops, IOPS_IO_EVENT (self),
                                IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
      else
        {
          demo_error (self->demo, "server recv: %s", g_strerror (errno));
          echo_conn_close (self);
        }
      return;
    }

  self->in_len += (gsize) n;
  echo_conn_take_frames (self);
  echo_conn_flush (self);
}

/* The watch is READ or WRITE, never both, so whichever vfunc is called the
 * pending direction decides. An error reaches read() or send() here. */
static void
echo_conn_ready (IopsIOEvent *event)
{
  EchoConn *self = ECHO_CONN (event);

  if (self->out_sent < self->out_len)
    echo_conn_flush (self);
  else
    echo_conn_read (self);
}

static void
echo_conn_class_init (EchoConnClass *klass)
{
  IopsIOEventClass *event_class = IOPS_IO_EVENT_CLASS (klass);

  event_class->fileno = echo_conn_fileno;
  event_class->ready_r = echo_conn_ready;
  event_class->ready_w = echo_conn_ready;
  event_class->ready_rw = echo_conn_ready;
}

static void
echo_conn_init (EchoConn *self)
{
  self->fd = -1;
}

static EchoConn *
echo_conn_new (Demo *demo,
               int   fd)
{
  EchoConn *self = g_object_new (ECHO_TYPE_CONN, NULL);

  self->demo = demo;
  self->fd = fd;
  return self;
}

/* -- server: the listening socket --------------------------------------- */

#define ECHO_TYPE_LISTENER (echo_listener_get_type ())
G_DECLARE_FINAL_TYPE (EchoListener, echo_listener, ECHO, LISTENER, IopsIOEvent)

struct _EchoListener
{
  IopsIOEvent parent_instance;
  Demo       *demo;
  int         fd;
};

G_DEFINE_FINAL_TYPE (EchoListener, echo_listener, IOPS_TYPE_IO_EVENT)

static int
echo_listener_fileno (IopsIOEvent *event)
{
  return ECHO_LISTENER (event)->fd;
}

static void
echo_listener_close (EchoListener *self)
{
  if (self->fd < 0)
    return;
  iops_iops_update_event (self->demo->iops, IOPS_IO_EVENT (self),
                          IOPS_EVACTION_CLEANUP, 0);
  close_fd (&self->fd);
}

static void
echo_listener_accept_one (EchoListener *self,
                          int           fd)
{
  Demo *demo = self->demo;
  EchoConn *conn = echo_conn_new (demo, fd);

  set_nodelay (fd);
  g_ptr_array_add (demo->conns, conn);   /* the array owns it */
  iops_iops_update_event (demo->iops, IOPS_IO_EVENT (conn),
                          IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  demo->accepted++;
}

static void
echo_listener_ready_r (IopsIOEvent *event)
{
  EchoListener *self = ECHO_LISTENER (event);
  Demo *demo = self->demo;

  for (;;)
    {
      int fd = accept4 (self->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

      if (fd >= 0)
        {
          echo_listener_accept_one (self, fd);
          continue;
        }
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        demo_error (demo, "accept: %s", g_strerror (errno));
      break;
    }

  /* Everyone is in: stop listening. */
  if (demo->accepted >= demo->n_clients)
    echo_listener_close (self);
  else
    iops_iops_update_event (demo->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
}

static void
echo_listener_class_init (EchoListenerClass *klass)
{
  IopsIOEventClass *event_class = IOPS_IO_EVENT_CLASS (klass);

  event_class->fileno = echo_listener_fileno;
  event_class->ready_r = echo_listener_ready_r;
}

static void
echo_listener_init (EchoListener *self)
{
  self->fd = -1;
}

/* Binds 127.0.0.1 port 0 and reads back the port the kernel chose. */
static EchoListener *
echo_listener_new (Demo    *demo,
                   GError **error)
{
  g_autoptr(EchoListener) self = g_object_new (ECHO_TYPE_LISTENER, NULL);
  socklen_t len = sizeof demo->addr;

  self->demo = demo;
  self->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (self->fd < 0)
    goto fail;

  memset (&demo->addr, 0, sizeof demo->addr);
  demo->addr.sin_family = AF_INET;
  demo->addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  demo->addr.sin_port = 0;
  if (bind (self->fd, (struct sockaddr *) &demo->addr, sizeof demo->addr) < 0 ||
      listen (self->fd, SOMAXCONN) < 0 ||
      getsockname (self->fd, (struct sockaddr *) &demo->addr, &len) < 0)
    goto fail;

  return g_steal_pointer (&self);

fail:
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
               "listening on 127.0.0.1: %s", g_strerror (errno));
  close_fd (&self->fd);
  return NULL;
}

/* -- client: its request timer ------------------------------------------ */

typedef struct _EchoClient EchoClient;
static void echo_client_timed_out (EchoClient *client);

#define ECHO_TYPE_REQUEST_TIMER (echo_request_timer_get_type ())
G_DECLARE_FINAL_TYPE (EchoRequestTimer, echo_request_timer, ECHO, REQUEST_TIMER, IopsTimerEvent)

struct _EchoRequestTimer
{
  IopsTimerEvent parent_instance;
  EchoClient    *client;   /* not a reference: the client owns this timer */
};

G_DEFINE_FINAL_TYPE (EchoRequestTimer, echo_request_timer, IOPS_TYPE_TIMER_EVENT)

static void
echo_request_timer_ready (IopsTimerEvent *timer,
                          int             flags)
{
  echo_client_timed_out (ECHO_REQUEST_TIMER (timer)->client);
}

static void
echo_request_timer_class_init (EchoRequestTimerClass *klass)
{
  IOPS_TIMER_EVENT_CLASS (klass)->ready = echo_request_timer_ready;
}

static void
echo_request_timer_init (EchoRequestTimer *self)
{
}

/* -- client ------------------------------------------------------------- */

typedef enum {
  CLIENT_CONNECTING,
  CLIENT_RUNNING,
  CLIENT_DONE,
} ClientState;

#define ECHO_TYPE_CLIENT (echo_client_get_type ())
G_DECLARE_FINAL_TYPE (EchoClient, echo_client, ECHO, CLIENT, IopsIOEvent)

struct _EchoClient
{
  IopsIOEvent       parent_instance;
  Demo             *demo;
  EchoRequestTimer *timer;
  int               fd;
  guint32           id;
  guint32           seq;        /* the request in flight, or the next one */
  ClientState       state;
  gboolean          awaiting;   /* a request is out and its timer armed */
  guint8            out[FRAME_LEN];
  gsize             out_sent;
  guint8            in[4 * FRAME_LEN];
  gsize             in_len;
};

G_DEFINE_FINAL_TYPE (EchoClient, echo_client, IOPS_TYPE_IO_EVENT)

static void
echo_client_watch (EchoClient     *self,
                   IopsEventFlags  flags)
{
  iops_iops_update_event (self->demo->iops, IOPS_IO_EVENT (self),
                          IOPS_EVACTION_WATCH, flags);
}

static void
echo_client_arm_timer (EchoClient *self)
{
  iops_iops_update_timer (self->demo->iops, IOPS_TIMER_EVENT (self->timer),
                          IOPS_EVACTION_WATCH, self->demo->timeout_us);
}

/* Idempotent; CLEANUP makes the IOPS let go of both events. */
static void
echo_client_finish (EchoClient *self)
{
  if (self->state == CLIENT_DONE)
    return;
  self->state = CLIENT_DONE;
  iops_iops_update_timer (self->demo->iops, IOPS_TIMER_EVENT (self->timer),
                          IOPS_EVACTION_CLEANUP, 0);
  iops_iops_update_event (self->demo->iops, IOPS_IO_EVENT (self),
                          IOPS_EVACTION_CLEANUP, 0);
  close_fd (&self->fd);   /* the server sees EOF and closes its side */
  demo_client_finished (self->demo);
}

static void
echo_client_flush (EchoClient *self)
{
  while (self->out_sent < FRAME_LEN)
    {
      ssize_t n = send (self->fd, self->out + self->out_sent,
                        FRAME_LEN - self->out_sent, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
          echo_client_watch (self, IOPS_WRITE_EVENT);
          return;
        }
      if (n < 0)
        {
          demo_error (self->demo, "client %u send: %s", self->id, g_strerror (errno));
          echo_client_finish (self);
          return;
        }
      self->out_sent += (gsize) n;
    }
  echo_client_watch (self, IOPS_READ_EVENT);
}

static void
echo_client_send_next (EchoClient *self)
{
  if (self->seq >= self->demo->rounds)
    {
      echo_client_finish (self);
      return;
    }

  frame_build (self->out, self->id, self->seq);
  self->out_sent = 0;
  self->awaiting = TRUE;
  echo_client_arm_timer (self);
  echo_client_flush (self);
}

static void
echo_client_take_frame (EchoClient   *self,
                        const guint8  frame[FRAME_LEN])
{
  guint8 expected[FRAME_LEN];
  guint32 id, seq;

  frame_parse (frame, &id, &seq);
  if (id == self->id && seq < self->seq)
    {
      self->demo->stale++;   /* the reply to a request that timed out */
      return;
    }

  frame_build (expected, self->id, self->seq);
  if (!self->awaiting || memcmp (frame, expected, FRAME_LEN) != 0)
    {
      demo_error (self->demo, "client %u: unexpected reply (client %u, seq %u) "
                  "while waiting for seq %u", self->id, id, seq, self->seq);
      return;
    }

  /* The reply is in: cancel its timeout. */
  iops_iops_update_timer (self->demo->iops, IOPS_TIMER_EVENT (self->timer),
                          IOPS_EVACTION_UNWATCH, 0);
  self->awaiting = FALSE;
  self->seq++;
  self->demo->round_trips++;
}

static void
echo_client_read (EchoClient *self)
{
  gsize done = 0;
  ssize_t n = recv (self->fd, self->in + self->in_len,
                    sizeof self->in - self->in_len, 0);

  if (n <= 0)
    {
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        {
          echo_client_watch (self, IOPS_READ_EVENT);
          return;
        }
      demo_error (self->demo, "client %u recv: %s", self->id,
                  n == 0 ? "server closed the connection" : g_strerror (errno));
      echo_client_finish (self);
      return;
    }

  self->in_len += (gsize) n;
  for (; self->in_len - done >= FRAME_LEN; done += FRAME_LEN)
    echo_client_take_frame (self, self->in + done);
  memmove (self->in, self->in + done, self->in_len - done);
  self->in_len -= done;

  if (self->awaiting)
    echo_client_watch (self, IOPS_READ_EVENT);
  else
    echo_client_send_next (self);
}

static void
echo_client_connected (EchoClient *self)
{
  int err = 0;
  socklen_t len = sizeof err;

  if (getsockopt (self->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    err = errno;
  if (err != 0)
    {
      demo_error (self->demo, "client %u connect: %s", self->id, g_strerror (err));
      echo_client_finish (self);
      return;
    }

  /* send_next() re-arms the connect timeout for the first request: a
   * WATCH on an armed timer reschedules it. */
  self->state = CLIENT_RUNNING;
  self->awaiting = FALSE;
  self->demo->connected++;
  echo_client_send_next (self);
}

static void
echo_client_ready (IopsIOEvent *event)
{
  EchoClient *self = ECHO_CLIENT (event);

  if (self->state == CLIENT_CONNECTING)
    echo_client_connected (self);
  else if (self->out_sent < FRAME_LEN)
    echo_client_flush (self);
  else
    echo_client_read (self);
}

static void
echo_client_timed_out (EchoClient *self)
{
  Demo *demo = self->demo;

  if (self->state == CLIENT_CONNECTING)
    {
      demo_error (demo, "client %u: connect timed out", self->id);
      echo_client_finish (self);
      return;
    }
  if (self->out_sent < FRAME_LEN)
    {
      /* A half-sent frame cannot be taken back: give up on this client. */
      demo_error (demo, "client %u: send timed out", self->id);
      echo_client_finish (self);
      return;
    }

  /* No reply in time: count it and move on to the next request. */
  demo->timeouts++;
  self->awaiting = FALSE;
  self->seq++;
  echo_client_send_next (self);
}

static int
echo_client_fileno (IopsIOEvent *event)
{
  return ECHO_CLIENT (event)->fd;
}

static void
echo_client_dispose (GObject *object)
{
  EchoClient *self = ECHO_CLIENT (object);

  g_clear_object (&self->timer);

  G_OBJECT_CLASS (echo_client_parent_class)->dispose (object);
}

static void
echo_client_class_init (EchoClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  IopsIOEventClass *event_class = IOPS_IO_EVENT_CLASS (klass);

  object_class->dispose = echo_client_dispose;
  event_class->fileno = echo_client_fileno;
  event_class->ready_r = echo_client_ready;
  event_class->ready_w = echo_client_ready;
  event_class->ready_rw = echo_client_ready;
}

static void
echo_client_init (EchoClient *self)
{
  self->fd = -1;
  self->out_sent = FRAME_LEN;
  self->timer = g_object_new (ECHO_TYPE_REQUEST_TIMER, NULL);
  self->timer->client = self;
}

/* Starts a non-blocking connect; its completion is the first WRITE event. */
static EchoClient *
echo_client_new (Demo    *demo,
                 guint32  id)
{
  EchoClient *self = g_object_new (ECHO_TYPE_CLIENT, NULL);

  self->demo = demo;
  self->id = id;
  self->state = CLIENT_CONNECTING;
  self->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (self->fd < 0 ||
      (connect (self->fd, (struct sockaddr *) &demo->addr, sizeof demo->addr) < 0 &&
       errno != EINPROGRESS))
    {
      demo_error (demo, "client %u connect: %s", id, g_strerror (errno));
      self->state = CLIENT_DONE;
      close_fd (&self->fd);
      demo_client_finished (demo);
      return self;
    }

  set_nodelay (self->fd);
  self->awaiting = TRUE;
  echo_client_arm_timer (self);
  echo_client_watch (self, IOPS_WRITE_EVENT);
  return self;
}

/* -- the whole run ------------------------------------------------------ */

static void
demo_client_finished (Demo *demo)
{
  demo->clients_done++;
  if (demo->clients_done < demo->n_clients)
    return;

  /* The last client is done. The server's connections close as their
   * EOFs arrive; once they have, nothing is armed and start_watching()
   * returns by itself. */
  demo->t_end = g_get_monotonic_time ();
  iops_iops_update_timer (demo->iops, demo->progress, IOPS_EVACTION_CLEANUP, 0);
  if (demo->listener != NULL)
    echo_listener_close (demo->listener);
}

static void
on_progress (IopsTimerEvent *timer,
             int             flags,
             gpointer        user_data)
{
  Demo *demo = user_data;
  gint64 now = g_get_monotonic_time ();
  double interval = (now - demo->last_tick) / (double) G_USEC_PER_SEC;
  guint64 recent = demo->round_trips - demo->last_tick_round_trips;

  g_print ("%7.2f s  %10" G_GUINT64_FORMAT " round trips  %9.0f/s\n",
           (now - demo->t_start) / (double) G_USEC_PER_SEC,
           demo->round_trips, interval > 0 ? recent / interval : 0.0);
  demo->last_tick = now;
  demo->last_tick_round_trips = demo->round_trips;

  /* Timers are one-shot: re-arm for the next tick. */
  iops_iops_update_timer (demo->iops, timer, IOPS_EVACTION_WATCH, PROGRESS_INTERVAL_US);
}

/* Each client needs one fd, and so does its server side. */
static void
raise_fd_limit (guint n_clients)
{
  struct rlimit rl;
  rlim_t wanted = 2 * (rlim_t) n_clients + 64;

  if (getrlimit (RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= wanted)
    return;
  rl.rlim_cur = MIN (wanted, rl.rlim_max);
  setrlimit (RLIMIT_NOFILE, &rl);
}

static void
demo_shutdown (Demo *demo)
{
  /* Normally all of this is done already; after a failure it is not. */
  for (guint i = 0; i < demo->clients->len; i++)
    echo_client_finish (g_ptr_array_index (demo->clients, i));
  for (guint i = 0; i < demo->conns->len; i++)
    echo_conn_close (g_ptr_array_index (demo->conns, i));
  if (demo->listener != NULL)
    echo_listener_close (demo->listener);
  iops_iops_update_timer (demo->iops, demo->progress, IOPS_EVACTION_CLEANUP, 0);

  g_clear_object (&demo->listener);
  g_clear_pointer (&demo->conns, g_ptr_array_unref);
  g_clear_pointer (&demo->clients, g_ptr_array_unref);
  g_clear_object (&demo->progress);
  g_clear_object (&demo->iops);
}

static gboolean
check (const char *what,
       guint64     got,
       guint64     expected)
{
  gboolean ok = got == expected;

  g_print ("%-13s %10" G_GUINT64_FORMAT "  (expected %" G_GUINT64_FORMAT ")%s\n",
           what, got, expected, ok ? "" : "  WRONG");
  return ok;
}

static gboolean
demo_report (Demo *demo)
{
  guint64 per_client_drops = demo->drop_every > 0 ? demo->rounds / demo->drop_every : 0;
  guint64 expected_timeouts = (guint64) demo->n_clients * per_client_drops;
  guint64 expected_rt = (guint64) demo->n_clients * demo->rounds - expected_timeouts;
  double elapsed = (demo->t_end - demo->t_start) / (double) G_USEC_PER_SEC;
  gboolean ok = TRUE;

  g_print ("\n");
  ok &= check ("connections", demo->accepted, demo->n_clients);
  ok &= check ("connected", demo->connected, demo->n_clients);
  ok &= check ("round trips", demo->round_trips, expected_rt);
  ok &= check ("timeouts", demo->timeouts, expected_timeouts);
  if (demo->drop_every > 0)
    ok &= check ("dropped", demo->dropped, expected_timeouts);
  ok &= check ("closed", demo->server_closed, demo->n_clients);
  ok &= check ("errors", demo->errors, 0);
  if (demo->stale > 0)
    g_print ("%-13s %10" G_GUINT64_FORMAT "  (late replies, ignored)\n",
             "stale", demo->stale);
  g_print ("%-13s %10.3f s\n", "elapsed", elapsed);
  g_print ("%-13s %10.0f round trips/s\n", "rate",
           elapsed > 0 ? demo->round_trips / elapsed : 0.0);
  g_print ("%s\n", ok ? "OK" : "FAILED");
  return ok;
}

static gboolean
parse_options (Demo      *demo,
               gboolean  *persistent,
               char     **backend,
               int       *argc,
               char    ***argv,
               GError   **error)
{
  int clients = 100, rounds = 1000, timeout_ms = 1000, drop_every = 0;
  GOptionEntry entries[] = {
    { "clients", 'c', 0, G_OPTION_ARG_INT, &clients, "Number of concurrent clients (100)", "N" },
    { "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds, "Round trips per client (1000)", "K" },
    { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout_ms, "Timeout of each request in ms (1000)", "MS" },
    { "drop-every", 'd', 0, G_OPTION_ARG_INT, &drop_every,
      "Server swallows every Nth request of a connection, to exercise timeouts (0: never)", "N" },
    { "persistent", 'p', 0, G_OPTION_ARG_NONE, persistent,
      "Use persistent watches instead of one-shot ones", NULL },
    { "backend", 'b', 0, G_OPTION_ARG_STRING, backend,
      "Backend of the IopsGLibIOPS: epoll or gsource (default: the best one)", "NAME" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context =
    g_option_context_new ("- TCP echo server and clients on one IopsGLibIOPS");

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, argc, argv, error))
    return FALSE;
  if (clients < 1 || rounds < 1 || timeout_ms < 0 || drop_every < 0)
    {
      g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           "--clients and --rounds must be at least 1, "
                           "--timeout and --drop-every at least 0");
      return FALSE;
    }

  demo->n_clients = (guint) clients;
  demo->rounds = (guint) rounds;
  demo->timeout_us = (gint64) timeout_ms * G_TIME_SPAN_MILLISECOND;
  demo->drop_every = (guint) drop_every;
  return TRUE;
}

int
main (int    argc,
      char **argv)
{
  Demo demo = { 0 };
  gboolean persistent = FALSE;
  g_autofree char *backend = NULL;
  g_autoptr(GError) error = NULL;
  gboolean ok;

  setlocale (LC_ALL, "");
  if (!parse_options (&demo, &persistent, &backend, &argc, &argv, &error))
    {
      g_printerr ("echo-demo: %s\n", error->message);
      return 2;
    }
  raise_fd_limit (demo.n_clients);

  /* No context: the thread-default one, here the global default context.
   * No backend: IOPS_GLIB_BACKEND, else the best one of the platform. */
  demo.iops = g_object_new (IOPS_TYPE_GLIB_IOPS,
                            "backend", backend,
                            "persistent", persistent,
                            NULL);
  demo.conns = g_ptr_array_new_with_free_func (g_object_unref);
  demo.clients = g_ptr_array_new_with_free_func (g_object_unref);
  demo.progress = iops_iops_timer_event_factory (demo.iops);
  g_signal_connect (demo.progress, "ready", G_CALLBACK (on_progress), &demo);

  demo.listener = echo_listener_new (&demo, &error);
  if (demo.listener == NULL)
    {
      g_printerr ("echo-demo: %s\n", error->message);
      demo_shutdown (&demo);
      return 1;
    }

  g_print ("echo-demo: %u clients x %u round trips on 127.0.0.1:%u, "
           "%s backend, %s watches\n",
           demo.n_clients, demo.rounds, ntohs (demo.addr.sin_port),
           iops_glib_iops_get_backend (IOPS_GLIB_IOPS (demo.iops)),
           persistent ? "persistent" : "one-shot");

  demo.t_start = demo.last_tick = g_get_monotonic_time ();
  iops_iops_update_event (demo.iops, IOPS_IO_EVENT (demo.listener),
                          IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  iops_iops_update_timer (demo.iops, demo.progress, IOPS_EVACTION_WATCH,
                          PROGRESS_INTERVAL_US);
  for (guint i = 0; i < demo.n_clients; i++)
    g_ptr_array_add (demo.clients, echo_client_new (&demo, i));

  /* Runs until nothing is armed: every client and connection closed. */
  iops_iops_start_watching (demo.iops);

  if (demo.t_end == 0)
    {
      g_printerr ("echo-demo: error: the loop returned before every client finished\n");
      demo.errors++;
      demo.t_end = g_get_monotonic_time ();
    }
  ok = demo_report (&demo);
  demo_shutdown (&demo);
  return ok ? 0 : 1;
}
