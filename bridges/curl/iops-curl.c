/* iops-curl.c — libcurl's multi_socket API on an IopsIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * curl tells the bridge which sockets to watch (CURLMOPT_SOCKETFUNCTION)
 * and when to call it back (CURLMOPT_TIMERFUNCTION); the bridge turns each
 * socket into an IopsCurlSocket event and the timer into one
 * IopsCurlTimer, re-armed for every new deadline, and hands readiness back
 * with curl_multi_socket_action().
 *
 * Ownership: the bridge holds one reference on the IOPS for its whole
 * life, one on its timer event, and one on each socket event, live (from
 * curl's announcement of the socket until CURL_POLL_REMOVE; curl's
 * socketp borrows it) or parked (unwatched, until curl announces that
 * number again, or detach). The bridge itself is counted: one reference
 * for being attached, one for each IOPS callback running on it, so that a
 * done callback may detach with the bridge still on the stack.
 */
#include "iops-curl.h"

/* -- the events ---------------------------------------------------------- */

#define IOPS_CURL_TYPE_SOCKET (iops_curl_socket_get_type ())
G_DECLARE_FINAL_TYPE (IopsCurlSocket, iops_curl_socket, IOPS_CURL, SOCKET, IopsIOEvent)

#define IOPS_CURL_TYPE_TIMER (iops_curl_timer_get_type ())
G_DECLARE_FINAL_TYPE (IopsCurlTimer, iops_curl_timer, IOPS_CURL, TIMER, IopsTimerEvent)

struct _IopsCurlSocket
{
  IopsIOEvent     parent_instance;
  IopsCurl       *bridge;  /* NULL once dropped (cleaned up) */
  curl_socket_t   fd;      /* also the event's "fd": the IOPS reads it at WATCH */
  IopsEventFlags  flags;   /* what curl asked for last */
  guint           serial;  /* counts curl's requests for this socket */
  int             deferred;  /* CURL_CSELECT_* seen while curl was busy */
  GList           link;    /* in the bridge's live sockets */
};

struct _IopsCurlTimer
{
  IopsTimerEvent  parent_instance;
  IopsCurl       *bridge;  /* NULL once detached */
};

G_DEFINE_FINAL_TYPE (IopsCurlSocket, iops_curl_socket, IOPS_TYPE_IO_EVENT)
G_DEFINE_FINAL_TYPE (IopsCurlTimer, iops_curl_timer, IOPS_TYPE_TIMER_EVENT)

struct _IopsCurl
{
  grefcount         ref_count;
  CURLM            *multi;           /* NULL once detached */
  IopsIOPS         *iops;
  IopsCurlTimer    *timer;
  GQueue            sockets;         /* IopsCurlSocket: live, curl's socketp */
  GHashTable       *parked;          /* fd → IopsCurlSocket curl removed, unwatched */
  guint             peak_live;       /* most live sockets at once */
  IopsCurlDoneFunc  done;
  gpointer          user_data;
  GDestroyNotify    destroy;
  guint             in_curl;         /* curl_multi_socket_action() calls on the stack */
  gboolean          detach_pending;  /* iops_curl_detach() came from inside one */
  /* Readiness and a timeout that came while curl was on the stack (a loop
   * iterated from inside a curl callback), for when it is off it again. */
  GPtrArray        *deferred;        /* IopsCurlSocket, a reference each */
  gboolean          timeout_deferred;
};

static void socket_ready (IopsCurlSocket *sock,
                          int             ev_bitmask);

static void
iops_curl_socket_ready_r (IopsIOEvent *event)
{
  socket_ready (IOPS_CURL_SOCKET (event), CURL_CSELECT_IN);
}

static void
iops_curl_socket_ready_w (IopsIOEvent *event)
{
  socket_ready (IOPS_CURL_SOCKET (event), CURL_CSELECT_OUT);
}

