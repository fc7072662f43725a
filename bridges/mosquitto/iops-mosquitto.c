/* iops-mosquitto.c — a libmosquitto client on an IopsIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libmosquitto's external-loop protocol: watch mosquitto_socket() for read,
 * and for write while mosquitto_want_write(); call mosquitto_loop_read() and
 * mosquitto_loop_write() when it is ready and mosquitto_loop_misc() now and
 * then (keepalive). Both can change after any libmosquitto call: the socket
 * on (re)connect and disconnect, want_write whenever a packet is queued. So
 * after every call the bridge makes into libmosquitto — which is where the
 * application's callbacks run, and with them its publishes, subscribes,
 * reconnects and disconnects — it reads both again and re-arms ("sync").
 * Calls the application makes outside those callbacks are seen at the
 * next sync: iops_mosquitto_update() at once, the once-a-second tick at
 * the latest while the client has a socket.
 *
 * Ownership: the bridge holds a reference on the IOPS and on its two events
 * from attach to detach. The events point back at the bridge without one;
 * detach clears that pointer before letting go, so an event the IOPS still
 * holds (its callback is running) does nothing more.
 *
 * Re-entrancy: the application may detach from inside a callback that a
 * bridge call into libmosquitto is running. Every entry from the IOPS is a
 * frame (frame_enter/frame_leave); a detach inside one disarms at once, and
 * the outermost frame frees the bridge once libmosquitto has returned.
 */
#include <time.h>

#include "iops-mosquitto.h"

/* The tick fires this long after the second of CLOCK_MONOTONIC changes,
 * so that libmosquitto, which reads the same clock in whole seconds, sees
 * the new second. */
#define TICK_MARGIN_USECS 1000

struct _IopsMosquitto
{
  struct mosquitto *mosq;      /* the application's */
  IopsIOPS         *iops;      /* owned */
  IopsIOEvent      *socket;    /* owned: watches mosquitto_socket () */
  IopsTimerEvent   *tick;      /* owned: runs mosquitto_loop_misc () */
  gboolean          watching;  /* the socket event may be armed */
  gboolean          ticking;   /* the tick is armed */
  guint             frames;    /* bridge frames on the stack */
  gboolean          detached;
};

static void bridge_socket_ready (IopsMosquitto  *self,
                                 IopsEventFlags  ready);
static void bridge_tick         (IopsMosquitto  *self);

/* -- the events ----------------------------------------------------------- */

#define IOPS_TYPE_MOSQUITTO_SOCKET (iops_mosquitto_socket_get_type ())
G_DECLARE_FINAL_TYPE (IopsMosquittoSocket, iops_mosquitto_socket, IOPS, MOSQUITTO_SOCKET, IopsIOEvent)

struct _IopsMosquittoSocket
{
  IopsIOEvent    parent_instance;
  IopsMosquitto *bridge;  /* NULL once detached */
};

G_DEFINE_FINAL_TYPE (IopsMosquittoSocket, iops_mosquitto_socket, IOPS_TYPE_IO_EVENT)

static void
bridge_socket_deliver (IopsIOEvent    *event,
                       IopsEventFlags  ready)
{
  IopsMosquitto *bridge = IOPS_MOSQUITTO_SOCKET (event)->bridge;

  if (bridge != NULL)
    bridge_socket_ready (bridge, ready);
}

static void
bridge_socket_ready_r (IopsIOEvent *event)
{
  bridge_socket_deliver (event, IOPS_READ_EVENT);
}

static void
bridge_socket_ready_w (IopsIOEvent *event)
{
  bridge_socket_deliver (event, IOPS_WRITE_EVENT);
}

static void
bridge_socket_ready_rw (IopsIOEvent *event)
{
  bridge_socket_deliver (event, IOPS_RW_EVENT);
}

