/* iops-glib-iops.c — the IOPS interface on a GMainContext
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "iops-backend.h"
#include "iops-io-event-private.h"
#include "iops-timer-event-private.h"
#include "iops-timer-heap.h"

/**
 * IopsGLibIOPS:
 *
 * The [iface@Iops.IOPS] contract on a [struct@GLib.MainContext].
 *
 * Every fd watch and timer becomes a source on the context, so events are
 * delivered whenever anyone iterates it: [method@Iops.IOPS.start_watching],
 * a GTK or [class@Gio.Application] main loop, or
 * [method@GLib.MainContext.iteration].
 *
 * An `IopsGLibIOPS` belongs to its context: call
 * [method@Iops.IOPS.update_event] and [method@Iops.IOPS.update_timer] from
 * the thread that iterates it. [method@Iops.IOPS.stop_watching] may be called
 * from any thread, but not from a POSIX signal handler: use
 * [func@GLib.unix_signal_add].
 *
 * It holds one reference on an event from the event's first WATCH until its
 * CLEANUP (or the IOPS's disposal), so the consumer may drop its own
 * reference at any time, from any thread.
 *
 * After `fork()`, create a new IOPS in the child; dropping one it inherited
 * is safe and does not change the parent's watches.
 *
 * Since: 1.0
 */

/* One running start_watching(), on the stack of the thread running it. */
typedef struct _Level Level;
struct _Level
{
  Level   *outer;
  int      stop;      /* atomic: stop_watching() may come from another thread */
  gboolean disposed;  /* set by dispose: the IOPS must not be touched */
};

/* Lets a loop over callbacks notice that one of them disposed the IOPS,
 * without a reference that would delay the disposal. */
typedef struct _Guard Guard;
struct _Guard
{
  Guard   *next;
  gboolean disposed;
};

struct _IopsGLibIOPS
{
  GObject        parent_instance;

  GMainContext  *context;
  IopsBackend   *backend;
  char          *backend_name;  /* requested at construction, then NULL */
  int            priority;
  gboolean       persistent;   /* 0 or 1 */

  IopsWatch     *watches;     /* every registered fd watch, armed or not */
  IopsTimer     *timers;      /* every registered timer, armed or not */
  GHashTable    *heaps;       /* priority → IopsTimerHeap of its armed timers */
  guint64        timer_seq;
  guint          n_armed;     /* armed watches + armed timers */

  Guard         *guards;      /* running fire_timers(), innermost first */
  GMutex         levels_lock;
  Level         *innermost;
};

static void iops_glib_iops_iface_init (IopsIOPSInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (IopsGLibIOPS, iops_glib_iops, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (IOPS_TYPE_IOPS, iops_glib_iops_iface_init))

enum {
  PROP_0,
  PROP_CONTEXT,
  PROP_BACKEND,
  PROP_PRIORITY,
  PROP_PERSISTENT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

#define ERROR_CONDITIONS (G_IO_ERR | G_IO_HUP | G_IO_NVAL)

/* Registration lists: intrusive, so registering allocates only the
 * registration itself and unregistering is O(1). */
#define LIST_PREPEND(head, node) G_STMT_START { \
  (node)->prev = NULL;                          \
  (node)->next = (head);                        \
  if ((head) != NULL)                           \
    (head)->prev = (node);                      \
  (head) = (node);                              \
} G_STMT_END

#define LIST_UNLINK(head, node) G_STMT_START {  \
  if ((node)->prev != NULL)                     \
    (node)->prev->next = (node)->next;          \
  else                                          \
    (head) = (node)->next;                      \
  if ((node)->next != NULL)                     \
    (node)->next->prev = (node)->prev;          \
  (node)->prev = (node)->next = NULL;           \
} G_STMT_END

/* Rule 10: the context must not be owned by another thread. Only checked
 * when an event is registered, which keeps it off the re-arm path. */
static gboolean
on_context_thread (IopsGLibIOPS *self)
{
  if (g_main_context_is_owner (self->context))
    return TRUE;
  if (!g_main_context_acquire (self->context))
    return FALSE;
  g_main_context_release (self->context);
  return TRUE;
}

/* Running levels look at n_armed after every iteration (rule 8), so a
 * disarm needs no wake-up: it always happens on the context's thread. */
