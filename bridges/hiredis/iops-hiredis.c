/* iops-hiredis.c — hiredis's asynchronous API on an IopsIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Ownership: a redisAsyncContext holds its bridge through ac->ev.data, one
 * reference from iops_hiredis_attach() until hiredis calls the cleanup
 * hook (whenever the context is freed: redisAsyncFree(), a completed
 * redisAsyncDisconnect(), or an error). The bridge holds one reference on
 * the IOPS and one on its deadline timer. The IOPS holds the bridge (an
 * IopsIOEvent) and the timer only while they are armed and during their
 * callbacks; the cleanup hook CLEANUPs both, so once the context is gone
 * nothing is armed and nothing is held.
 *
 * Watches: hiredis's hooks say what it wants (read, write); the bridge
 * keeps that in `wanted` and makes one WATCH of the union on the
 * context's fd. A delivery runs hiredis's handlers, which call the hooks
 * again; the bridge then makes a single WATCH of what hiredis wants now.
 * So it works on one-shot watches (the IOPS contract) and, with the same
 * WATCH being harmless, on persistent ones.
 */
#include <hiredis/async.h>

#include "iops-hiredis.h"

/* `armed` after a delivery: a one-shot IOPS has disarmed, a persistent
 * one has not, so the next sync must tell it either way. */
#define ARMED_UNKNOWN 0xff

typedef enum
{
  DEADLINE_NONE,
  DEADLINE_CONNECT,   /* connect() must complete before it */
  DEADLINE_COMMAND,   /* replies are pending: some data must come before it */
} Deadline;

#define IOPS_HIREDIS_TYPE_BRIDGE (iops_hiredis_bridge_get_type ())
G_DECLARE_FINAL_TYPE (IopsHiredisBridge, iops_hiredis_bridge, IOPS_HIREDIS, BRIDGE, IopsIOEvent)

#define IOPS_HIREDIS_TYPE_TIMER (iops_hiredis_timer_get_type ())
G_DECLARE_FINAL_TYPE (IopsHiredisTimer, iops_hiredis_timer, IOPS_HIREDIS, TIMER, IopsTimerEvent)

struct _IopsHiredisBridge
{
  IopsIOEvent        parent_instance;
  redisAsyncContext *ac;              /* NULL once the cleanup hook ran */
  IopsIOPS          *iops;            /* owned */
  IopsHiredisTimer  *timer;           /* owned; made by the first timeout */
  gint64             command_timeout; /* µs; 0: none */
  Deadline           deadline;        /* what the armed timer is for */
  IopsEventFlags     wanted;          /* what hiredis asked for */
  guint8             armed;           /* what the IOPS was told, or ARMED_UNKNOWN */
  gboolean           dispatching;     /* hiredis's handlers are running */
  gboolean           timeout_due;     /* the deadline passed while dispatching */
};

struct _IopsHiredisTimer
{
  IopsTimerEvent     parent_instance;
  IopsHiredisBridge *bridge;          /* not owned: the bridge owns the timer */
};

G_DEFINE_FINAL_TYPE (IopsHiredisBridge, iops_hiredis_bridge, IOPS_TYPE_IO_EVENT)
G_DEFINE_FINAL_TYPE (IopsHiredisTimer, iops_hiredis_timer, IOPS_TYPE_TIMER_EVENT)

static gboolean
bridge_connected (IopsHiredisBridge *self)
{
  return (self->ac->c.flags & REDIS_CONNECTED) != 0;
}

/* -- the watch ------------------------------------------------------------ */

static void
bridge_sync_watch (IopsHiredisBridge *self)
{
  if (self->armed == self->wanted)
    return;
  self->armed = self->wanted;
  iops_iops_update_event (self->iops, IOPS_IO_EVENT (self),
                          self->wanted != 0 ? IOPS_EVACTION_WATCH : IOPS_EVACTION_UNWATCH,
                          self->wanted);
}

/* -- the deadline timer --------------------------------------------------- */