static void
iops_mosquitto_socket_class_init (IopsMosquittoSocketClass *klass)
{
  IopsIOEventClass *event_class = IOPS_IO_EVENT_CLASS (klass);

  event_class->ready_r = bridge_socket_ready_r;
  event_class->ready_w = bridge_socket_ready_w;
  event_class->ready_rw = bridge_socket_ready_rw;
}

static void
iops_mosquitto_socket_init (IopsMosquittoSocket *self)
{
}

static IopsIOEvent *
iops_mosquitto_socket_new (IopsMosquitto *bridge)
{
  IopsMosquittoSocket *self = g_object_new (IOPS_TYPE_MOSQUITTO_SOCKET, NULL);

  self->bridge = bridge;
  return IOPS_IO_EVENT (self);
}

#define IOPS_TYPE_MOSQUITTO_TICK (iops_mosquitto_tick_get_type ())
G_DECLARE_FINAL_TYPE (IopsMosquittoTick, iops_mosquitto_tick, IOPS, MOSQUITTO_TICK, IopsTimerEvent)

struct _IopsMosquittoTick
{
  IopsTimerEvent parent_instance;
  IopsMosquitto *bridge;  /* NULL once detached */
};

G_DEFINE_FINAL_TYPE (IopsMosquittoTick, iops_mosquitto_tick, IOPS_TYPE_TIMER_EVENT)

static void
bridge_tick_ready (IopsTimerEvent *timer,
                   int             flags)
{
  IopsMosquitto *bridge = IOPS_MOSQUITTO_TICK (timer)->bridge;

  if (bridge != NULL)
    bridge_tick (bridge);
}

static void
iops_mosquitto_tick_class_init (IopsMosquittoTickClass *klass)
{
  IOPS_TIMER_EVENT_CLASS (klass)->ready = bridge_tick_ready;
}

static void
iops_mosquitto_tick_init (IopsMosquittoTick *self)
{
}

static IopsTimerEvent *
iops_mosquitto_tick_new (IopsMosquitto *bridge)
{
  IopsMosquittoTick *self = g_object_new (IOPS_TYPE_MOSQUITTO_TICK, NULL);

  self->bridge = bridge;
  return IOPS_TIMER_EVENT (self);
}

/* -- which clients are attached ------------------------------------------- */

/* struct mosquitto has no room for us: attaching one client twice is
 * caught here. Clients on other threads attach too, hence the lock. */
G_LOCK_DEFINE_STATIC (attached);
static GHashTable *attached;

static gboolean
claim_client (struct mosquitto *mosq)
{
  gboolean claimed;

  G_LOCK (attached);
  if (attached == NULL)
    attached = g_hash_table_new (NULL, NULL);
  claimed = g_hash_table_add (attached, mosq);
  G_UNLOCK (attached);
  return claimed;
}

static void
release_client (struct mosquitto *mosq)
{
  G_LOCK (attached);
  g_hash_table_remove (attached, mosq);
  if (g_hash_table_size (attached) == 0)
    g_clear_pointer (&attached, g_hash_table_unref);
  G_UNLOCK (attached);
}

/* -- arming ---------------------------------------------------------------- */

static gint64
usecs_to_next_second (void)
{
  struct timespec now;

  clock_gettime (CLOCK_MONOTONIC, &now);
  return G_USEC_PER_SEC - now.tv_nsec / 1000 + TICK_MARGIN_USECS;
}

/* Nothing armed: the client has no socket, so there is nothing to read,
 * write or keep alive until the application connects again. CLEANUP, so
 * that the IOPS keeps nothing for a closed fd; a next socket is a fresh
 * registration. */
static void
bridge_quiet (IopsMosquitto *self)
{
  if (self->watching)
    iops_iops_update_event (self->iops, self->socket, IOPS_EVACTION_CLEANUP, 0);
  if (self->ticking)
    iops_iops_update_timer (self->iops, self->tick, IOPS_EVACTION_UNWATCH, 0);
  self->watching = FALSE;
  self->ticking = FALSE;
}