static inline void
disarmed_one (IopsGLibIOPS *self)
{
  g_assert (self->n_armed > 0);
  self->n_armed--;
}

/* -- fd watches --------------------------------------------------------- */

/* Ownership: a registration holds one reference on its event from the
 * event's first WATCH until its CLEANUP or the IOPS's disposal (rule 6
 * allows it). So a registered event is never finalized, on whatever thread
 * the consumer drops its own reference, and re-arming takes no reference.
 * A delivery holds one more around the callback, which may CLEANUP. */

static IopsWatch *
watch_register (IopsGLibIOPS *self,
                IopsIOEvent  *event)
{
  IopsWatch *watch = self->backend->klass->watch_new (self->backend);

  watch->owner = self;
  watch->event = g_object_ref (event);
  watch->flags = 0;
  LIST_PREPEND (self->watches, watch);
  iops_io_event_set_watch (event, watch);
  return watch;
}

static void
watch_arm (IopsGLibIOPS   *self,
           IopsWatch      *watch,
           int             fd,
           IopsEventFlags  flags)
{
  if (watch->flags == 0)
    self->n_armed++;
  watch->flags = flags;
  watch->persistent = self->persistent;
  self->backend->klass->watch_arm (self->backend, watch, fd, flags, self->priority);
}

static void
watch_unwatch (IopsGLibIOPS *self,
               IopsWatch    *watch)
{
  gboolean was_armed = watch->flags != 0;

  self->backend->klass->watch_disarm (self->backend, watch);
  if (!was_armed)
    return;
  watch->flags = 0;
  disarmed_one (self);
}

/* Forgets @watch (CLEANUP, disposal). Returns the event whose reference
 * the caller must drop: dropping it may run arbitrary code, so the caller
 * does it once the IOPS is consistent. */
static IopsIOEvent *
watch_unregister (IopsGLibIOPS *self,
                  IopsWatch    *watch)
{
  IopsIOEvent *event = watch->event;

  if (watch->flags != 0)
    {
      watch->flags = 0;
      disarmed_one (self);
    }
  iops_io_event_set_watch (event, NULL);
  LIST_UNLINK (self->watches, watch);
  self->backend->klass->watch_free (self->backend, watch);
  return event;
}

/* The registration of @event, if it is this IOPS's; NULL with a critical
 * if another IOPS has it. */
static gboolean
watch_lookup (IopsGLibIOPS  *self,
              IopsIOEvent   *event,
              IopsWatch    **watch)
{
  *watch = iops_io_event_get_watch (event);
  if (*watch == NULL || (*watch)->owner == self)
    return TRUE;
  g_critical ("%s: this IopsIOEvent is registered with another IOPS; "
              "clean it up there first", G_STRFUNC);
  return FALSE;
}

/* Rule 1: WATCH reads fileno() first, before it looks at any state: an
 * overridden fileno (a binding's) may call back into this IOPS and clean up,
 * watch or unref its own event. The event is held meanwhile. */
static void
watch_event (IopsGLibIOPS   *self,
             IopsIOEvent    *event,
             IopsEventFlags  flags)
{
  g_autoptr(IopsIOEvent) held = g_object_ref (event);
  int fd = iops_io_event_read_fileno (event);
  IopsWatch *watch;

  g_return_if_fail (fd >= 0);
  if (self->backend == NULL || !watch_lookup (self, event, &watch))
    return;  /* disposed from inside fileno(), or registered elsewhere */

  if (watch == NULL)
    {
      if (!on_context_thread (self))
        {
          g_critical ("%s: the GMainContext of this IopsGLibIOPS is iterated by "
                      "another thread; call it from that thread", G_STRFUNC);
          return;
        }
      watch = watch_register (self, event);
    }
  watch_arm (self, watch, fd, flags);
}

static void
iops_glib_iops_update_event (IopsIOPS       *iops,
                             IopsIOEvent    *event,
                             IopsEvAction    action,
                             IopsEventFlags  flags)
{
  IopsGLibIOPS *self = (IopsGLibIOPS *) iops;  /* checked by the invoker */
  IopsWatch *watch;

  g_return_if_fail (self->backend != NULL);  /* disposed */

  if (action == IOPS_EVACTION_WATCH && flags != 0)
    watch_event (self, event, flags);
  else if (!watch_lookup (self, event, &watch) || watch == NULL)
    return;
  else if (action == IOPS_EVACTION_CLEANUP)
    g_object_unref (watch_unregister (self, watch));
  else
    watch_unwatch (self, watch);
}