static void
bridge_arm_deadline (IopsHiredisBridge *self,
                     Deadline           deadline,
                     gint64             usecs)
{
  if (self->timer == NULL)
    {
      self->timer = g_object_new (IOPS_HIREDIS_TYPE_TIMER, NULL);
      self->timer->bridge = self;
    }
  self->deadline = deadline;
  iops_iops_update_timer (self->iops, IOPS_TIMER_EVENT (self->timer),
                          IOPS_EVACTION_WATCH, usecs);
}

static void
bridge_cancel_deadline (IopsHiredisBridge *self)
{
  if (self->deadline == DEADLINE_NONE)
    return;
  self->deadline = DEADLINE_NONE;
  iops_iops_update_timer (self->iops, IOPS_TIMER_EVENT (self->timer),
                          IOPS_EVACTION_UNWATCH, 0);
}

/* Connected: the command deadline runs while replies are pending, and
 * starts again from @restart (data came in). Writes do not move it: a
 * server that takes commands and never answers must still time out. */
static void
bridge_update_command_deadline (IopsHiredisBridge *self,
                                gboolean           restart)
{
  if (self->command_timeout == 0 || self->ac->replies.head == NULL)
    bridge_cancel_deadline (self);
  else if (restart || self->deadline != DEADLINE_COMMAND)
    bridge_arm_deadline (self, DEADLINE_COMMAND, self->command_timeout);
}

static gboolean
bridge_timeout_applies (IopsHiredisBridge *self)
{
  return !bridge_connected (self) || self->ac->replies.head != NULL;
}

/* The deadline passed: fail the context through hiredis's own paths, so
 * that the callbacks run as for any other error. */
static void
bridge_fail_by_timeout (IopsHiredisBridge *self)
{
  redisAsyncContext *ac = self->ac;
  redisContext *c = &ac->c;

  if (c->err == 0)
    {
      c->err = IOPS_HIREDIS_ERR_TIMEOUT;
      g_strlcpy (c->errstr, "Timeout", sizeof c->errstr);
    }
  ac->err = c->err;
  ac->errstr = c->errstr;

  /* redisBufferRead() fails at once on a context with an error, and
   * hiredis disconnects: every pending callback gets a NULL reply, then
   * onDisconnect gets REDIS_ERR, then the context is freed. */
  if (bridge_connected (self))
    {
      redisAsyncHandleRead (ac);
      return;
    }

  /* What hiredis does when connect() fails: onConnect (REDIS_ERR), then
   * free (pending callbacks get NULL; no onDisconnect, as it never
   * connected). An onConnect that freed the context itself is let be. */
  g_object_ref (self);
  if (ac->onConnect != NULL)
    ac->onConnect (ac, REDIS_ERR);
  if (self->ac != NULL)
    redisAsyncFree (ac);
  g_object_unref (self);
}

static void
bridge_deadline_passed (IopsHiredisBridge *self)
{
  self->deadline = DEADLINE_NONE;
  if (self->ac == NULL)
    return;

  /* hiredis is not re-entrant: a deadline that passes in a loop nested in
   * one of its callbacks is acted on once that callback has returned. */
  if (self->dispatching || (self->ac->c.flags & REDIS_IN_CALLBACK))
    self->timeout_due = TRUE;
  else if (bridge_timeout_applies (self))
    bridge_fail_by_timeout (self);
}

/* -- deliveries ----------------------------------------------------------- */

/* Reply callbacks queued commands: write them at once rather than after
 * a loop iteration that waits for writability — a connected socket
 * nearly always is writable, and a write that would block leaves WRITE
 * wanted for the IOPS to watch. Returns FALSE when the context is gone. */
static gboolean
bridge_write_now (IopsHiredisBridge *self)
{
  self->dispatching = TRUE;
  redisAsyncHandleWrite (self->ac);
  self->dispatching = FALSE;
  return self->ac != NULL;
}

/* After hiredis's handlers: tell the IOPS what hiredis wants now (one
 * WATCH whatever the number of hook calls), and move the deadline. */