/* Watches what libmosquitto uses now. Always a WATCH, even when the fd
 * number and the flags did not change: a reconnect may have made a new
 * socket with the old number, which the IOPS must register afresh; in
 * persistent mode a WATCH of the same fd and flags is harmless. */
static void
bridge_sync (IopsMosquitto *self)
{
  int fd = mosquitto_socket (self->mosq);
  IopsEventFlags flags = IOPS_READ_EVENT;

  if (fd < 0)
    {
      bridge_quiet (self);
      return;
    }
  if (mosquitto_want_write (self->mosq))
    flags |= IOPS_WRITE_EVENT;
  iops_io_event_set_fd (self->socket, fd);
  iops_iops_update_event (self->iops, self->socket, IOPS_EVACTION_WATCH, flags);
  self->watching = TRUE;
  if (!self->ticking)
    {
      iops_iops_update_timer (self->iops, self->tick, IOPS_EVACTION_WATCH,
                              usecs_to_next_second ());
      self->ticking = TRUE;
    }
}

/* -- the callbacks ---------------------------------------------------------- */

static void
bridge_free (IopsMosquitto *self)
{
  g_clear_object (&self->socket);
  g_clear_object (&self->tick);
  g_clear_object (&self->iops);
  g_free (self);
}

static void
frame_enter (IopsMosquitto *self)
{
  self->frames++;
}

static void
frame_leave (IopsMosquitto *self)
{
  if (--self->frames == 0 && self->detached)
    bridge_free (self);
}

/* TRUE while @fd is still the client's socket: libmosquitto closes it on
 * every error, running the disconnect callback, and a mosquitto_loop_read()
 * or mosquitto_loop_write() without a socket would run that callback a
 * second time (with MOSQ_ERR_NO_CONN). */
static gboolean
still_connected (IopsMosquitto *self,
                 int            fd)
{
  return !self->detached && fd >= 0 && mosquitto_socket (self->mosq) == fd;
}

static void
bridge_socket_ready (IopsMosquitto  *self,
                     IopsEventFlags  ready)
{
  int fd = iops_io_event_get_fd (self->socket);

  frame_enter (self);
  /* The return values need no reading: libmosquitto handles its errors
   * itself (closing the socket and calling the disconnect callback), and
   * the sync below reads the state it left. */
  if ((ready & IOPS_READ_EVENT) && still_connected (self, fd))
    mosquitto_loop_read (self->mosq, 1);
  if ((ready & IOPS_WRITE_EVENT) && still_connected (self, fd))
    mosquitto_loop_write (self->mosq, 1);
  if (!self->detached)
    bridge_sync (self);
  frame_leave (self);
}

static void
bridge_tick (IopsMosquitto *self)
{
  frame_enter (self);
  self->ticking = FALSE;
  if (mosquitto_socket (self->mosq) >= 0)
    mosquitto_loop_misc (self->mosq);
  if (!self->detached)
    bridge_sync (self);
  frame_leave (self);
}

/* -- public API -------------------------------------------------------------- */

/**
 * iops_mosquitto_attach:
 * @mosq: a libmosquitto client, from `mosquitto_new()`
 * @iops: the IOPS to run it on, of any implementation
 *
 * Runs @mosq on @iops: from now on the bridge watches the client's socket
 * and calls `mosquitto_loop_read()`, `mosquitto_loop_write()` and, once a
 * second, `mosquitto_loop_misc()` from the IOPS's callbacks, so the
 * client's own callbacks (connect, message, publish, disconnect, …) run
 * from the loop of @iops — with an [class@Iops.GLibIOPS], its
 * `GMainContext`. Nothing is called back from inside this function.
 *
 * Attach after `mosquitto_connect_async()` (or call
 * iops_mosquitto_update() after connecting). When the client loses its
 * connection, libmosquitto runs its disconnect callback once and the
 * bridge leaves nothing armed, so [method@Iops.IOPS.start_watching]
 * returns; a reconnect made from one of the client's callbacks is picked
 * up by itself, one made elsewhere after iops_mosquitto_update().
 *
 * Do not also run `mosquitto_loop_start()`, `mosquitto_loop_forever()` or
 * `mosquitto_loop()` on @mosq, and make every call on @mosq and on the
 * returned bridge from the thread that runs @iops. A client is attached
 * to one IOPS at a time: attaching it again before
 * iops_mosquitto_detach() is a precondition failure.
 *
 * Returns: (transfer full) (nullable): the bridge, to pass to
 *   iops_mosquitto_detach() before `mosquitto_destroy()`; %NULL on a
 *   precondition failure
 *
 * Since: 1.0
 */