/* WATCH of a registered watch with the default fileno: the re-arm every
 * callback makes. Its only call is the backend's, made last, so that it
 * needs no stack frame of its own; anything else — a first WATCH, a fileno
 * override, bad input — takes the general path. The invoker checked the
 * types, the action and @flags. */
void
iops_glib_iops_watch (IopsIOPS       *iops,
                      IopsIOEvent    *event,
                      IopsEventFlags  flags)
{
  IopsGLibIOPS *self = (IopsGLibIOPS *) iops;
  IopsWatch *watch = iops_io_event_get_watch (event);
  int fd;

  if (G_UNLIKELY (watch == NULL || watch->owner != self || flags == 0 ||
                  IOPS_IO_EVENT_GET_CLASS (event)->fileno != iops_io_event_real_fileno))
    goto general;
  fd = *(int *) G_STRUCT_MEMBER_P (event, iops_io_event_fd_offset);
  if (G_UNLIKELY (fd < 0))
    goto general;
  if (watch->flags == 0)
    self->n_armed++;
  watch->flags = flags;
  watch->persistent = self->persistent;
  self->backend->klass->watch_arm (self->backend, watch, fd, flags, self->priority);
  return;

general:
  iops_glib_iops_update_event (iops, event, IOPS_EVACTION_WATCH, flags);
}

static inline IopsEventFlags
ready_flags (IopsEventFlags watched,
             GIOCondition   revents)
{
  IopsEventFlags ready = 0;

  if (revents & ERROR_CONDITIONS)
    return watched;
  if (revents & G_IO_IN)
    ready |= IOPS_READ_EVENT;
  if (revents & G_IO_OUT)
    ready |= IOPS_WRITE_EVENT;
  return ready & watched;
}

/* Rule 2: exactly one of ready_r, ready_w, ready_rw. From here on the
 * callback may clean up the watch or drop the IOPS. */
static inline void
call_ready (IopsIOEvent    *event,
            IopsEventFlags  ready)
{
  IopsIOEventClass *klass = IOPS_IO_EVENT_GET_CLASS (event);

  if (ready == IOPS_READ_EVENT)
    klass->ready_r (event);
  else if (ready == IOPS_WRITE_EVENT)
    klass->ready_w (event);
  else
    klass->ready_rw (event);
}

void
iops_glib_iops_deliver_io (IopsWatch    *watch,
                           GIOCondition  revents)
{
  IopsGLibIOPS *self = watch->owner;
  IopsIOEvent *event = watch->event;
  IopsEventFlags ready = ready_flags (watch->flags, revents);

  if (ready == 0)
    return;

  if (!watch->persistent || (revents & G_IO_NVAL))
    {
      /* Rule 3: disarm before the callback. The poll set is left alone:
       * most callbacks re-arm at once, and the backend settles it
       * afterwards. An error or hang-up would be reported again at once,
       * though. */
      watch->flags = 0;
      disarmed_one (self);
      if (revents & ERROR_CONDITIONS)
        self->backend->klass->watch_disarm (self->backend, watch);
    }

  /* The backend keeps @watch valid until its dispatch returns, even if the
   * callback cleaned it up or disposed the IOPS. */
  g_object_ref (event);
  call_ready (event, ready);
  g_object_unref (event);
}

/* -- timers ------------------------------------------------------------- */

/* Ownership as for watches: a registration holds one reference on its
 * timer event from its first WATCH until CLEANUP or disposal; a firing
 * holds one more around ready(). */

static IopsTimer *
timer_register (IopsGLibIOPS   *self,
                IopsTimerEvent *event)
{
  IopsTimer *timer = g_new0 (IopsTimer, 1);

  timer->owner = self;
  timer->event = g_object_ref (event);
  timer->heap_index = IOPS_TIMER_NOT_QUEUED;
  LIST_PREPEND (self->timers, timer);
  iops_timer_event_set_timer (event, timer);
  return timer;
}

/* Heaps exist for the priorities that have armed timers: found by
 * priority in a hash table, freed when their last timer goes. */
