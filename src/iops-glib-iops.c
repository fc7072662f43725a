/* iops-glib-iops.c — the IOPS interface on a GMainContext
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The GObject shell: properties, the choice of backend, running the loop,
 * disposal. Watches and timers are the cores' (iops-watches.c,
 * iops-timers.c); the backend polls (iops-backend.h).
 */
#include "config.h"

#include "iops-backend.h"
#include "iops-timers.h"
#include "iops-watches.h"

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

/* One running start_watching(), on the stack of the thread running it;
 * stop_watching() may reach it from any thread, under levels_lock. */
typedef struct _Level Level;
struct _Level
{
  Level *outer;
  int    stop;  /* atomic */
};

struct _IopsGLibIOPS
{
  GObject        parent_instance;

  GMainContext  *context;
  char          *backend_name;  /* requested at construction, then NULL */
  int            priority;
  gboolean       persistent;    /* 0 or 1 */

  /* From construction until disposal. */
  IopsBackend   *backend;
  IopsWatches   *watches;
  IopsTimers    *timers;

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

/* -- the interface ------------------------------------------------------ */

static void
watch_fd (IopsGLibIOPS   *self,
          IopsIOEvent    *event,
          int             fd,
          IopsEventFlags  flags)
{
  g_return_if_fail (fd >= 0);

  if (self->watches != NULL)  /* else disposed from inside fileno() */
    iops_watches_watch (self->watches, event, fd, flags, self->priority, self->persistent);
}

/* Rule 1: fileno() is read first, before any state is looked at: an
 * overridden one (a binding's) may call back into this IOPS — clean up,
 * watch or unref its own event, which is held meanwhile, or dispose us. */
static void
watch_event (IopsGLibIOPS   *self,
             IopsIOEvent    *event,
             IopsEventFlags  flags)
{
  g_object_ref (event);
  watch_fd (self, event, IOPS_IO_EVENT_GET_CLASS (event)->fileno (event), flags);
  g_object_unref (event);
}

static void
iops_glib_iops_update_event (IopsIOPS       *iops,
                             IopsIOEvent    *event,
                             IopsEvAction    action,
                             IopsEventFlags  flags)
{
  IopsGLibIOPS *self = (IopsGLibIOPS *) iops;  /* checked by the invoker */

  g_return_if_fail (self->watches != NULL);  /* disposed */

  if (action == IOPS_EVACTION_WATCH && flags != 0)
    watch_event (self, event, flags);
  else if (action == IOPS_EVACTION_CLEANUP)
    iops_watches_cleanup (self->watches, event);
  else
    iops_watches_unwatch (self->watches, event);
}

static void
iops_glib_iops_update_timer (IopsIOPS       *iops,
                             IopsTimerEvent *timer,
                             IopsEvAction    action,
                             gint64          usecs)
{
  IopsGLibIOPS *self = (IopsGLibIOPS *) iops;  /* checked by the invoker */

  g_return_if_fail (self->timers != NULL);  /* disposed */

  if (action == IOPS_EVACTION_WATCH)
    iops_timers_arm (self->timers, timer, usecs);
  else if (action == IOPS_EVACTION_CLEANUP)
    iops_timers_cleanup (self->timers, timer);
  else
    iops_timers_unwatch (self->timers, timer);
}

static gboolean
anything_armed (IopsGLibIOPS *self)
{
  return iops_watches_n_armed (self->watches) + iops_timers_n_armed (self->timers) > 0;
}

static void
iops_glib_iops_start_watching (IopsIOPS *iops)
{
  IopsGLibIOPS *self = IOPS_GLIB_IOPS (iops);
  g_autoptr(GMainContext) context = g_main_context_ref (self->context);
  gpointer alive = self;
  Level level = { NULL, FALSE };

  g_return_if_fail (self->watches != NULL);  /* disposed */
  if (!g_main_context_acquire (context))
    {
      g_critical ("%s: the GMainContext of this IopsGLibIOPS is iterated by "
                  "another thread", G_STRFUNC);
      return;
    }

  /* No reference on self: dropping the consumer's last one from a callback
   * disposes the IOPS at once (rule 11), and every level returns without
   * touching it. The weak pointer tells. */
  g_object_add_weak_pointer (G_OBJECT (self), &alive);
  g_mutex_lock (&self->levels_lock);
  level.outer = self->innermost;
  self->innermost = &level;
  g_mutex_unlock (&self->levels_lock);

  /* Rule 8: a level ends when stopped, or as soon as nothing is armed —
   * checked after each iteration, so every level sees it. */
  while (alive != NULL && anything_armed (self) && !g_atomic_int_get (&level.stop))
    g_main_context_iteration (context, TRUE);

  if (alive != NULL)
    {
      g_mutex_lock (&self->levels_lock);
      self->innermost = level.outer;
      g_mutex_unlock (&self->levels_lock);
      g_object_remove_weak_pointer (G_OBJECT (self), &alive);
    }
  g_main_context_release (context);
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

static void
iops_glib_iops_iface_init (IopsIOPSInterface *iface)
{
  iface->update_event = iops_glib_iops_update_event;
  iface->update_timer = iops_glib_iops_update_timer;
  iface->start_watching = iops_glib_iops_start_watching;
  iface->stop_watching = iops_glib_iops_stop_watching;
}

/* -- GObject ------------------------------------------------------------ */

/* Rule 13: later WATCHes use the priority. The backend makes what they
 * will need now, never inside a WATCH (see its use_priority). */
static void
apply_priority (IopsGLibIOPS *self)
{
  self->backend->klass->use_priority (self->backend, self->priority);
  iops_timers_use_priority (self->timers, self->priority);
}

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
 * finalizer they trigger can observe a half-torn IOPS. No callback is made:
 * loops running callbacks of this IOPS see their sources destroyed, and
 * start_watching() levels their weak pointer cleared. */
static void
iops_glib_iops_dispose (GObject *object)
{
  IopsGLibIOPS *self = IOPS_GLIB_IOPS (object);
  g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func (g_object_unref);

  g_mutex_lock (&self->levels_lock);
  self->innermost = NULL;
  g_mutex_unlock (&self->levels_lock);

  if (self->backend != NULL)
    {
      self->backend->klass->disposing (self->backend);
      iops_watches_free (g_steal_pointer (&self->watches), held);
      iops_timers_free (g_steal_pointer (&self->timers), held);
      self->backend->klass->destroy (g_steal_pointer (&self->backend));
    }

  G_OBJECT_CLASS (iops_glib_iops_parent_class)->dispose (object);
}

static void
iops_glib_iops_finalize (GObject *object)
{
  IopsGLibIOPS *self = IOPS_GLIB_IOPS (object);

  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->backend_name, g_free);
  g_mutex_clear (&self->levels_lock);

  G_OBJECT_CLASS (iops_glib_iops_parent_class)->finalize (object);
}

static void
iops_glib_iops_constructed (GObject *object)
{
  IopsGLibIOPS *self = IOPS_GLIB_IOPS (object);
  const IopsBackendClass *klass = iops_backend_choose (self->backend_name);

  G_OBJECT_CLASS (iops_glib_iops_parent_class)->constructed (object);

  if (self->context == NULL)
    self->context = g_main_context_ref_thread_default ();
  g_clear_pointer (&self->backend_name, g_free);
  self->backend = klass->create (self->context);
  self->watches = iops_watches_new (self->context, self->backend);
  self->timers = iops_timers_new (self->context, klass->precise_timers);
  apply_priority (self);
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
iops_glib_iops_init (IopsGLibIOPS *self)
{
  self->priority = G_PRIORITY_DEFAULT;
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
  if (self->backend != NULL)
    apply_priority (self);
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
