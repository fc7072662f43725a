/* iops-cares.c — c-ares on an IopsIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * c-ares says what it wants through its socket-state callback (which fd,
 * readable and/or writable, or 0, 0 when it closes the fd) and when its
 * next query deadline is through ares_timeout(); the bridge answers with
 * one IopsIOEvent per socket and one IopsTimerEvent, and calls
 * ares_process_fd() when either fires.
 *
 * Ownership: the bridge owns the channel (ares_destroy() in detach), one
 * reference on the IOPS, its timer, and one reference on each socket event
 * from the socket's first callback until its 0, 0 callback, when the event
 * gets CLEANUP.
 *
 * Re-entrancy: c-ares must not be entered while it runs, and
 * ares_process_fd() runs the application's query callbacks. Whatever the
 * IOPS delivers meanwhile (from a loop nested in such a callback) is
 * remembered and processed once the outer call returns; a detach asked
 * for from such a callback waits for the same moment.
 */
#include <sys/time.h>

#include "iops-cares.h"

/* ares_timeout() truncates to whole milliseconds (it even rounds up when
 * the microseconds of "now" exceed those of the deadline), so the real
 * deadline lies anywhere within a millisecond either side of what it
 * says. Arming exactly its value fires too early up to half the time,
 * finds nothing to do, reads "0 ms" and re-arms at once: a spin until the
 * deadline. Adding one millisecond is never early, and costs at most two
 * milliseconds of lateness on a DNS timeout. */
#define TIMEOUT_SLACK_USECS 1000

struct _IopsCares
{
  IopsIOPS          *iops;
  ares_channel       channel;
  GHashTable        *sockets;         /* fd → CaresSocket, owned */
  IopsTimerEvent    *timer;           /* a CaresTimer */
  gboolean           timer_armed;
  gint64             timer_due;       /* monotonic µs, while armed */
  gint64             first_try_usecs; /* the channel's timeout of a first try */
  gboolean           timer_used;      /* watched at least once */
  gboolean           timer_pending;   /* fired while c-ares was running */
  guint              n_pending;       /* sockets with pending readiness */
  guint              processing;      /* inside ares_process_fd () */
  gboolean           detach_requested;
  gboolean           destroying;      /* inside ares_destroy () */
  ares_sock_state_cb user_sock_state_cb;
  void              *user_sock_state_data;
};

static void bridge_settle (IopsCares *self);

/* -- the events ---------------------------------------------------------- */

#define CARES_TYPE_SOCKET (cares_socket_get_type ())
G_DECLARE_FINAL_TYPE (CaresSocket, cares_socket, CARES, SOCKET, IopsIOEvent)

struct _CaresSocket
{
  IopsIOEvent     parent_instance;
  IopsCares      *bridge;   /* not a reference: the bridge owns the socket */
  ares_socket_t   fd;
  IopsEventFlags  wanted;   /* what c-ares asked for last */
  IopsEventFlags  pending;  /* delivered while c-ares was running */
  gboolean        closed;   /* c-ares closed the fd: the event got CLEANUP */
};

G_DEFINE_FINAL_TYPE (CaresSocket, cares_socket, IOPS_TYPE_IO_EVENT)

#define CARES_TYPE_TIMER (cares_timer_get_type ())
G_DECLARE_FINAL_TYPE (CaresTimer, cares_timer, CARES, TIMER, IopsTimerEvent)

struct _CaresTimer
{
  IopsTimerEvent  parent_instance;
  IopsCares      *bridge;   /* not a reference: the bridge owns the timer */
};

G_DEFINE_FINAL_TYPE (CaresTimer, cares_timer, IOPS_TYPE_TIMER_EVENT)

/* -- talking to c-ares --------------------------------------------------- */

static void
bridge_process (IopsCares     *self,
                ares_socket_t  read_fd,
                ares_socket_t  write_fd)
{
  self->processing++;
  ares_process_fd (self->channel, read_fd, write_fd);
  self->processing--;
}

static void
bridge_watch_socket (IopsCares   *self,
                     CaresSocket *sock)
{
  iops_iops_update_event (self->iops, IOPS_IO_EVENT (sock),
                          IOPS_EVACTION_WATCH, sock->wanted);
}

/* Arms the timer for the channel's next deadline, never further than one
 * first-try timeout ahead while a socket is open; disarms it when no
 * socket is open and no query waits.
 *
 * The cap is what lets the bridge see every query: c-ares says nothing
 * when a lookup starts on a socket that is already open, but the new
 * query is due one first-try timeout after it started at the earliest,
 * so a timer that never looks further ahead fires before it is due and
 * reads its deadline then. Only retries (whose timeouts double) and idle
 * ARES_FLAG_STAYOPEN sockets wake up for nothing, once per timeout.
 *
 * A timer already due earlier stays: firing early costs one call that
 * finds nothing due and re-arms, while rescheduling after every answer
 * would cost a reschedule (on epoll a timerfd_settime ()) per answer. */