static IopsTimerHeap *
timer_heap_get (IopsGLibIOPS *self,
                int           priority)
{
  return g_hash_table_lookup (self->heaps, GINT_TO_POINTER (priority));
}

static IopsTimerHeap *
timer_heap_ensure (IopsGLibIOPS *self,
                   int           priority)
{
  IopsTimerHeap *heap = timer_heap_get (self, priority);

  if (heap != NULL)
    return heap;
  heap = g_new0 (IopsTimerHeap, 1);
  heap->priority = priority;
  g_hash_table_insert (self->heaps, GINT_TO_POINTER (priority), heap);
  return heap;
}

/* Frees @heap if no timer is armed in it and no firing loop walks it; the
 * backend may then drop what only that priority's timers used. */
static void
timer_heap_release_if_idle (IopsGLibIOPS  *self,
                            IopsTimerHeap *heap)
{
  int priority = heap->priority;

  if (heap->len > 0 || heap->firing > 0)
    return;
  g_hash_table_remove (self->heaps, GINT_TO_POINTER (priority));
  self->backend->klass->timers_idle (self->backend, priority);
}

static void
timer_arm (IopsGLibIOPS   *self,
           IopsTimerEvent *event,
           gint64          usecs)
{
  IopsTimer *timer = iops_timer_event_get_timer (event);
  IopsTimerHeap *heap, *old;
  gint64 now = g_get_monotonic_time ();

  if (timer == NULL)
    {
      if (!on_context_thread (self))
        {
          g_critical ("%s: the GMainContext of this IopsGLibIOPS is iterated by "
                      "another thread; call it from that thread", G_STRFUNC);
          return;
        }
      timer = timer_register (self, event);
    }

  /* Rule 13: a timer takes the priority in force at its latest WATCH. */
  heap = timer_heap_ensure (self, self->priority);
  old = timer->heap;
  if (old == NULL)
    self->n_armed++;
  else if (old != heap)
    iops_timer_heap_remove (old, timer);
  timer->deadline = usecs > G_MAXINT64 - now ? G_MAXINT64 : now + usecs;
  timer->seq = self->timer_seq++;
  timer->heap = heap;
  iops_timer_heap_insert (heap, timer);
  self->backend->klass->timers_armed (self->backend, heap->priority);
  if (old != NULL && old != heap)
    timer_heap_release_if_idle (self, old);
}

/* Takes @timer off its heap, if it is on one. */
static void
timer_dequeue (IopsGLibIOPS *self,
               IopsTimer    *timer)
{
  IopsTimerHeap *heap = timer->heap;

  if (heap == NULL)
    return;
  iops_timer_heap_remove (heap, timer);
  timer->heap = NULL;
  disarmed_one (self);
  timer_heap_release_if_idle (self, heap);
}

/* Forgets @timer; returns the event reference to drop, as for watches. */
static IopsTimerEvent *
timer_unregister (IopsGLibIOPS *self,
                  IopsTimer    *timer)
{
  IopsTimerEvent *event = timer->event;

  timer_dequeue (self, timer);
  iops_timer_event_set_timer (event, NULL);
  LIST_UNLINK (self->timers, timer);
  g_free (timer);
  return event;
}

void
iops_glib_iops_update_timer (IopsIOPS       *iops,
                             IopsTimerEvent *event,
                             IopsEvAction    action,
                             gint64          usecs)
{
  IopsGLibIOPS *self = (IopsGLibIOPS *) iops;  /* checked by the invoker */
  IopsTimer *timer = iops_timer_event_get_timer (event);

  g_return_if_fail (self->backend != NULL);  /* disposed */

  if (timer != NULL && timer->owner != self)
    {
      g_critical ("%s: this IopsTimerEvent is registered with another IOPS; "
                  "clean it up there first", G_STRFUNC);
      return;
    }

  if (action == IOPS_EVACTION_WATCH)
    timer_arm (self, event, usecs);
  else if (timer == NULL)
    return;
  else if (action == IOPS_EVACTION_CLEANUP)
    g_object_unref (timer_unregister (self, timer));
  else
    timer_dequeue (self, timer);
}