static void
iops_curl_socket_ready_rw (IopsIOEvent *event)
{
  socket_ready (IOPS_CURL_SOCKET (event), CURL_CSELECT_IN | CURL_CSELECT_OUT);
}

static void
iops_curl_socket_class_init (IopsCurlSocketClass *klass)
{
  IopsIOEventClass *event_class = IOPS_IO_EVENT_CLASS (klass);

  /* fileno stays the default one, reading the "fd" property: the IOPS
   * may then re-arm without calling out. */
  event_class->ready_r = iops_curl_socket_ready_r;
  event_class->ready_w = iops_curl_socket_ready_w;
  event_class->ready_rw = iops_curl_socket_ready_rw;
}

static void
iops_curl_socket_init (IopsCurlSocket *self)
{
  self->link.data = self;
}

static void timer_ready (IopsTimerEvent *event,
                         int             flags);

static void
iops_curl_timer_class_init (IopsCurlTimerClass *klass)
{
  IOPS_TIMER_EVENT_CLASS (klass)->ready = timer_ready;
}

static void
iops_curl_timer_init (IopsCurlTimer *self)
{
}

/* -- multi handles with a bridge ----------------------------------------- */

/* Attaching a second bridge would silently take curl's callbacks from the
 * first, which would then wait forever: refused. Multi handles may live on
 * different threads, hence the lock. */
G_LOCK_DEFINE_STATIC (attached);
static GHashTable *attached;  /* CURLM * */

static gboolean
attached_add (CURLM *multi)
{
  gboolean added;

  G_LOCK (attached);
  if (attached == NULL)
    attached = g_hash_table_new (NULL, NULL);
  added = g_hash_table_add (attached, multi);
  G_UNLOCK (attached);
  return added;
}

static void
attached_remove (CURLM *multi)
{
  G_LOCK (attached);
  g_hash_table_remove (attached, multi);
  G_UNLOCK (attached);
}

/* -- the bridge ---------------------------------------------------------- */

static IopsCurl *
bridge_ref (IopsCurl *self)
{
  g_ref_count_inc (&self->ref_count);
  return self;
}

static void
bridge_unref (IopsCurl *self)
{
  if (!g_ref_count_dec (&self->ref_count))
    return;
  g_clear_object (&self->iops);
  g_free (self);
}

static IopsEventFlags
flags_from_curl (int what)
{
  return ((what & CURL_POLL_IN) ? IOPS_READ_EVENT : 0) |
         ((what & CURL_POLL_OUT) ? IOPS_WRITE_EVENT : 0);
}

/* Asks the IOPS for what curl wants of @sock; nothing is UNWATCH. */
static void
socket_arm (IopsCurlSocket *sock)
{
  IopsEvAction action = sock->flags != 0 ? IOPS_EVACTION_WATCH : IOPS_EVACTION_UNWATCH;

  iops_iops_update_event (sock->bridge->iops, IOPS_IO_EVENT (sock), action, sock->flags);
}

/* The bridge's reference on the new event is the one returned. */
static IopsCurlSocket *
socket_new (IopsCurl      *self,
            curl_socket_t  fd)
{
  IopsCurlSocket *sock = g_object_new (IOPS_CURL_TYPE_SOCKET, "fd", (int) fd, NULL);

  sock->bridge = self;
  sock->fd = fd;
  return sock;
}

/* CLEANUP and the bridge's reference go; a callback of @sock that is
 * running keeps the IOPS's own until it returns. */
static void
socket_drop (IopsCurl       *self,
             IopsCurlSocket *sock)
{
  sock->bridge = NULL;
  sock->deferred = 0;
  iops_iops_update_event (self->iops, IOPS_IO_EVENT (sock), IOPS_EVACTION_CLEANUP, 0);
  g_object_unref (sock);
}

static void
socket_go_live (IopsCurl       *self,
                IopsCurlSocket *sock)
{
  g_queue_push_tail_link (&self->sockets, &sock->link);
  self->peak_live = MAX (self->peak_live, self->sockets.length);
}