static void
bridge_arm_timer (IopsCares *self)
{
  struct timeval buf;
  struct timeval *next = ares_timeout (self->channel, NULL, &buf);
  gint64 usecs = self->first_try_usecs + TIMEOUT_SLACK_USECS;
  gint64 due;

  if (next == NULL && g_hash_table_size (self->sockets) == 0)
    {
      if (self->timer_armed)
        iops_iops_update_timer (self->iops, self->timer, IOPS_EVACTION_UNWATCH, 0);
      self->timer_armed = FALSE;
      return;
    }
  if (next != NULL)
    usecs = MIN (usecs, (gint64) next->tv_sec * G_USEC_PER_SEC + next->tv_usec + TIMEOUT_SLACK_USECS);
  due = g_get_monotonic_time () + usecs;
  if (self->timer_armed && self->timer_due <= due)
    return;
  iops_iops_update_timer (self->iops, self->timer, IOPS_EVACTION_WATCH, usecs);
  self->timer_armed = TRUE;
  self->timer_due = due;
  self->timer_used = TRUE;
}

/* Calls c-ares for what @sock reported, then watches @sock again unless
 * c-ares closed it meanwhile. A one-shot watch is disarmed by now; a
 * persistent one takes the same WATCH as a no-op. */
static void
bridge_process_socket (IopsCares      *self,
                       CaresSocket    *sock,
                       IopsEventFlags  ready)
{
  ares_socket_t read_fd = (ready & IOPS_READ_EVENT) ? sock->fd : ARES_SOCKET_BAD;
  ares_socket_t write_fd = (ready & IOPS_WRITE_EVENT) ? sock->fd : ARES_SOCKET_BAD;

  bridge_process (self, read_fd, write_fd);
  if (!sock->closed)
    bridge_watch_socket (self, sock);
}

/* -- readiness while c-ares runs ----------------------------------------- */

static void
bridge_defer_socket (IopsCares      *self,
                     CaresSocket    *sock,
                     IopsEventFlags  ready)
{
  if (sock->pending == 0)
    self->n_pending++;
  sock->pending |= ready;
  /* A persistent watch would report the same readiness on every iteration
   * of the nested loop. */
  iops_iops_update_event (self->iops, IOPS_IO_EVENT (sock), IOPS_EVACTION_UNWATCH, 0);
}

/* A reference on every socket with pending readiness: processing one
 * opens and closes others. */
static GPtrArray *
bridge_collect_pending (IopsCares *self)
{
  GPtrArray *pending = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->sockets);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (CARES_SOCKET (value)->pending != 0)
      g_ptr_array_add (pending, g_object_ref (value));
  return pending;
}