gint64
iops_glib_iops_next_deadline (IopsGLibIOPS *self,
                              int           priority)
{
  IopsTimerHeap *heap = timer_heap_get (self, priority);
  IopsTimer *first = heap != NULL ? iops_timer_heap_peek (heap) : NULL;

  return first != NULL ? first->deadline : -1;
}

gint64
iops_glib_iops_earliest_deadline (IopsGLibIOPS *self)
{
  GHashTableIter iter;
  gpointer heap;
  gint64 earliest = -1;

  /* Only priorities with armed timers have a heap: nearly always one. */
  g_hash_table_iter_init (&iter, self->heaps);
  while (g_hash_table_iter_next (&iter, NULL, &heap))
    {
      IopsTimer *first = iops_timer_heap_peek (heap);

      if (first != NULL && (earliest < 0 || first->deadline < earliest))
        earliest = first->deadline;
    }
  return earliest;
}

void
iops_glib_iops_fire_timers (IopsGLibIOPS *self,
                            int           priority,
                            gint64        now)
{
  IopsTimerHeap *heap = timer_heap_get (self, priority);
  /* Timers armed from inside these callbacks wait for the next dispatch,
   * so a timer re-armed with 0 µs cannot starve the rest of the context. */
  guint64 armed_before = self->timer_seq;
  Guard guard = { self->guards, FALSE };
  IopsTimer *timer;

  if (heap == NULL)
    return;

  /* No reference on self: a callback that drops the consumer's last one
   * disposes the IOPS at once, and no further timer fires (rule 11). The
   * heap stays while this loop walks it, even if callbacks empty it. */
  self->guards = &guard;
  heap->firing++;
  while ((timer = iops_timer_heap_peek (heap)) != NULL &&
         timer->deadline <= now &&
         timer->seq < armed_before)
    {
      /* Rule 7: disarmed before the call. */
      IopsTimerEvent *event = g_object_ref (timer->event);

      iops_timer_heap_remove (heap, timer);
      timer->heap = NULL;
      disarmed_one (self);
      IOPS_TIMER_EVENT_GET_CLASS (event)->ready (event, 0);
      g_object_unref (event);
      if (guard.disposed)
        return;
    }
  heap->firing--;
  self->guards = guard.next;
  timer_heap_release_if_idle (self, heap);
}

/* -- running ------------------------------------------------------------ */

typedef struct
{
  GPollFD *fds;
  int      allocated;
} PollArray;

/* One blocking iteration of an acquired @context: what
 * g_main_context_iteration() does, without acquiring and releasing the
 * context every time (which costs more than a delivery's bookkeeping). */
static void
iterate (GMainContext *context,
         PollArray    *poll)
{
  int max_priority, timeout, n_fds;

  g_main_context_prepare (context, &max_priority);
  while ((n_fds = g_main_context_query (context, max_priority, &timeout,
                                        poll->fds, poll->allocated)) > poll->allocated)
    {
      poll->allocated = n_fds;
      poll->fds = g_renew (GPollFD, poll->fds, n_fds);
    }
  if (n_fds > 0 || timeout != 0)
    g_main_context_get_poll_func (context) (poll->fds, (guint) n_fds, timeout);
  g_main_context_check (context, max_priority, poll->fds, n_fds);
  g_main_context_dispatch (context);
}

static void
iops_glib_iops_start_watching (IopsIOPS *iops)
{
  IopsGLibIOPS *self = IOPS_GLIB_IOPS (iops);
  GMainContext *context = self->context;
  Level level = { NULL, FALSE, FALSE };
  PollArray poll_array = { NULL, 0 };

  if (!g_main_context_acquire (context))
    {
      g_critical ("%s: the GMainContext of this IopsGLibIOPS is iterated by "
                  "another thread", G_STRFUNC);
      return;
    }
  g_main_context_ref (context);

  g_mutex_lock (&self->levels_lock);
  level.outer = self->innermost;
  self->innermost = &level;
  g_mutex_unlock (&self->levels_lock);

  /* Rule 8: a level ends when stopped, or as soon as nothing is armed —
   * checked after each iteration, so every level sees it. No reference on
   * self: dropping the consumer's last one from a callback disposes the
   * IOPS at once (rule 11), and every level returns without touching it. */
  while (!level.disposed && self->n_armed > 0 && !g_atomic_int_get (&level.stop))
    iterate (context, &poll_array);
  g_free (poll_array.fds);

  if (!level.disposed)
    {
      g_mutex_lock (&self->levels_lock);
      self->innermost = level.outer;
      g_mutex_unlock (&self->levels_lock);
    }

  g_main_context_release (context);
  g_main_context_unref (context);
}

