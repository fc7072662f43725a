/* mock-iops.c — a second IopsIOPS implementation, for the bridges' tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Ownership: registrations live in an array of entries. An entry holds one
 * reference on its event from its first WATCH until CLEANUP (or the
 * IOPS's disposal), as rule 6 allows, and a callback holds one more for
 * its length. Entries leave the array only between iterations, so that a
 * callback may CLEANUP anything; each has a generation, bumped by every
 * change, so that a callback found due before an UNWATCH or a re-arm is
 * not made (rule 4).
 */
#include <errno.h>
#include <poll.h>

#include "mock-iops.h"

typedef struct
{
  gpointer       object;      /* IopsIOEvent or IopsTimerEvent; NULL once cleaned up */
  gboolean       is_timer;
  gboolean       armed;
  IopsEventFlags flags;
  int            fd;          /* read at WATCH (rule 1) */
  gint64         due;         /* timers: monotonic µs */
  guint64        order;       /* of the latest WATCH, for equal deadlines */
  guint64        generation;
} Entry;

typedef struct
{
  Entry          *entry;
  guint64         generation;
  IopsEventFlags  ready;
} Due;

struct _MockIOPS
{
  GObject         parent_instance;
  GPtrArray      *entries;       /* Entry*, owned */
  GHashTable     *alive;         /* every object ever watched, until finalized */
  guint64         next_order;
  guint           dispatching;   /* iterations on the stack */
  gboolean       *stop;          /* the innermost running level's, or NULL */
  gint64          deadline;      /* monotonic µs, 0: none */
  gboolean        deadline_hit;
  MockIOPSCounts  counts;
};