static void
bridge_process_pending (IopsCares *self)
{
  g_autoptr(GPtrArray) pending = NULL;

  if (self->timer_pending)
    {
      self->timer_pending = FALSE;
      bridge_process (self, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
  pending = bridge_collect_pending (self);
  for (guint i = 0; i < pending->len && !self->detach_requested; i++)
    {
      CaresSocket *sock = g_ptr_array_index (pending, i);
      IopsEventFlags ready = sock->pending;

      if (sock->closed || ready == 0)
        continue;
      sock->pending = 0;
      self->n_pending--;
      bridge_process_socket (self, sock, ready);
    }
}

/* -- the socket-state callback ------------------------------------------- */

static CaresSocket *
bridge_open_socket (IopsCares     *self,
                    ares_socket_t  fd)
{
  CaresSocket *sock = g_object_new (CARES_TYPE_SOCKET, "fd", fd, NULL);

  sock->bridge = self;
  sock->fd = fd;
  g_hash_table_insert (self->sockets, GINT_TO_POINTER (fd), sock);
  return sock;
}

static void
bridge_want_socket (IopsCares      *self,
                    ares_socket_t   fd,
                    IopsEventFlags  wanted)
{
  CaresSocket *sock = g_hash_table_lookup (self->sockets, GINT_TO_POINTER (fd));

  if (sock == NULL)
    sock = bridge_open_socket (self, fd);
  sock->wanted = wanted;
  if (sock->pending == 0)
    bridge_watch_socket (self, sock);
}

static void
bridge_forget_socket (IopsCares   *self,
                      CaresSocket *sock)
{
  sock->closed = TRUE;
  if (sock->pending != 0)
    self->n_pending--;
  sock->pending = 0;
  iops_iops_update_event (self->iops, IOPS_IO_EVENT (sock), IOPS_EVACTION_CLEANUP, 0);
}

static void
bridge_close_socket (IopsCares     *self,
                     ares_socket_t  fd)
{
  gpointer key = GINT_TO_POINTER (fd);
  CaresSocket *sock = g_hash_table_lookup (self->sockets, key);

  if (sock == NULL)
    return;
  bridge_forget_socket (self, sock);
  g_hash_table_remove (self->sockets, key);
}

static void
bridge_sock_state (void          *data,
                   ares_socket_t  fd,
                   int            readable,
                   int            writable)
{
  IopsCares *self = data;
  IopsEventFlags wanted = (readable ? IOPS_READ_EVENT : 0) | (writable ? IOPS_WRITE_EVENT : 0);

  if (wanted == 0)
    bridge_close_socket (self, fd);
  else
    bridge_want_socket (self, fd, wanted);

  /* Outside ares_process_fd () (which bridge_settle () follows), this is
   * a lookup the application has just started, whose deadline c-ares sets
   * after this callback: the cap of bridge_arm_timer () covers it. */
  if (self->processing == 0 && !self->destroying)
    bridge_arm_timer (self);

  if (self->user_sock_state_cb != NULL)
    self->user_sock_state_cb (self->user_sock_state_data, fd, readable, writable);
}

/* -- deliveries ---------------------------------------------------------- */

static void
cares_socket_deliver (IopsIOEvent    *event,
                      IopsEventFlags  ready)
{
  CaresSocket *sock = CARES_SOCKET (event);
  IopsCares *self = sock->bridge;

  /* Closed, or a loop nested in a callback of ares_destroy (): the
   * channel is going. */
  if (sock->closed || self->destroying)
    return;
  if (self->processing > 0)
    {
      bridge_defer_socket (self, sock, ready);
      return;
    }
  g_object_ref (sock);
  bridge_process_socket (self, sock, ready);
  g_object_unref (sock);
  bridge_settle (self);
}

static void
cares_socket_ready_r (IopsIOEvent *event)
{
  cares_socket_deliver (event, IOPS_READ_EVENT);
}

static void
cares_socket_ready_w (IopsIOEvent *event)
{
  cares_socket_deliver (event, IOPS_WRITE_EVENT);
}

static void
cares_socket_ready_rw (IopsIOEvent *event)
{
  cares_socket_deliver (event, IOPS_RW_EVENT);
}

static void
cares_socket_class_init (CaresSocketClass *klass)
{
  IopsIOEventClass *event_class = IOPS_IO_EVENT_CLASS (klass);

  event_class->ready_r = cares_socket_ready_r;
  event_class->ready_w = cares_socket_ready_w;
  event_class->ready_rw = cares_socket_ready_rw;
}

static void
cares_socket_init (CaresSocket *self)
{
}

static void
cares_timer_ready (IopsTimerEvent *timer,
                   int             flags)
{
  IopsCares *self = CARES_TIMER (timer)->bridge;

  self->timer_armed = FALSE;
  if (self->destroying)
    return;
  if (self->processing > 0)
    {
      self->timer_pending = TRUE;
      return;
    }
  bridge_process (self, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  bridge_settle (self);
}

static void
cares_timer_class_init (CaresTimerClass *klass)
{
  IOPS_TIMER_EVENT_CLASS (klass)->ready = cares_timer_ready;
}

static void
cares_timer_init (CaresTimer *self)
{
}

/* -- life ---------------------------------------------------------------- */

static gboolean
bridge_forget_each (gpointer key,
                    gpointer value,
                    gpointer data)
{
  bridge_forget_socket (data, value);
  return TRUE;
}

static void
bridge_free (IopsCares *self)
{
  self->destroying = TRUE;
  /* Ends every query (their callbacks get ARES_EDESTRUCTION) and closes
   * every socket, each reported to bridge_sock_state () with 0, 0. */
  g_clear_pointer (&self->channel, ares_destroy);
  g_hash_table_foreach_remove (self->sockets, bridge_forget_each, self);
  if (self->timer_used)
    iops_iops_update_timer (self->iops, self->timer, IOPS_EVACTION_CLEANUP, 0);
  g_clear_object (&self->timer);
  g_clear_pointer (&self->sockets, g_hash_table_unref);
  g_clear_object (&self->iops);
  g_free (self);
}

/* After a delivery: whatever came while c-ares ran, a deferred detach,
 * and the timer for the deadlines c-ares has now. */
static void
bridge_settle (IopsCares *self)
{
  while (!self->detach_requested && (self->n_pending > 0 || self->timer_pending))
    bridge_process_pending (self);
  if (self->detach_requested)
    bridge_free (self);
  else
    bridge_arm_timer (self);
}

G_DEFINE_QUARK (iops-cares-error-quark, iops_cares_error)

/* The channel's timeout as c-ares settled it (from the options,
 * resolv.conf or its default), in µs. */
static gint64
first_try_timeout (ares_channel channel)
{
  struct ares_options options;
  int optmask = 0;
  gint64 usecs = 5 * G_USEC_PER_SEC;   /* c-ares's default */

  if (ares_save_options (channel, &options, &optmask) == ARES_SUCCESS)
    {
      if ((optmask & ARES_OPT_TIMEOUTMS) && options.timeout > 0)
        usecs = (gint64) options.timeout * G_TIME_SPAN_MILLISECOND;
      ares_destroy_options (&options);
    }
  return usecs;
}

/**
 * iops_cares_attach:
 * @iops: the IOPS to run the channel on: any implementation
 * @options: (nullable): options for `ares_init_options()`, or `NULL`
 * @optmask: the `ARES_OPT_*` bits of @options that are set; 0 with no @options
 * @error: return location for a #GError in the `IOPS_CARES_ERROR` domain
 *
 * Creates a c-ares channel whose sockets and query timeouts run on @iops.
 *
 * The channel is made by `ares_init_options()` with @options, @optmask
 * and the bridge's own socket-state callback: c-ares only takes that
 * callback when a channel is created, so the bridge creates it. A
 * callback of the caller's in @options (`ARES_OPT_SOCK_STATE_CB`) is
 * called too, after the bridge's. Get the channel with
 * `iops_cares_get_channel()` and start lookups on it as usual
 * (`ares_getaddrinfo()`, `ares_gethostbyname()`, `ares_query()`, …); they
 * complete whenever the context of @iops is iterated.
 *
 * The bridge keeps a reference on @iops until `iops_cares_detach()`.
 * Call every function of the bridge and of c-ares on its channel from the
 * thread that iterates @iops.
 *
 * Returns: (transfer full) (nullable): the bridge, or `NULL` with @error
 *   set when c-ares could not create the channel
 *
 * Since: 1.0
 */
IopsCares *
iops_cares_attach (IopsIOPS                  *iops,
                   const struct ares_options *options,
                   int                        optmask,
                   GError                   **error)
{
  struct ares_options opts = { 0 };
  IopsCares *self;
  int status;

  g_return_val_if_fail (IOPS_IS_IOPS (iops), NULL);
  g_return_val_if_fail (options != NULL || optmask == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_new0 (IopsCares, 1);
  if (options != NULL)
    opts = *options;
  if (optmask & ARES_OPT_SOCK_STATE_CB)
    {
      self->user_sock_state_cb = opts.sock_state_cb;
      self->user_sock_state_data = opts.sock_state_cb_data;
    }
  opts.sock_state_cb = bridge_sock_state;
  opts.sock_state_cb_data = self;

  self->iops = g_object_ref (iops);
  self->sockets = g_hash_table_new_full (NULL, NULL, NULL, g_object_unref);
  self->timer = g_object_new (CARES_TYPE_TIMER, NULL);
  CARES_TIMER (self->timer)->bridge = self;

  status = ares_init_options (&self->channel, &opts, optmask | ARES_OPT_SOCK_STATE_CB);
  if (status != ARES_SUCCESS)
    {
      g_set_error (error, IOPS_CARES_ERROR, status,
                   "c-ares could not create a channel: %s", ares_strerror (status));
      self->channel = NULL;
      bridge_free (self);
      return NULL;
    }
  self->first_try_usecs = first_try_timeout (self->channel);
  return self;
}

/**
 * iops_cares_get_channel:
 * @self: a bridge
 *
 * The channel the bridge created and runs. Use it with every c-ares call
 * except `ares_destroy()` (`iops_cares_detach()` does that) and
 * `ares_dup()` (a duplicate would report its sockets to this bridge:
 * attach a new bridge instead).
 *
 * Returns: (transfer none): the channel, owned by @self
 *
 * Since: 1.0
 */
ares_channel
iops_cares_get_channel (IopsCares *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return self->channel;
}

/**
 * iops_cares_detach:
 * @self: (nullable) (transfer full): a bridge, or `NULL`
 *
 * Destroys the channel and lets go of the IOPS.
 *
 * `ares_destroy()` ends every pending query, whose callback gets
 * `ARES_EDESTRUCTION`, and closes every socket; the bridge then CLEANUPs
 * its socket events and its timer and drops its reference on the IOPS,
 * so that nothing of the channel stays armed or held. Do not call
 * `ares_destroy()` on the channel yourself.
 *
 * Called from a callback that the bridge runs (a query's callback inside
 * its `ares_process_fd()`), the detach is done as soon as c-ares returns,
 * before the bridge's event callback does: c-ares must not destroy a
 * channel it is running. Called from inside `ares_destroy()` (a
 * callback getting `ARES_EDESTRUCTION`), it does nothing more.
 *
 * Since: 1.0
 */
void
iops_cares_detach (IopsCares *self)
{
  if (self == NULL || self->destroying)
    return;
  if (self->processing > 0)
    {
      self->detach_requested = TRUE;
      return;
    }
  bridge_free (self);
}
