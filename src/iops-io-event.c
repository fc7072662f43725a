/* iops-io-event.c — one file descriptor watch
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "iops-io-event-private.h"
#include "iops-enum-types.h"

/**
 * IopsIOEvent:
 *
 * One file descriptor watch of the IOPS contract.
 *
 * A consumer creates an event (with [ctor@Iops.IOEvent.new], a subclass, or
 * [method@Iops.IOPS.io_event_factory]) and hands it to
 * [method@Iops.IOPS.update_event]. When its fd becomes ready the IOPS calls
 * exactly one of the `ready_r`, `ready_w` or `ready_rw` virtual methods.
 *
 * Override the virtual methods in a subclass for the fastest path, or
 * connect to [signal@Iops.IOEvent::ready], which the default implementations
 * emit. The fd to watch is what the `fileno` virtual method returns; by
 * default that is [property@Iops.IOEvent:fd].
 *
 * Since: 1.0
 */

typedef struct
{
  int            fd;
  gpointer       registration;          /* an IOPS's, see the private header */
  GDestroyNotify registration_destroy;
} IopsIOEventPrivate;

G_DEFINE_TYPE_WITH_PRIVATE (IopsIOEvent, iops_io_event, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_FD,
  N_PROPS
};

enum {
  SIGNAL_READY,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static int
iops_io_event_real_fileno (IopsIOEvent *self)
{
  IopsIOEventPrivate *priv = iops_io_event_get_instance_private (self);

  return priv->fd;
}

static void
iops_io_event_real_ready_r (IopsIOEvent *self)
{
  g_signal_emit (self, signals[SIGNAL_READY], 0, IOPS_READ_EVENT);
}

static void
iops_io_event_real_ready_w (IopsIOEvent *self)
{
  g_signal_emit (self, signals[SIGNAL_READY], 0, IOPS_WRITE_EVENT);
}

static void
iops_io_event_real_ready_rw (IopsIOEvent *self)
{
  g_signal_emit (self, signals[SIGNAL_READY], 0, IOPS_RW_EVENT);
}

static void
iops_io_event_finalize (GObject *object)
{
  IopsIOEventPrivate *priv = iops_io_event_get_instance_private (IOPS_IO_EVENT (object));

  if (priv->registration != NULL && priv->registration_destroy != NULL)
    priv->registration_destroy (g_steal_pointer (&priv->registration));

  G_OBJECT_CLASS (iops_io_event_parent_class)->finalize (object);
}

static void
iops_io_event_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  IopsIOEvent *self = IOPS_IO_EVENT (object);