static void
iops_glib_iops_stop_watching (IopsIOPS *iops)
{
  IopsGLibIOPS *self = IOPS_GLIB_IOPS (iops);

  g_mutex_lock (&self->levels_lock);
  if (self->innermost != NULL)
    {
      g_atomic_int_set (&self->innermost->stop, TRUE);
      g_main_context_wakeup (self->context);
    }
  g_mutex_unlock (&self->levels_lock);
}

/* Until the class exists, an address that no instance has as its class:
 * the invokers compare an instance's class with it and nothing else, so it
 * must never match a NULL one. */
GTypeClass *iops_glib_iops_class_ptr = (GTypeClass *) &iops_glib_iops_class_ptr;
IopsIOPSInterface *iops_glib_iops_iface_ptr;

static void
iops_glib_iops_iface_init (IopsIOPSInterface *iface)
{
  iops_glib_iops_iface_ptr = iface;
  iface->update_event = iops_glib_iops_update_event;
  iface->update_timer = iops_glib_iops_update_timer;
  iface->start_watching = iops_glib_iops_start_watching;
  iface->stop_watching = iops_glib_iops_stop_watching;
}

/* -- GObject ------------------------------------------------------------ */

/* The preferred backend first. */
static const IopsBackendClass *const backends[] = {
#ifdef HAVE_EPOLL
  &iops_backend_epoll_class,
#endif
  &iops_backend_gsource_class,
};

/* The :backend property, else IOPS_GLIB_BACKEND, else the best one. */
static const IopsBackendClass *
iops_backend_choose (const char *requested)
{
  if (requested == NULL || *requested == '\0')
    requested = g_getenv ("IOPS_GLIB_BACKEND");
  if (requested == NULL || *requested == '\0')
    return backends[0];

  for (guint i = 0; i < G_N_ELEMENTS (backends); i++)
    if (g_str_equal (requested, backends[i]->name))
      return backends[i];

  g_warning ("'%s' names no backend of this build of iops-glib; using '%s'",
             requested, backends[0]->name);
  return backends[0];
}

/* Rule 11: disarm everything first, then drop the references, so that no
 * finalizer they trigger can observe a half-torn IOPS. No callback is made. */
static void
iops_glib_iops_dispose (GObject *object)
{
  IopsGLibIOPS *self = IOPS_GLIB_IOPS (object);
  g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func (g_object_unref);
  IopsWatch *watch;
  IopsTimer *timer;

  if (self->backend != NULL)
    self->backend->klass->disposing (self->backend);
  while ((watch = self->watches) != NULL)
    g_ptr_array_add (held, watch_unregister (self, watch));
  while ((timer = self->timers) != NULL)
    g_ptr_array_add (held, timer_unregister (self, timer));
  g_assert (self->n_armed == 0);

  /* Loops running callbacks of this IOPS must not touch it again. */
  for (Guard *guard = self->guards; guard != NULL; guard = guard->next)
    guard->disposed = TRUE;
  self->guards = NULL;
  g_mutex_lock (&self->levels_lock);
  for (Level *level = self->innermost; level != NULL; level = level->outer)
    level->disposed = TRUE;
  self->innermost = NULL;
  g_mutex_unlock (&self->levels_lock);

  if (self->backend != NULL)
    self->backend->klass->destroy (g_steal_pointer (&self->backend));

  G_OBJECT_CLASS (iops_glib_iops_parent_class)->dispose (object);
}

static void
iops_glib_iops_finalize (GObject *object)
{
  IopsGLibIOPS *self = IOPS_GLIB_IOPS (object);

  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->backend_name, g_free);
  g_clear_pointer (&self->heaps, g_hash_table_unref);
  g_mutex_clear (&self->levels_lock);

  G_OBJECT_CLASS (iops_glib_iops_parent_class)->finalize (object);
}