/* curl removes a socket when its transfer ends and the connection goes
 * idle into curl's cache, and announces it again for the next transfer:
 * usually the same socket, else another one with the same number. So a
 * removed socket's event is unwatched and kept by its number, and the
 * next announcement of that number takes it back: WATCH re-reads the
 * number (rule 1) and the IOPS keeps its registration, where a new event
 * would cost a registration (an epoll_ctl() each way on the epoll
 * backend) and an object per transfer. Measured on the small-GET
 * benchmark (interleaved runs of both builds): 0.84-0.91× the rate of a
 * curl_multi_poll() loop without, 0.96-1.01× with. At most as many are
 * kept as sockets were ever live at once, and at least PARKED_MIN. */
#define PARKED_MIN 64

static void
socket_park (IopsCurl       *self,
             IopsCurlSocket *sock)
{
  g_queue_unlink (&self->sockets, &sock->link);
  sock->serial++;  /* what curl wanted is gone: no re-arm */
  sock->deferred = 0;  /* nor a replay */
  if (g_hash_table_size (self->parked) >= MAX (PARKED_MIN, self->peak_live) ||
      g_hash_table_contains (self->parked, GINT_TO_POINTER (sock->fd)))
    {
      socket_drop (self, sock);
      return;
    }
  iops_iops_update_event (self->iops, IOPS_IO_EVENT (sock), IOPS_EVACTION_UNWATCH, 0);
  g_hash_table_insert (self->parked, GINT_TO_POINTER (sock->fd), sock);
}

/* The event for a socket curl announces, and the bridge's reference. */
static IopsCurlSocket *
socket_for (IopsCurl      *self,
            curl_socket_t  fd)
{
  IopsCurlSocket *sock = NULL;

  if (!g_hash_table_steal_extended (self->parked, GINT_TO_POINTER (fd), NULL, (gpointer *) &sock))
    sock = socket_new (self, fd);
  socket_go_live (self, sock);
  return sock;
}

static void
drop_all_sockets (IopsCurl *self,
                  CURLM    *multi)
{
  GHashTableIter iter;
  IopsCurlSocket *sock;

  while (!g_queue_is_empty (&self->sockets))
    {
      sock = g_queue_peek_head (&self->sockets);
      /* A later bridge on this multi must not be handed a freed event. */
      curl_multi_assign (multi, sock->fd, NULL);
      g_queue_unlink (&self->sockets, &sock->link);
      socket_drop (self, sock);
    }

  g_hash_table_iter_init (&iter, self->parked);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &sock))
    {
      g_hash_table_iter_steal (&iter);
      socket_drop (self, sock);
    }
}

/* CURLMOPT_SOCKETFUNCTION. Called from inside curl, possibly from inside
 * this very socket's callback: WATCH again whenever curl asks, even for
 * the same flags, as the number may now be another socket (rule 1). */