  switch (prop_id)
    {
    case PROP_FD:
      g_value_set_int (value, iops_io_event_get_fd (self));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
iops_io_event_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  IopsIOEvent *self = IOPS_IO_EVENT (object);

  switch (prop_id)
    {
    case PROP_FD:
      iops_io_event_set_fd (self, g_value_get_int (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
iops_io_event_class_init (IopsIOEventClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = iops_io_event_finalize;
  object_class->get_property = iops_io_event_get_property;
  object_class->set_property = iops_io_event_set_property;

  klass->fileno = iops_io_event_real_fileno;
  klass->ready_r = iops_io_event_real_ready_r;
  klass->ready_w = iops_io_event_real_ready_w;
  klass->ready_rw = iops_io_event_real_ready_rw;

  /**
   * IopsIOEvent:fd:
   *
   * The file descriptor the default `fileno` implementation returns, or -1.
   * An IOPS reads it at each WATCH; changing it does not move an armed watch.
   *
   * Since: 1.0
   */
  properties[PROP_FD] =
    g_param_spec_int ("fd", NULL, NULL,
                      -1, G_MAXINT, -1,
                      (G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                       G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * IopsIOEvent::ready:
   * @self: the event
   * @flags: what is ready: %IOPS_READ_EVENT, %IOPS_WRITE_EVENT or
   *   %IOPS_RW_EVENT
   *
   * Emitted by the default `ready_r`, `ready_w` and `ready_rw`
   * implementations when the watched fd is ready. An fd that failed or hung
   * up is reported as ready for every watched flag; the consumer's own
   * read() or write() then finds the error.
   *
   * Since: 1.0
   */
  signals[SIGNAL_READY] =
    g_signal_new ("ready",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0,
                  NULL, NULL,
                  NULL,
                  G_TYPE_NONE, 1, IOPS_TYPE_EVENT_FLAGS);
}

static void
iops_io_event_init (IopsIOEvent *self)
{
  IopsIOEventPrivate *priv = iops_io_event_get_instance_private (self);

  priv->fd = -1;
}

/**
 * iops_io_event_new:
 * @fd: the file descriptor to watch, or -1 to set it later
 *
 * Creates a plain fd watch object; connect to [signal@Iops.IOEvent::ready]
 * to be told when @fd is ready.
 *
 * Returns: (transfer full): a new #IopsIOEvent
 *
 * Since: 1.0
 */
IopsIOEvent *
iops_io_event_new (int fd)
{
  g_return_val_if_fail (fd >= -1, NULL);

  return g_object_new (IOPS_TYPE_IO_EVENT, "fd", fd, NULL);
}

/**
 * iops_io_event_get_fd:
 * @self: an #IopsIOEvent
 *
 * Gets [property@Iops.IOEvent:fd].
 *
 * Returns: the file descriptor, or -1
 *
 * Since: 1.0
 */
int
iops_io_event_get_fd (IopsIOEvent *self)
{
  IopsIOEventPrivate *priv;

  g_return_val_if_fail (IOPS_IS_IO_EVENT (self), -1);

  priv = iops_io_event_get_instance_private (self);
  return priv->fd;
}

/**
 * iops_io_event_set_fd:
 * @self: an #IopsIOEvent
 * @fd: a file descriptor, or -1
 *
 * Sets [property@Iops.IOEvent:fd]. It takes effect at the next WATCH.
 *
 * Since: 1.0
 */
void
iops_io_event_set_fd (IopsIOEvent *self,
                      int          fd)
{
  IopsIOEventPrivate *priv;

  g_return_if_fail (IOPS_IS_IO_EVENT (self));
  g_return_if_fail (fd >= -1);

  priv = iops_io_event_get_instance_private (self);
  if (priv->fd == fd)
    return;

  priv->fd = fd;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FD]);
}

/**
 * iops_io_event_fileno: (virtual fileno)
 * @self: an #IopsIOEvent
 *
 * Gets the file descriptor an IOPS should watch for @self. It is read at
 * each WATCH.
 *
 * Returns: the file descriptor, or -1 when there is none
 *
 * Since: 1.0
 */
int
iops_io_event_fileno (IopsIOEvent *self)
{
  g_return_val_if_fail (IOPS_IS_IO_EVENT (self), -1);

  return IOPS_IO_EVENT_GET_CLASS (self)->fileno (self);
}

/**
 * iops_io_event_ready_r: (virtual ready_r)
 * @self: an #IopsIOEvent
 *
 * Called by the IOPS when the watched fd is readable, or has failed.
 *
 * Since: 1.0
 */
void
iops_io_event_ready_r (IopsIOEvent *self)
{
  g_return_if_fail (IOPS_IS_IO_EVENT (self));

  IOPS_IO_EVENT_GET_CLASS (self)->ready_r (self);
}

/**
 * iops_io_event_ready_w: (virtual ready_w)
 * @self: an #IopsIOEvent
 *
 * Called by the IOPS when the watched fd is writable, or has failed.
 *
 * Since: 1.0
 */
void
iops_io_event_ready_w (IopsIOEvent *self)
{
  g_return_if_fail (IOPS_IS_IO_EVENT (self));

  IOPS_IO_EVENT_GET_CLASS (self)->ready_w (self);
}

/**
 * iops_io_event_ready_rw: (virtual ready_rw)
 * @self: an #IopsIOEvent
 *
 * Called by the IOPS when the watched fd is both readable and writable, or
 * has failed while watched for both.
 *
 * Since: 1.0
 */
void
iops_io_event_ready_rw (IopsIOEvent *self)
{
  g_return_if_fail (IOPS_IS_IO_EVENT (self));

  IOPS_IO_EVENT_GET_CLASS (self)->ready_rw (self);
}

gpointer
iops_io_event_get_registration (IopsIOEvent *self)
{
  IopsIOEventPrivate *priv = iops_io_event_get_instance_private (self);

  return priv->registration;
}

void
iops_io_event_set_registration (IopsIOEvent    *self,
                                gpointer        registration,
                                GDestroyNotify  destroy)
{
  IopsIOEventPrivate *priv = iops_io_event_get_instance_private (self);

  priv->registration = registration;
  priv->registration_destroy = destroy;
}