static void
iops_glib_iops_constructed (GObject *object)
{
  IopsGLibIOPS *self = IOPS_GLIB_IOPS (object);

  G_OBJECT_CLASS (iops_glib_iops_parent_class)->constructed (object);

  if (self->context == NULL)
    self->context = g_main_context_ref_thread_default ();
  self->backend = iops_backend_choose (self->backend_name)->create (self, self->context);
  self->backend->klass->use_priority (self->backend, self->priority);
  g_free (self->backend_name);
  self->backend_name = NULL;
}

static void
iops_glib_iops_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  IopsGLibIOPS *self = IOPS_GLIB_IOPS (object);

  switch (prop_id)
    {
    case PROP_CONTEXT:
      g_value_set_boxed (value, self->context);
      break;

    case PROP_BACKEND:
      g_value_set_string (value, iops_glib_iops_get_backend (self));
      break;

    case PROP_PRIORITY:
      g_value_set_int (value, self->priority);
      break;

    case PROP_PERSISTENT:
      g_value_set_boolean (value, self->persistent);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
iops_glib_iops_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  IopsGLibIOPS *self = IOPS_GLIB_IOPS (object);

  switch (prop_id)
    {
    case PROP_CONTEXT:
      self->context = g_value_dup_boxed (value);
      break;

    case PROP_BACKEND:
      self->backend_name = g_value_dup_string (value);
      break;

    case PROP_PRIORITY:
      iops_glib_iops_set_priority (self, g_value_get_int (value));
      break;

    case PROP_PERSISTENT:
      iops_glib_iops_set_persistent (self, g_value_get_boolean (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
iops_glib_iops_class_init (IopsGLibIOPSClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  iops_glib_iops_class_ptr = (GTypeClass *) klass;
  object_class->constructed = iops_glib_iops_constructed;
  object_class->dispose = iops_glib_iops_dispose;
  object_class->finalize = iops_glib_iops_finalize;
  object_class->get_property = iops_glib_iops_get_property;
  object_class->set_property = iops_glib_iops_set_property;

  /**
   * IopsGLibIOPS:context:
   *
   * The main context every source is attached to. %NULL at construction
   * means the thread-default context of the constructing thread (the global
   * default context where none is pushed).
   *
   * Since: 1.0
   */
  properties[PROP_CONTEXT] =
    g_param_spec_boxed ("context", NULL, NULL,
                        G_TYPE_MAIN_CONTEXT,
                        (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                         G_PARAM_STATIC_STRINGS));

  /**
   * IopsGLibIOPS:backend:
   *
   * How the IOPS talks to the context: `"epoll"` (Linux: one source over
   * an epoll fd and a timerfd, whose cost per delivery does not grow with
   * the number of idle fds, and whose timers keep microsecond precision) or
   * `"gsource"` (portable: one source per fd watch, timers rounded up to
   * GLib's milliseconds).
   *
   * %NULL at construction takes the `IOPS_GLIB_BACKEND` environment
   * variable, else the best backend of the platform. Reading it gives the
   * backend in use.
   *
   * Since: 1.0
   */
  properties[PROP_BACKEND] =
    g_param_spec_string ("backend", NULL, NULL,
                         NULL,
                         (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                          G_PARAM_STATIC_STRINGS));

  /**
   * IopsGLibIOPS:priority:
   *
   * The priority of every source the IOPS creates, such as
   * %G_PRIORITY_DEFAULT. A change applies from each event's next WATCH.
   *
   * Since: 1.0
   */
  properties[PROP_PRIORITY] =
    g_param_spec_int ("priority", NULL, NULL,
                      G_MININT, G_MAXINT, G_PRIORITY_DEFAULT,
                      (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                       G_PARAM_STATIC_STRINGS));

  /**
   * IopsGLibIOPS:persistent:
   *
   * Whether fd watches stay armed after a delivery.
   *
   * %FALSE (the IOPS contract): a watch is disarmed before its callback
   * runs, and the consumer watches again for the next event.
   *
   * %TRUE (the mode of libcouchbase's own plugins): a watch stays armed
   * until UNWATCH, CLEANUP or a WATCH with other flags or another fd.
   * Readiness is then level-triggered: a hung-up fd is reported on every
   * iteration until it is unwatched. An invalid fd is still disarmed after
   * one delivery.
   *
   * A change applies from each event's next WATCH.
   *
   * Since: 1.0
   */
  properties[PROP_PERSISTENT] =
    g_param_spec_boolean ("persistent", NULL, NULL,
                          FALSE,
                          (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                           G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
heap_free (gpointer data)
{
  iops_timer_heap_clear (data);
  g_free (data);
}

static void
iops_glib_iops_init (IopsGLibIOPS *self)
{
  self->priority = G_PRIORITY_DEFAULT;
  self->heaps = g_hash_table_new_full (NULL, NULL, NULL, heap_free);
  g_mutex_init (&self->levels_lock);
}

/**
 * iops_glib_iops_new:
 * @context: (nullable): a #GMainContext, or %NULL for the calling thread's
 *   thread-default context
 *
 * Creates an IOPS whose events are sources on @context.
 *
 * Returns: (transfer full): a new #IopsGLibIOPS
 *
 * Since: 1.0
 */
IopsGLibIOPS *
iops_glib_iops_new (GMainContext *context)
{
  return g_object_new (IOPS_TYPE_GLIB_IOPS, "context", context, NULL);
}

/**
 * iops_glib_iops_get_context:
 * @self: an #IopsGLibIOPS
 *
 * Gets [property@Iops.GLibIOPS:context].
 *
 * Returns: (transfer none): the main context
 *
 * Since: 1.0
 */
GMainContext *
iops_glib_iops_get_context (IopsGLibIOPS *self)
{
  g_return_val_if_fail (IOPS_IS_GLIB_IOPS (self), NULL);

  return self->context;
}

/**
 * iops_glib_iops_get_backend:
 * @self: an #IopsGLibIOPS
 *
 * Gets the name of the backend in use; see [property@Iops.GLibIOPS:backend].
 *
 * Returns: (transfer none): `"epoll"` or `"gsource"`
 *
 * Since: 1.0
 */
const char *
iops_glib_iops_get_backend (IopsGLibIOPS *self)
{
  g_return_val_if_fail (IOPS_IS_GLIB_IOPS (self), NULL);

  return self->backend != NULL ? self->backend->klass->name : NULL;
}

/**
 * iops_glib_iops_get_priority:
 * @self: an #IopsGLibIOPS
 *
 * Gets [property@Iops.GLibIOPS:priority].
 *
 * Returns: the source priority
 *
 * Since: 1.0
 */
int
iops_glib_iops_get_priority (IopsGLibIOPS *self)
{
  g_return_val_if_fail (IOPS_IS_GLIB_IOPS (self), G_PRIORITY_DEFAULT);

  return self->priority;
}

/**
 * iops_glib_iops_set_priority:
 * @self: an #IopsGLibIOPS
 * @priority: a source priority, such as %G_PRIORITY_DEFAULT
 *
 * Sets [property@Iops.GLibIOPS:priority].
 *
 * Since: 1.0
 */
void
iops_glib_iops_set_priority (IopsGLibIOPS *self,
                             int           priority)
{
  g_return_if_fail (IOPS_IS_GLIB_IOPS (self));

  if (self->priority == priority)
    return;

  self->priority = priority;
  /* Before any WATCH at it: see IopsBackendClass.use_priority. */
  if (self->backend != NULL)
    self->backend->klass->use_priority (self->backend, priority);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PRIORITY]);
}

/**
 * iops_glib_iops_get_persistent:
 * @self: an #IopsGLibIOPS
 *
 * Gets [property@Iops.GLibIOPS:persistent].
 *
 * Returns: whether fd watches stay armed after a delivery
 *
 * Since: 1.0
 */
gboolean
iops_glib_iops_get_persistent (IopsGLibIOPS *self)
{
  g_return_val_if_fail (IOPS_IS_GLIB_IOPS (self), FALSE);

  return self->persistent;
}

/**
 * iops_glib_iops_set_persistent:
 * @self: an #IopsGLibIOPS
 * @persistent: whether fd watches stay armed after a delivery
 *
 * Sets [property@Iops.GLibIOPS:persistent].
 *
 * Since: 1.0
 */
void
iops_glib_iops_set_persistent (IopsGLibIOPS *self,
                               gboolean      persistent)
{
  g_return_if_fail (IOPS_IS_GLIB_IOPS (self));

  persistent = !!persistent;
  if (self->persistent == persistent)
    return;

  self->persistent = persistent;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PERSISTENT]);
}