static void mock_iops_iface_init (IopsIOPSInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (MockIOPS, mock_iops, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (IOPS_TYPE_IOPS, mock_iops_iface_init))

/* -- registrations -------------------------------------------------------- */

static Entry *
find_entry (MockIOPS *self,
            gpointer  object)
{
  for (guint i = 0; i < self->entries->len; i++)
    {
      Entry *entry = g_ptr_array_index (self->entries, i);

      if (entry->object == object)
        return entry;
    }
  return NULL;
}

static guint
n_registered_events (MockIOPS *self)
{
  guint n = 0;

  for (guint i = 0; i < self->entries->len; i++)
    {
      Entry *entry = g_ptr_array_index (self->entries, i);

      n += entry->object != NULL && !entry->is_timer;
    }
  return n;
}

static void
on_object_finalized (gpointer  data,
                     GObject  *object)
{
  g_hash_table_remove (MOCK_IOPS (data)->alive, object);
}

static Entry *
lookup_or_add (MockIOPS *self,
               gpointer  object,
               gboolean  is_timer)
{
  Entry *entry = find_entry (self, object);

  if (entry != NULL)
    return entry;

  entry = g_new0 (Entry, 1);
  entry->object = g_object_ref (object);
  entry->is_timer = is_timer;
  entry->fd = -1;
  g_ptr_array_add (self->entries, entry);
  if (g_hash_table_add (self->alive, object))
    g_object_weak_ref (object, on_object_finalized, self);
  if (!is_timer)
    self->counts.max_events = MAX (self->counts.max_events, n_registered_events (self));
  return entry;
}

/* Unreferencing at CLEANUP may run any code: the entry is updated first. */
static void
entry_update (MockIOPS     *self,
              Entry        *entry,
              IopsEvAction  action)
{
  entry->generation++;
  entry->armed = action == IOPS_EVACTION_WATCH;
  if (entry->armed)
    entry->order = self->next_order++;
  if (action == IOPS_EVACTION_CLEANUP)
    g_clear_object (&entry->object);
}

static gboolean
action_is_valid (IopsEvAction action)
{
  return action == IOPS_EVACTION_WATCH || action == IOPS_EVACTION_UNWATCH ||
         action == IOPS_EVACTION_CLEANUP;
}

static void
mock_iops_update_event (IopsIOPS       *iops,
                        IopsIOEvent    *event,
                        IopsEvAction    action,
                        IopsEventFlags  flags)
{
  MockIOPS *self = MOCK_IOPS (iops);
  Entry *entry;
  int fd;

  g_return_if_fail (IOPS_IS_IO_EVENT (event));
  g_return_if_fail (action_is_valid (action));
  g_return_if_fail ((flags & ~IOPS_RW_EVENT) == 0);

  if (action != IOPS_EVACTION_WATCH || flags == 0)
    {
      if ((entry = find_entry (self, event)) != NULL)
        entry_update (self, entry, action == IOPS_EVACTION_CLEANUP ? action : IOPS_EVACTION_UNWATCH);
      return;
    }

  fd = iops_io_event_fileno (event);
  g_return_if_fail (fd >= 0);
  entry = lookup_or_add (self, event, FALSE);
  entry->fd = fd;
  entry->flags = flags;
  entry_update (self, entry, IOPS_EVACTION_WATCH);
  self->counts.watches++;
}

static void
mock_iops_update_timer (IopsIOPS       *iops,
                        IopsTimerEvent *timer,
                        IopsEvAction    action,
                        gint64          usecs)
{
  MockIOPS *self = MOCK_IOPS (iops);
  Entry *entry;

  g_return_if_fail (IOPS_IS_TIMER_EVENT (timer));
  g_return_if_fail (action_is_valid (action));

  if (action != IOPS_EVACTION_WATCH)
    {
      if ((entry = find_entry (self, timer)) != NULL)
        entry_update (self, entry, action);
      return;
    }

  g_return_if_fail (usecs >= 0);
  entry = lookup_or_add (self, timer, TRUE);
  entry->due = g_get_monotonic_time () + usecs;
  entry_update (self, entry, IOPS_EVACTION_WATCH);
  self->counts.timer_arms++;
}

/* -- one iteration -------------------------------------------------------- */

static int
poll_timeout (MockIOPS *self,
              int       timeout_ms)
{
  gint64 now = g_get_monotonic_time ();

  for (guint i = 0; i < self->entries->len; i++)
    {
      Entry *entry = g_ptr_array_index (self->entries, i);
      gint64 ms;

      if (!entry->armed || !entry->is_timer)
        continue;
      /* Rounded up: a timer never fires early. */
      ms = entry->due <= now ? 0 : (entry->due - now + 999) / 1000;
      if (timeout_ms < 0 || ms < timeout_ms)
        timeout_ms = (int) MIN (ms, G_MAXINT);
    }
  return timeout_ms;
}

static short
poll_events (IopsEventFlags flags)
{
  return ((flags & IOPS_READ_EVENT) ? POLLIN : 0) | ((flags & IOPS_WRITE_EVENT) ? POLLOUT : 0);
}

static IopsEventFlags
ready_flags (IopsEventFlags watched,
             short          revents)
{
  IopsEventFlags ready = 0;

  if (revents & (POLLERR | POLLHUP | POLLNVAL))
    return watched;  /* rule 2: errors are ready for every watched flag */
  if (revents & POLLIN)
    ready |= IOPS_READ_EVENT;
  if (revents & POLLOUT)
    ready |= IOPS_WRITE_EVENT;
  return ready & watched;
}

static gint
due_order (gconstpointer a,
           gconstpointer b)
{
  const Due *x = a, *y = b;

  if (x->entry->is_timer != y->entry->is_timer)
    return x->entry->is_timer ? -1 : 1;
  if (x->entry->is_timer && x->entry->due != y->entry->due)
    return x->entry->due < y->entry->due ? -1 : 1;
  return x->entry->order < y->entry->order ? -1 : x->entry->order > y->entry->order;
}

static void
poll_entries (MockIOPS  *self,
              GArray    *pfds,
              int        timeout_ms)
{
  int n;

  do
    n = poll ((struct pollfd *) (void *) pfds->data, pfds->len, poll_timeout (self, timeout_ms));
  while (n < 0 && errno == EINTR);
  g_assert_cmpint (n, >=, 0);
  self->counts.wakeups++;
}

/* Polls and lists what is due, in the order of due_order (). */
static GArray *
collect_due (MockIOPS *self,
             int       timeout_ms)
{
  GArray *pfds = g_array_new (FALSE, FALSE, sizeof (struct pollfd));
  GPtrArray *polled = g_ptr_array_new ();
  GArray *due = g_array_new (FALSE, FALSE, sizeof (Due));
  gint64 now;

  for (guint i = 0; i < self->entries->len; i++)
    {
      Entry *entry = g_ptr_array_index (self->entries, i);
      struct pollfd pfd = { entry->fd, poll_events (entry->flags), 0 };

      if (!entry->armed || entry->is_timer)
        continue;
      g_array_append_val (pfds, pfd);
      g_ptr_array_add (polled, entry);
    }

  poll_entries (self, pfds, timeout_ms);

  now = g_get_monotonic_time ();
  for (guint i = 0; i < self->entries->len; i++)
    {
      Entry *entry = g_ptr_array_index (self->entries, i);
      Due d = { entry, entry->generation, 0 };

      if (entry->armed && entry->is_timer && entry->due <= now)
        g_array_append_val (due, d);
    }
  for (guint i = 0; i < pfds->len; i++)
    {
      Entry *entry = g_ptr_array_index (polled, i);
      Due d = { entry, entry->generation,
                ready_flags (entry->flags, g_array_index (pfds, struct pollfd, i).revents) };

      if (d.ready != 0)
        g_array_append_val (due, d);
    }
  g_array_sort (due, due_order);
  g_ptr_array_unref (polled);
  g_array_unref (pfds);
  return due;
}

static void
call (MockIOPS       *self,
      Entry          *entry,
      IopsEventFlags  ready)
{
  if (entry->is_timer)
    {
      self->counts.timer_fires++;
      iops_timer_event_ready (entry->object, 0);
      return;
    }
  self->counts.deliveries++;
  if (ready == IOPS_READ_EVENT)
    iops_io_event_ready_r (entry->object);
  else if (ready == IOPS_WRITE_EVENT)
    iops_io_event_ready_w (entry->object);
  else
    iops_io_event_ready_rw (entry->object);
}

/* Rules 3 and 7: disarmed before its callback, which holds a reference. */
static gboolean
dispatch_one (MockIOPS *self,
              Due      *due)
{
  Entry *entry = due->entry;
  g_autoptr(GObject) held = NULL;

  if (!entry->armed || entry->generation != due->generation)
    return FALSE;
  entry->armed = FALSE;
  entry->generation++;
  held = g_object_ref (entry->object);
  call (self, entry, due->ready);
  return TRUE;
}

static void
compact (MockIOPS *self)
{
  for (guint i = self->entries->len; i-- > 0;)
    if (((Entry *) g_ptr_array_index (self->entries, i))->object == NULL)
      g_ptr_array_remove_index (self->entries, i);
}

guint
mock_iops_iterate (MockIOPS *self,
                   int       timeout_ms)
{
  GArray *due;
  guint n = 0;

  g_return_val_if_fail (MOCK_IS_IOPS (self), 0);

  /* A callback may drop the last reference to the IOPS. */
  g_object_ref (self);
  self->dispatching++;
  due = collect_due (self, timeout_ms);
  for (guint i = 0; i < due->len; i++)
    n += dispatch_one (self, &g_array_index (due, Due, i));
  g_array_unref (due);
  if (--self->dispatching == 0)
    compact (self);
  g_object_unref (self);
  return n;
}

/* -- running -------------------------------------------------------------- */

/* How long the next poll may wait: until the deadline, if one is set, and
 * never past @give_up. */
static int
next_wait_ms (MockIOPS *self,
              gint64    give_up)
{
  gint64 now = g_get_monotonic_time ();
  gint64 until = self->deadline != 0 ? MIN (self->deadline, give_up) : give_up;

  if (self->deadline != 0 && self->deadline <= now)
    self->deadline_hit = TRUE;
  return until <= now ? 0 : (int) MIN ((until - now + 999) / 1000, G_MAXINT);
}

static void
mock_iops_start_watching (IopsIOPS *iops)
{
  MockIOPS *self = MOCK_IOPS (iops);
  gboolean stop = FALSE;
  gboolean *outer = self->stop;
  gint64 give_up = g_get_monotonic_time () + MOCK_IOPS_MAX_RUN_MS * G_TIME_SPAN_MILLISECOND;

  self->stop = &stop;
  while (!stop && mock_iops_n_armed (self) > 0)
    {
      int wait_ms = next_wait_ms (self, give_up);

      if (self->deadline_hit)
        break;
      if (self->deadline == 0 && g_get_monotonic_time () >= give_up)
        g_error ("mock IOPS: start_watching ran for %d ms with %u armed",
                 MOCK_IOPS_MAX_RUN_MS, mock_iops_n_armed (self));
      mock_iops_iterate (self, wait_ms);
    }
  self->stop = outer;
}

/* Ends the innermost level, once the iteration it is in is over. */
static void
mock_iops_stop_watching (IopsIOPS *iops)
{
  MockIOPS *self = MOCK_IOPS (iops);

  if (self->stop != NULL)
    *self->stop = TRUE;
}

void
mock_iops_set_deadline (MockIOPS *self,
                        guint     ms)
{
  g_return_if_fail (MOCK_IS_IOPS (self));

  self->deadline = g_get_monotonic_time () + (gint64) ms * G_TIME_SPAN_MILLISECOND;
  self->deadline_hit = FALSE;
}

gboolean
mock_iops_deadline_hit (MockIOPS *self)
{
  g_return_val_if_fail (MOCK_IS_IOPS (self), FALSE);

  return self->deadline_hit;
}

/* -- looking at it -------------------------------------------------------- */

guint
mock_iops_n_armed (MockIOPS *self)
{
  guint n = 0;

  for (guint i = 0; i < self->entries->len; i++)
    n += ((Entry *) g_ptr_array_index (self->entries, i))->armed;
  return n;
}

guint
mock_iops_n_registered (MockIOPS *self)
{
  guint n = 0;

  for (guint i = 0; i < self->entries->len; i++)
    n += ((Entry *) g_ptr_array_index (self->entries, i))->object != NULL;
  return n;
}

guint
mock_iops_n_alive (MockIOPS *self)
{
  return g_hash_table_size (self->alive);
}

const MockIOPSCounts *
mock_iops_get_counts (MockIOPS *self)
{
  return &self->counts;
}

IopsEventFlags
mock_iops_get_flags (MockIOPS *self,
                     gpointer  event)
{
  Entry *entry = find_entry (self, event);

  return entry != NULL && entry->armed ? entry->flags : 0;
}

int
mock_iops_get_fd (MockIOPS *self,
                  gpointer  event)
{
  Entry *entry = find_entry (self, event);

  return entry != NULL ? entry->fd : -1;
}

gboolean
mock_iops_timer_armed (MockIOPS *self,
                       gpointer  timer)
{
  Entry *entry = find_entry (self, timer);

  return entry != NULL && entry->armed;
}

gpointer
mock_iops_find (MockIOPS *self,
                GType     type)
{
  for (guint i = 0; i < self->entries->len; i++)
    {
      Entry *entry = g_ptr_array_index (self->entries, i);

      if (entry->object != NULL && G_TYPE_CHECK_INSTANCE_TYPE (entry->object, type))
        return entry->object;
    }
  return NULL;
}

/* -- the object ----------------------------------------------------------- */

static void
entry_free (gpointer data)
{
  Entry *entry = data;

  g_clear_object (&entry->object);
  g_free (entry);
}

static void
mock_iops_dispose (GObject *object)
{
  MockIOPS *self = MOCK_IOPS (object);

  /* Rule 11: everything disarmed at once, no callback. */
  g_ptr_array_set_size (self->entries, 0);
  G_OBJECT_CLASS (mock_iops_parent_class)->dispose (object);
}

static void
mock_iops_finalize (GObject *object)
{
  MockIOPS *self = MOCK_IOPS (object);
  GHashTableIter iter;
  gpointer alive;

  g_ptr_array_unref (self->entries);
  g_hash_table_iter_init (&iter, self->alive);
  while (g_hash_table_iter_next (&iter, &alive, NULL))
    g_object_weak_unref (alive, on_object_finalized, self);
  g_hash_table_unref (self->alive);
  G_OBJECT_CLASS (mock_iops_parent_class)->finalize (object);
}

static void
mock_iops_class_init (MockIOPSClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = mock_iops_dispose;
  G_OBJECT_CLASS (klass)->finalize = mock_iops_finalize;
}

static void
mock_iops_iface_init (IopsIOPSInterface *iface)
{
  iface->update_event = mock_iops_update_event;
  iface->update_timer = mock_iops_update_timer;
  iface->start_watching = mock_iops_start_watching;
  iface->stop_watching = mock_iops_stop_watching;
}

static void
mock_iops_init (MockIOPS *self)
{
  self->entries = g_ptr_array_new_with_free_func (entry_free);
  self->alive = g_hash_table_new (NULL, NULL);
}

MockIOPS *
mock_iops_new (void)
{
  return g_object_new (MOCK_TYPE_IOPS, NULL);
}