IopsMosquitto *
iops_mosquitto_attach (struct mosquitto *mosq,
                       IopsIOPS         *iops)
{
  IopsMosquitto *self;

  g_return_val_if_fail (mosq != NULL, NULL);
  g_return_val_if_fail (IOPS_IS_IOPS (iops), NULL);

  if (!claim_client (mosq))
    {
      g_critical ("%s: this mosquitto client is attached already; "
                  "iops_mosquitto_detach() it first", G_STRFUNC);
      return NULL;
    }

  self = g_new0 (IopsMosquitto, 1);
  self->mosq = mosq;
  self->iops = g_object_ref (iops);
  self->socket = iops_mosquitto_socket_new (self);
  self->tick = iops_mosquitto_tick_new (self);
  bridge_sync (self);
  return self;
}

/**
 * iops_mosquitto_update:
 * @self: a bridge from iops_mosquitto_attach()
 *
 * Tells the bridge that the application called libmosquitto from outside
 * the client's callbacks: `mosquitto_connect_async()`,
 * `mosquitto_reconnect_async()`, `mosquitto_disconnect()`,
 * `mosquitto_publish()`, `mosquitto_subscribe()` and the like. The bridge
 * reads the client's socket and `mosquitto_want_write()` again and
 * watches accordingly: a new socket is watched, a closed one forgotten,
 * and data libmosquitto could not write at once is written as soon as
 * the socket takes it.
 *
 * Without this call the bridge sees such a change at its next event: an
 * incoming packet, or at the latest its once-a-second tick while the
 * client has a socket. A connect made while the client had none (after a
 * disconnect, before anything is armed) is only seen through this call.
 * Calls made from inside the client's callbacks need none: the bridge
 * looks again after every callback.
 *
 * It calls nothing back and reads only the client's state, so it may be
 * called from anywhere on the thread that runs the IOPS, any number of
 * times.
 *
 * Since: 1.0
 */
void
iops_mosquitto_update (IopsMosquitto *self)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (!self->detached);

  bridge_sync (self);
}

/**
 * iops_mosquitto_detach:
 * @self: (transfer full): a bridge from iops_mosquitto_attach()
 *
 * Stops running the client on the IOPS: the bridge disarms its watch and
 * its timer, releases the IOPS and is freed. The client itself is left as
 * it is — connected or not — and may be attached again, to this IOPS or
 * another, or driven by libmosquitto's own loop functions.
 *
 * libmosquitto has no hook that tells the bridge the client is destroyed:
 * call this before `mosquitto_destroy()`. It may be called from inside the
 * client's callbacks; the bridge is then freed once libmosquitto returns
 * to it, and makes no call into the client after this one.
 *
 * Since: 1.0
 */
void
iops_mosquitto_detach (IopsMosquitto *self)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (!self->detached);

  self->detached = TRUE;
  release_client (self->mosq);
  iops_iops_update_event (self->iops, self->socket, IOPS_EVACTION_CLEANUP, 0);
  iops_iops_update_timer (self->iops, self->tick, IOPS_EVACTION_CLEANUP, 0);
  self->watching = FALSE;
  self->ticking = FALSE;
  IOPS_MOSQUITTO_SOCKET (self->socket)->bridge = NULL;
  IOPS_MOSQUITTO_TICK (self->tick)->bridge = NULL;
  if (self->frames == 0)
    bridge_free (self);
}