static void
bridge_settle (IopsHiredisBridge *self,
               IopsEventFlags     ready)
{
  if (self->timeout_due)
    {
      self->timeout_due = FALSE;
      if (bridge_timeout_applies (self))
        {
          bridge_fail_by_timeout (self);
          return;
        }
    }

  if (bridge_connected (self) && (self->wanted & IOPS_WRITE_EVENT) &&
      !(ready & IOPS_WRITE_EVENT) && !bridge_write_now (self))
    return;

  bridge_sync_watch (self);
  if (bridge_connected (self))
    bridge_update_command_deadline (self, (ready & IOPS_READ_EVENT) != 0);
}

static void
bridge_dispatch (IopsHiredisBridge *self,
                 IopsEventFlags     ready)
{
  if (G_UNLIKELY (self->ac == NULL))
    return;

  if (G_UNLIKELY (self->dispatching))
    {
      /* Delivered again from a loop nested in a hiredis callback (a
       * persistent watch stays armed): hiredis is not re-entrant, so stay
       * quiet until the outer delivery re-arms. */
      self->armed = 0;
      iops_iops_update_event (self->iops, IOPS_IO_EVENT (self), IOPS_EVACTION_UNWATCH, 0);
      return;
    }

  /* The context may be freed by the handlers, and with it the context's
   * reference on the bridge. */
  g_object_ref (self);
  self->dispatching = TRUE;
  self->armed = ARMED_UNKNOWN;

  if (ready & IOPS_WRITE_EVENT)
    redisAsyncHandleWrite (self->ac);
  if ((ready & IOPS_READ_EVENT) && self->ac != NULL)
    redisAsyncHandleRead (self->ac);

  self->dispatching = FALSE;
  if (self->ac != NULL)
    bridge_settle (self, ready);
  g_object_unref (self);
}

static void
bridge_ready_r (IopsIOEvent *event)
{
  bridge_dispatch ((IopsHiredisBridge *) event, IOPS_READ_EVENT);
}

static void
bridge_ready_w (IopsIOEvent *event)
{
  bridge_dispatch ((IopsHiredisBridge *) event, IOPS_WRITE_EVENT);
}

static void
bridge_ready_rw (IopsIOEvent *event)
{
  bridge_dispatch ((IopsHiredisBridge *) event, IOPS_RW_EVENT);
}

static void
timer_ready (IopsTimerEvent *timer,
             int             flags)
{
  IopsHiredisBridge *bridge = ((IopsHiredisTimer *) timer)->bridge;

  if (bridge == NULL)
    return;
  g_object_ref (bridge);
  bridge_deadline_passed (bridge);
  g_object_unref (bridge);
}

/* -- hiredis's hooks -------------------------------------------------------- */

static void
bridge_want (IopsHiredisBridge *self,
             IopsEventFlags     flag,
             gboolean           on)
{
  self->wanted = on ? (self->wanted | flag) : (self->wanted & ~flag);
  if (!self->dispatching)
    bridge_sync_watch (self);
}

static void
hook_add_read (void *data)
{
  bridge_want (data, IOPS_READ_EVENT, TRUE);
}

static void
hook_del_read (void *data)
{
  bridge_want (data, IOPS_READ_EVENT, FALSE);
}

static void
hook_add_write (void *data)
{
  IopsHiredisBridge *self = data;

  bridge_want (self, IOPS_WRITE_EVENT, TRUE);
  /* hiredis calls this for every new command: outside a delivery, a first
   * pending reply starts the command deadline. */
  if (!self->dispatching && bridge_connected (self))
    bridge_update_command_deadline (self, FALSE);
}

static void
hook_del_write (void *data)
{
  bridge_want (data, IOPS_WRITE_EVENT, FALSE);
}

/* hiredis frees the context: let go of everything, and of the bridge. */
static void
hook_cleanup (void *data)
{
  IopsHiredisBridge *self = data;
  redisAsyncContext *ac = g_steal_pointer (&self->ac);

  iops_iops_update_event (self->iops, IOPS_IO_EVENT (self), IOPS_EVACTION_CLEANUP, 0);
  self->wanted = 0;
  self->armed = 0;
  if (self->timer != NULL)
    iops_iops_update_timer (self->iops, IOPS_TIMER_EVENT (self->timer),
                            IOPS_EVACTION_CLEANUP, 0);
  self->deadline = DEADLINE_NONE;
  self->timeout_due = FALSE;

  /* Nothing reaches this bridge again, whatever hiredis does next. */
  ac->ev.addRead = NULL;
  ac->ev.delRead = NULL;
  ac->ev.addWrite = NULL;
  ac->ev.delWrite = NULL;
  ac->ev.cleanup = NULL;
  ac->ev.data = NULL;
  g_object_unref (self);
}