static int
on_curl_socket (CURL          *easy,
                curl_socket_t  fd,
                int            what,
                void          *data,
                void          *socketp)
{
  IopsCurl *self = data;
  IopsCurlSocket *sock = socketp;

  if (what == CURL_POLL_REMOVE)
    {
      /* Also said before curl closes a socket. */
      if (sock != NULL)
        socket_park (self, sock);
      return 0;
    }

  if (sock == NULL)
    {
      sock = socket_for (self, fd);
      curl_multi_assign (self->multi, fd, sock);
    }
  sock->flags = flags_from_curl (what);
  sock->serial++;
  socket_arm (sock);
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: the one timer event is rescheduled or disarmed,
 * never replaced, so a deadline curl withdrew can never fire. */
static int
on_curl_timer (CURLM *multi,
               long   timeout_ms,
               void  *data)
{
  IopsCurl *self = data;
  IopsTimerEvent *timer = IOPS_TIMER_EVENT (self->timer);

  if (timeout_ms < 0)
    iops_iops_update_timer (self->iops, timer, IOPS_EVACTION_UNWATCH, 0);
  else
    iops_iops_update_timer (self->iops, timer, IOPS_EVACTION_WATCH,
                            MIN ((gint64) timeout_ms, G_MAXINT64 / G_TIME_SPAN_MILLISECOND) *
                            G_TIME_SPAN_MILLISECOND);
  return 0;
}

/* Installs the bridge's callbacks in @multi, or with @self NULL removes
 * them. Fails only when called from inside a libcurl callback. */
static gboolean
set_callbacks (CURLM    *multi,
               IopsCurl *self)
{
  curl_socket_callback socket_cb = self != NULL ? on_curl_socket : NULL;
  curl_multi_timer_callback timer_cb = self != NULL ? on_curl_timer : NULL;

  if (curl_multi_setopt (multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK)
    return FALSE;
  curl_multi_setopt (multi, CURLMOPT_SOCKETDATA, (void *) self);
  curl_multi_setopt (multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt (multi, CURLMOPT_TIMERDATA, (void *) self);
  return TRUE;
}

/* Everything that ties the bridge to the multi handle and the IOPS goes:
 * nothing is armed or held on the IOPS afterwards. The destroy notify runs
 * last, as it may run any code. */
static void
bridge_disconnect (IopsCurl *self)
{
  CURLM *multi = g_steal_pointer (&self->multi);
  GDestroyNotify destroy = g_steal_pointer (&self->destroy);

  self->detach_pending = FALSE;
  set_callbacks (multi, NULL);
  drop_all_sockets (self, multi);
  g_clear_pointer (&self->parked, g_hash_table_unref);
  g_clear_pointer (&self->deferred, g_ptr_array_unref);
  self->timeout_deferred = FALSE;
  self->timer->bridge = NULL;
  iops_iops_update_timer (self->iops, IOPS_TIMER_EVENT (self->timer), IOPS_EVACTION_CLEANUP, 0);
  g_clear_object (&self->timer);
  attached_remove (multi);

  if (destroy != NULL)
    destroy (self->user_data);
}

static void
bridge_drive (IopsCurl      *self,
              curl_socket_t  fd,
              int            ev_bitmask)
{
  int running;
  CURLMcode rc;

  self->in_curl++;
  rc = curl_multi_socket_action (self->multi, fd, ev_bitmask, &running);
  self->in_curl--;
  if (G_UNLIKELY (rc != CURLM_OK))
    g_warning ("curl_multi_socket_action: %s", curl_multi_strerror (rc));
}

/* Reports every finished transfer. The done callback may remove handles,
 * add others, or detach; the message is read before it runs. */
static void
bridge_report_done (IopsCurl *self)
{
  CURLMsg *msg;
  int left;

  while (self->multi != NULL && (msg = curl_multi_info_read (self->multi, &left)) != NULL)
    {
      CURL *easy = msg->easy_handle;
      CURLcode result = msg->data.result;

      if (msg->msg == CURLMSG_DONE)
        self->done (self, easy, result, self->user_data);
    }
}

/* curl refuses to be called from inside its own callbacks
 * (CURLM_RECURSIVE_API_CALL), and a callback that iterates the loop (a
 * modal dialog, a nested start_watching) makes the IOPS deliver there. So
 * what is delivered while curl is on the stack is kept for later, and the
 * socket unwatched meanwhile: curl would never hear of a timeout that was
 * refused (it asks for its timer again only when the deadline changes),
 * and a readable socket would be delivered again at every iteration. */
static void
socket_defer (IopsCurl       *self,
              IopsCurlSocket *sock,
              int             ev_bitmask)
{
  if (sock->deferred == 0)
    g_ptr_array_add (self->deferred, g_object_ref (sock));
  sock->deferred |= ev_bitmask;
  iops_iops_update_event (self->iops, IOPS_IO_EVENT (sock), IOPS_EVACTION_UNWATCH, 0);
}

/* Hands curl what socket_ready() would have, then asks again for what curl
 * still wants of the socket, unless curl said something new meanwhile. In
 * persistent mode an unchanged WATCH changes nothing. */
static void
socket_drive (IopsCurl       *self,
              IopsCurlSocket *sock,
              int             ev_bitmask)
{
  guint serial = sock->serial;

  bridge_drive (self, sock->fd, ev_bitmask);
  if (sock->bridge != NULL && sock->serial == serial)
    socket_arm (sock);
}

/* Replays what was deferred: the timeout first (curl checks every
 * deadline at once), then the sockets in the order they came. What the
 * replay itself defers is replayed too. */
static void
bridge_replay (IopsCurl *self)
{
  while (self->multi != NULL && !self->detach_pending &&
         (self->timeout_deferred || self->deferred->len > 0))
    {
      if (self->timeout_deferred)
        {
          self->timeout_deferred = FALSE;
          bridge_drive (self, CURL_SOCKET_TIMEOUT, 0);
        }
      else
        {
          g_autoptr (IopsCurlSocket) sock = g_ptr_array_steal_index (self->deferred, 0);
          int ev_bitmask = sock->deferred;

          sock->deferred = 0;
          if (ev_bitmask != 0)  /* 0: parked or dropped meanwhile */
            socket_drive (self, sock, ev_bitmask);
        }
    }
}

/* What follows a curl_multi_socket_action(), once curl is off the stack. */
static void
bridge_settle (IopsCurl *self)
{
  if (self->in_curl > 0)
    return;
  bridge_replay (self);
  if (self->detach_pending)
    {
      bridge_disconnect (self);
      bridge_unref (self);  /* the attachment's */
      return;
    }
  bridge_report_done (self);
}

static void
socket_ready (IopsCurlSocket *sock,
              int             ev_bitmask)
{
  IopsCurl *self = sock->bridge;

  g_return_if_fail (self != NULL && self->multi != NULL);  /* called after CLEANUP */

  if (self->in_curl > 0)
    {
      socket_defer (self, sock, ev_bitmask);
      return;
    }
  bridge_ref (self);
  /* A one-shot watch was disarmed before this callback: socket_drive()
   * asks again. */
  socket_drive (self, sock, ev_bitmask);
  bridge_settle (self);
  bridge_unref (self);
}

static void
timer_ready (IopsTimerEvent *event,
             int             flags)
{
  IopsCurl *self = IOPS_CURL_TIMER (event)->bridge;

  g_return_if_fail (self != NULL && self->multi != NULL);  /* called after CLEANUP */

  if (self->in_curl > 0)
    {
      self->timeout_deferred = TRUE;  /* see socket_defer() */
      return;
    }
  bridge_ref (self);
  bridge_drive (self, CURL_SOCKET_TIMEOUT, 0);
  bridge_settle (self);
  bridge_unref (self);
}

/* -- the API --------------------------------------------------------------- */

/**
 * iops_curl_attach:
 * @multi: a libcurl multi handle, with no transfer added yet
 * @iops: the IOPS to run its sockets and timer on
 * @done: (scope notified): called for each transfer that finishes
 * @user_data: (closure done): data for @done
 * @destroy: (nullable): frees @user_data once the bridge is detached
 *
 * Runs @multi on @iops: installs curl's socket and timer callbacks
 * (`CURLMOPT_SOCKETFUNCTION`, `CURLMOPT_TIMERFUNCTION` and their data), so
 * that each socket curl uses is watched through
 * [method@Iops.IOPS.update_event] and curl's timeouts run on one
 * [class@Iops.TimerEvent] through [method@Iops.IOPS.update_timer].
 * Transfers added to @multi with `curl_multi_add_handle()` then run
 * whenever the IOPS's loop runs, and @done is called once for each of them
 * when it finishes: the application never calls
 * `curl_multi_socket_action()` or `curl_multi_info_read()` itself.
 *
 * Attach before adding transfers: curl announces a socket once, and a
 * socket announced before the bridge was there is never watched.
 *
 * The bridge keeps a reference on @iops until it is detached; it does not
 * own @multi. Call `iops_curl_detach()` before `curl_multi_cleanup()`.
 *
 * Returns: (transfer full) (nullable): the bridge, to give to
 *   `iops_curl_detach()`; %NULL (with a critical warning) if @multi has a
 *   bridge already or this was called from inside a libcurl callback
 *
 * Since: 1.0
 */
IopsCurl *
iops_curl_attach (CURLM            *multi,
                  IopsIOPS         *iops,
                  IopsCurlDoneFunc  done,
                  gpointer          user_data,
                  GDestroyNotify    destroy)
{
  IopsCurl *self;

  g_return_val_if_fail (multi != NULL, NULL);
  g_return_val_if_fail (IOPS_IS_IOPS (iops), NULL);
  g_return_val_if_fail (done != NULL, NULL);

  if (!attached_add (multi))
    {
      g_critical ("%s: this CURLM has a bridge already; detach it first", G_STRFUNC);
      return NULL;
    }

  self = g_new0 (IopsCurl, 1);
  g_ref_count_init (&self->ref_count);
  self->multi = multi;
  self->iops = g_object_ref (iops);
  self->timer = g_object_new (IOPS_CURL_TYPE_TIMER, NULL);
  self->timer->bridge = self;
  self->parked = g_hash_table_new (NULL, NULL);
  self->deferred = g_ptr_array_new_with_free_func (g_object_unref);
  self->done = done;
  self->user_data = user_data;
  self->destroy = destroy;

  if (!set_callbacks (multi, self))
    {
      g_critical ("%s: called from inside a libcurl callback", G_STRFUNC);
      attached_remove (multi);
      g_clear_pointer (&self->parked, g_hash_table_unref);
      g_clear_pointer (&self->deferred, g_ptr_array_unref);
      g_clear_object (&self->timer);
      bridge_unref (self);
      return NULL;
    }
  return self;
}

/**
 * iops_curl_detach:
 * @bridge: (transfer full): a bridge from `iops_curl_attach()`
 *
 * Takes the bridge off its multi handle and frees it: curl's socket and
 * timer callbacks are removed, every event of the bridge is cleaned up on
 * the IOPS (nothing is left armed or held there), the reference on the
 * IOPS is dropped and the destroy notify given to `iops_curl_attach()`
 * runs. No done callback comes after this returns.
 *
 * Transfers still in the multi handle stay there, unwatched: remove them,
 * or drive them yourself. Then `curl_multi_cleanup()` may follow, never
 * precede: the bridge uses the multi handle while detaching.
 *
 * May be called from the done callback. Called from inside another
 * libcurl callback (a write callback, say), it takes effect as soon as
 * libcurl returns to the bridge, before any further done callback.
 *
 * Since: 1.0
 */
void
iops_curl_detach (IopsCurl *bridge)
{
  g_return_if_fail (bridge != NULL);
  g_return_if_fail (bridge->multi != NULL);

  if (bridge->in_curl > 0)
    {
      bridge->detach_pending = TRUE;
      return;
    }
  bridge_disconnect (bridge);
  bridge_unref (bridge);
}

/**
 * iops_curl_get_multi:
 * @bridge: a bridge
 *
 * Returns: (transfer none): the multi handle the bridge is attached to
 *
 * Since: 1.0
 */
CURLM *
iops_curl_get_multi (IopsCurl *bridge)
{
  g_return_val_if_fail (bridge != NULL, NULL);

  return bridge->multi;
}

/**
 * iops_curl_get_iops:
 * @bridge: a bridge
 *
 * Returns: (transfer none): the IOPS the bridge runs on
 *
 * Since: 1.0
 */
IopsIOPS *
iops_curl_get_iops (IopsCurl *bridge)
{
  g_return_val_if_fail (bridge != NULL, NULL);

  return bridge->iops;
}