/* -- the types ------------------------------------------------------------ */

static void
iops_hiredis_bridge_finalize (GObject *object)
{
  IopsHiredisBridge *self = IOPS_HIREDIS_BRIDGE (object);

  if (self->timer != NULL)
    self->timer->bridge = NULL;
  g_clear_object (&self->timer);
  g_clear_object (&self->iops);
  G_OBJECT_CLASS (iops_hiredis_bridge_parent_class)->finalize (object);
}

static void
iops_hiredis_bridge_class_init (IopsHiredisBridgeClass *klass)
{
  IopsIOEventClass *event_class = IOPS_IO_EVENT_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = iops_hiredis_bridge_finalize;
  event_class->ready_r = bridge_ready_r;
  event_class->ready_w = bridge_ready_w;
  event_class->ready_rw = bridge_ready_rw;
}

static void
iops_hiredis_bridge_init (IopsHiredisBridge *self)
{
}

static void
iops_hiredis_timer_class_init (IopsHiredisTimerClass *klass)
{
  IOPS_TIMER_EVENT_CLASS (klass)->ready = timer_ready;
}

static void
iops_hiredis_timer_init (IopsHiredisTimer *self)
{
}

/* The bridge of @ac, or NULL when iops_hiredis_attach() did not attach it. */
static IopsHiredisBridge *
bridge_of (const redisAsyncContext *ac)
{
  return ac->ev.addRead == hook_add_read ? ac->ev.data : NULL;
}

/* -- the API -------------------------------------------------------------- */

/**
 * iops_hiredis_attach:
 * @ac: a hiredis asynchronous context, from `redisAsyncConnect()` or
 *   another `redisAsyncConnect*()` function
 * @iops: the IOPS to run @ac on: an [class@Iops.GLibIOPS] or any other
 *   implementation of [iface@Iops.IOPS]
 *
 * Runs @ac on @iops: hiredis's read and write wishes become watches on
 * @iops, and its handlers run from @iops's callbacks.
 *
 * From this call on the bridge watches the connection: first for the end
 * of `connect()` (so a connect callback set before or after this call, and
 * commands issued before it, all work), then for replies, and for the
 * server going away while the connection is idle.
 *
 * The bridge holds a reference on @iops until hiredis frees @ac — after
 * `redisAsyncFree()`, after `redisAsyncDisconnect()` once its replies came,
 * or after an error — when its cleanup hook releases everything: nothing
 * stays armed on @iops and nothing is held. There is no detach call.
 *
 * Call it, and every hiredis function on @ac, from the thread that runs
 * @iops.
 *
 * Returns: `REDIS_OK`, or `REDIS_ERR` when @ac already has an event
 *   library attached (this bridge or a hiredis adapter) or has failed
 *   already (`ac->err` set: free it)
 *
 * Since: 1.0
 */
int
iops_hiredis_attach (redisAsyncContext *ac,
                     IopsIOPS          *iops)
{
  IopsHiredisBridge *self;

  g_return_val_if_fail (ac != NULL, REDIS_ERR);
  g_return_val_if_fail (IOPS_IS_IOPS (iops), REDIS_ERR);

  if (ac->ev.data != NULL || ac->err != 0 || ac->c.fd < 0)
    return REDIS_ERR;

  self = g_object_new (IOPS_HIREDIS_TYPE_BRIDGE, "fd", ac->c.fd, NULL);
  self->ac = ac;
  self->iops = g_object_ref (iops);

  ac->ev.addRead = hook_add_read;
  ac->ev.delRead = hook_del_read;
  ac->ev.addWrite = hook_add_write;
  ac->ev.delWrite = hook_del_write;
  ac->ev.cleanup = hook_cleanup;
  ac->ev.data = g_steal_pointer (&self);   /* released by hook_cleanup */

  /* hiredis learns that connect() completed from the first write event;
   * it asks for one only once a command or a connect callback comes. */
  if (!(ac->c.flags & REDIS_CONNECTED))
    hook_add_write (ac->ev.data);
  return REDIS_OK;
}

/**
 * iops_hiredis_get_iops:
 * @ac: a hiredis asynchronous context
 *
 * Tells which IOPS `iops_hiredis_attach()` attached @ac to.
 *
 * Returns: (transfer none) (nullable): the IOPS, or `NULL` when @ac is not
 *   attached by this bridge (never attached, attached to something else,
 *   or freed)
 *
 * Since: 1.0
 */
IopsIOPS *
iops_hiredis_get_iops (const redisAsyncContext *ac)
{
  IopsHiredisBridge *self;

  g_return_val_if_fail (ac != NULL, NULL);

  self = bridge_of (ac);
  return self != NULL ? self->iops : NULL;
}

/**
 * iops_hiredis_set_connect_timeout:
 * @ac: a hiredis asynchronous context attached with `iops_hiredis_attach()`
 * @usecs: microseconds from now, or 0 for no connect timeout
 *
 * Fails @ac if its connection is not established @usecs microseconds from
 * now, on a timer of its IOPS (hiredis 0.14 has no timeouts of its own).
 *
 * Failing runs what hiredis runs when `connect()` fails: `ac->err` is
 * %IOPS_HIREDIS_ERR_TIMEOUT and `ac->errstr` `"Timeout"`, the connect
 * callback gets `REDIS_ERR`, the pending command callbacks get a `NULL`
 * reply, and hiredis frees @ac. Once connected, this has no effect; a
 * later call replaces the earlier deadline.
 *
 * Returns: `REDIS_OK`, or `REDIS_ERR` on bad arguments
 *
 * Since: 1.0
 */
int
iops_hiredis_set_connect_timeout (redisAsyncContext *ac,
                                  gint64             usecs)
{
  IopsHiredisBridge *attached;

  g_return_val_if_fail (ac != NULL, REDIS_ERR);
  attached = bridge_of (ac);
  g_return_val_if_fail (attached != NULL, REDIS_ERR);
  g_return_val_if_fail (usecs >= 0, REDIS_ERR);

  if (bridge_connected (attached))
    return REDIS_OK;
  if (usecs > 0)
    bridge_arm_deadline (attached, DEADLINE_CONNECT, usecs);
  else
    bridge_cancel_deadline (attached);
  return REDIS_OK;
}

/**
 * iops_hiredis_set_command_timeout:
 * @ac: a hiredis asynchronous context attached with `iops_hiredis_attach()`
 * @usecs: microseconds, or 0 for no command timeout (the default)
 *
 * Fails @ac when replies are pending and no data has come from the
 * server for @usecs microseconds, on a timer of its IOPS (hiredis 0.14
 * has no timeouts of its own). Sending does not count: a server that
 * takes commands and never answers times out.
 *
 * Failing runs hiredis's own error path: `ac->err` is
 * %IOPS_HIREDIS_ERR_TIMEOUT and `ac->errstr` `"Timeout"`, every
 * pending callback gets a `NULL` reply, the disconnect callback gets
 * `REDIS_ERR`, and hiredis frees @ac. An idle connection (no reply
 * pending, as when only subscribed) never times out and has no timer
 * armed.
 *
 * Returns: `REDIS_OK`, or `REDIS_ERR` on bad arguments
 *
 * Since: 1.0
 */
int
iops_hiredis_set_command_timeout (redisAsyncContext *ac,
                                  gint64             usecs)
{
  IopsHiredisBridge *attached;

  g_return_val_if_fail (ac != NULL, REDIS_ERR);
  attached = bridge_of (ac);
  g_return_val_if_fail (attached != NULL, REDIS_ERR);
  g_return_val_if_fail (usecs >= 0, REDIS_ERR);

  attached->command_timeout = usecs;
  if (bridge_connected (attached) && !attached->dispatching)
    bridge_update_command_deadline (attached, TRUE);
  return REDIS_OK;
}
