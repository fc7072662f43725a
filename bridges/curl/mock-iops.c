/* mock-iops.c — a second IopsIOPS implementation, for the bridge's tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Ownership: an event's entry holds one reference on it from its first
 * WATCH until its CLEANUP or the mock's disposal; each iteration holds one
 * more on every event it may call, for the length of the iteration.
 */
#include <errno.h>
#include <poll.h>

#include "iops-test-util.h"
#include "mock-iops.h"

typedef struct
{
  gpointer        event;     /* IopsIOEvent or IopsTimerEvent; a reference */
  gboolean        is_timer;
  gboolean        armed;
  int             fd;        /* read at WATCH (rule 1) */
  IopsEventFlags  flags;
  gint64          deadline;  /* timers: monotonic µs */
  guint64         seq;       /* when it was last armed */
} Entry;

struct _MockIOPS
{
  GObject         parent_instance;
  GHashTable     *entries;   /* event → Entry */
  GHashTable     *alive;     /* every event ever given, until finalized */
  guint64         seq;
  gboolean       *stop;      /* the innermost running level's, or NULL */
  MockIOPSCounts  counts;
};

static void mock_iops_iface_init (IopsIOPSInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (MockIOPS, mock_iops, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (IOPS_TYPE_IOPS, mock_iops_iface_init))

static void
entry_free (gpointer data)
{
  Entry *entry = data;

  g_object_unref (entry->event);
  g_free (entry);
}

static void
on_event_finalized (gpointer  data,
                    GObject  *event)
{
  MockIOPS *self = data;

  g_hash_table_remove (self->alive, event);
}

static Entry *
entry_get (MockIOPS *self,
           gpointer  event,
           gboolean  is_timer)
{
  Entry *entry = g_hash_table_lookup (self->entries, event);

  if (entry == NULL)
    {
      entry = g_new0 (Entry, 1);
      entry->event = g_object_ref (event);
      entry->is_timer = is_timer;
      g_hash_table_insert (self->entries, event, entry);
      if (g_hash_table_add (self->alive, event))
        g_object_weak_ref (event, on_event_finalized, self);
      if (!is_timer)
        self->counts.max_events = MAX (self->counts.max_events, mock_iops_n_registered (self));
    }
  return entry;
}

/* Unreferencing may run any code: the entry leaves the table first. */
static void
entry_cleanup (MockIOPS *self,
               gpointer  event)
{
  Entry *entry = g_hash_table_lookup (self->entries, event);

  if (entry == NULL)
    return;
  g_hash_table_steal (self->entries, event);
  entry_free (entry);
}

static void
mock_update_event (IopsIOPS       *iops,
                   IopsIOEvent    *event,
                   IopsEvAction    action,
                   IopsEventFlags  flags)
{
  MockIOPS *self = MOCK_IOPS (iops);
  Entry *entry;

  g_return_if_fail (IOPS_IS_IO_EVENT (event));
  g_return_if_fail (action == IOPS_EVACTION_WATCH || action == IOPS_EVACTION_UNWATCH ||
                    action == IOPS_EVACTION_CLEANUP);
  g_return_if_fail ((flags & ~IOPS_RW_EVENT) == 0);

  if (action == IOPS_EVACTION_CLEANUP)
    {
      entry_cleanup (self, event);
      return;
    }
  if (action == IOPS_EVACTION_UNWATCH || flags == 0)
    {
      if ((entry = g_hash_table_lookup (self->entries, event)) != NULL)
        entry->armed = FALSE;
      return;
    }

  g_return_if_fail (iops_io_event_fileno (event) >= 0);
  entry = entry_get (self, event, FALSE);
  entry->fd = iops_io_event_fileno (event);
  entry->flags = flags;
  entry->armed = TRUE;
  entry->seq = ++self->seq;
  self->counts.watches++;
}

static void
mock_update_timer (IopsIOPS       *iops,
                   IopsTimerEvent *timer,
                   IopsEvAction    action,
                   gint64          usecs)
{
  MockIOPS *self = MOCK_IOPS (iops);
  Entry *entry;

  g_return_if_fail (IOPS_IS_TIMER_EVENT (timer));
  g_return_if_fail (action == IOPS_EVACTION_WATCH || action == IOPS_EVACTION_UNWATCH ||
                    action == IOPS_EVACTION_CLEANUP);

  if (action == IOPS_EVACTION_CLEANUP)
    {
      entry_cleanup (self, timer);
      return;
    }
  if (action == IOPS_EVACTION_UNWATCH)
    {
      if ((entry = g_hash_table_lookup (self->entries, timer)) != NULL)
        entry->armed = FALSE;
      return;
    }

  g_return_if_fail (usecs >= 0);
  entry = entry_get (self, timer, TRUE);
  entry->deadline = g_get_monotonic_time () + usecs;
  entry->armed = TRUE;
  entry->seq = ++self->seq;
  self->counts.timer_arms++;
}

/* -- one iteration ------------------------------------------------------- */

typedef struct
{
  GArray    *pfds;      /* struct pollfd, one per armed watch */
  GPtrArray *watched;   /* their events, referenced */
  GPtrArray *timers;    /* every armed timer, referenced */
  gint64     earliest;  /* the first deadline, or G_MAXINT64 */
  guint64    seq;       /* anything armed after this is not polled yet */
} PollSet;

static short
poll_events (IopsEventFlags flags)
{
  return ((flags & IOPS_READ_EVENT) ? POLLIN : 0) | ((flags & IOPS_WRITE_EVENT) ? POLLOUT : 0);
}

static void
poll_set_collect (MockIOPS *self,
                  PollSet  *set)
{
  GHashTableIter iter;
  Entry *entry;

  set->pfds = g_array_new (FALSE, FALSE, sizeof (struct pollfd));
  set->watched = g_ptr_array_new_with_free_func (g_object_unref);
  set->timers = g_ptr_array_new_with_free_func (g_object_unref);
  set->earliest = G_MAXINT64;
  set->seq = self->seq;

  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &entry))
    {
      if (!entry->armed)
        continue;
      if (entry->is_timer)
        {
          set->earliest = MIN (set->earliest, entry->deadline);
          g_ptr_array_add (set->timers, g_object_ref (entry->event));
        }
      else
        {
          struct pollfd pfd = { entry->fd, poll_events (entry->flags), 0 };

          g_array_append_val (set->pfds, pfd);
          g_ptr_array_add (set->watched, g_object_ref (entry->event));
        }
    }
}

static void
poll_set_clear (PollSet *set)
{
  g_array_unref (set->pfds);
  g_ptr_array_unref (set->watched);
  g_ptr_array_unref (set->timers);
}

static int
poll_timeout_ms (const PollSet *set)
{
  gint64 delay;

  if (set->earliest == G_MAXINT64)
    return -1;
  delay = set->earliest - g_get_monotonic_time ();
  return delay <= 0 ? 0 : (int) MIN ((delay + 999) / 1000, G_MAXINT);
}

static gint
compare_deadlines (gconstpointer a,
                   gconstpointer b,
                   gpointer      data)
{
  GHashTable *entries = data;
  const Entry *ea = g_hash_table_lookup (entries, *(gpointer *) a);
  const Entry *eb = g_hash_table_lookup (entries, *(gpointer *) b);

  if (ea->deadline != eb->deadline)
    return ea->deadline < eb->deadline ? -1 : 1;
  return ea->seq < eb->seq ? -1 : ea->seq > eb->seq;
}

/* Due timers, in deadline order; each is disarmed before its call
 * (rule 7), and one re-armed or cancelled by an earlier call is left. */
static void
fire_timers (MockIOPS *self,
             PollSet  *set)
{
  gint64 now = g_get_monotonic_time ();

  g_ptr_array_sort_with_data (set->timers, compare_deadlines, self->entries);
  for (guint i = 0; i < set->timers->len; i++)
    {
      gpointer timer = g_ptr_array_index (set->timers, i);
      Entry *entry = g_hash_table_lookup (self->entries, timer);

      if (entry == NULL || !entry->armed || entry->seq > set->seq || entry->deadline > now)
        continue;
      entry->armed = FALSE;
      self->counts.timer_fires++;
      iops_timer_event_ready (timer, 0);
    }
}

static IopsEventFlags
ready_flags (const Entry *entry,
             short        revents)
{
  IopsEventFlags ready = 0;

  if (revents & (POLLERR | POLLHUP | POLLNVAL))
    return entry->flags;  /* rule 2: errors are ready for every watched flag */
  if (revents & POLLIN)
    ready |= IOPS_READ_EVENT;
  if (revents & POLLOUT)
    ready |= IOPS_WRITE_EVENT;
  return ready & entry->flags;
}

static void
deliver (IopsIOEvent    *event,
         IopsEventFlags  ready)
{
  if (ready == IOPS_READ_EVENT)
    iops_io_event_ready_r (event);
  else if (ready == IOPS_WRITE_EVENT)
    iops_io_event_ready_w (event);
  else
    iops_io_event_ready_rw (event);
}

/* One-shot (rule 3): disarmed before the call. A watch unwatched, cleaned
 * up or re-armed by an earlier call of this iteration is not called. */
static void
deliver_ready (MockIOPS *self,
               PollSet  *set)
{
  for (guint i = 0; i < set->pfds->len; i++)
    {
      const struct pollfd *pfd = &g_array_index (set->pfds, struct pollfd, i);
      IopsIOEvent *event = g_ptr_array_index (set->watched, i);
      Entry *entry = g_hash_table_lookup (self->entries, event);
      IopsEventFlags ready;

      if (pfd->revents == 0 || entry == NULL || !entry->armed || entry->seq > set->seq)
        continue;
      ready = ready_flags (entry, pfd->revents);
      if (ready == 0)
        continue;
      entry->armed = FALSE;
      self->counts.deliveries++;
      deliver (event, ready);
    }
}

static void
mock_iterate (MockIOPS *self)
{
  PollSet set;
  int n;

  poll_set_collect (self, &set);
  do
    n = poll ((struct pollfd *) (void *) set.pfds->data, set.pfds->len, poll_timeout_ms (&set));
  while (n < 0 && errno == EINTR);
  g_assert_cmpint (n, >=, 0);
  self->counts.wakeups++;

  /* The set holds a reference on self's events, not on self: a callback
   * must not drop the last reference to the IOPS here. */
  g_object_ref (self);
  fire_timers (self, &set);
  deliver_ready (self, &set);
  g_object_unref (self);
  poll_set_clear (&set);
}

/* -- running -------------------------------------------------------------- */

static void
mock_start_watching (IopsIOPS *iops)
{
  MockIOPS *self = MOCK_IOPS (iops);
  gboolean stop = FALSE;
  gboolean *outer = self->stop;
  gint64 give_up = g_get_monotonic_time () + MOCK_IOPS_MAX_RUN_MS * G_TIME_SPAN_MILLISECOND;

  self->stop = &stop;
  while (!stop && mock_iops_n_armed (self) > 0)
    {
      mock_iterate (self);
      if (g_get_monotonic_time () > give_up)
        g_error ("mock IOPS: start_watching ran for %d ms with %u armed",
                 MOCK_IOPS_MAX_RUN_MS, mock_iops_n_armed (self));
    }
  self->stop = outer;
}

static void
mock_stop_watching (IopsIOPS *iops)
{
  MockIOPS *self = MOCK_IOPS (iops);

  if (self->stop != NULL)
    *self->stop = TRUE;
}

static void
mock_iops_iface_init (IopsIOPSInterface *iface)
{
  iface->update_event = mock_update_event;
  iface->update_timer = mock_update_timer;
  iface->start_watching = mock_start_watching;
  iface->stop_watching = mock_stop_watching;
}

static void
mock_iops_finalize (GObject *object)
{
  MockIOPS *self = MOCK_IOPS (object);
  GHashTableIter iter;
  gpointer event;

  g_hash_table_unref (self->entries);
  g_hash_table_iter_init (&iter, self->alive);
  while (g_hash_table_iter_next (&iter, &event, NULL))
    g_object_weak_unref (event, on_event_finalized, self);
  g_hash_table_unref (self->alive);
  G_OBJECT_CLASS (mock_iops_parent_class)->finalize (object);
}

static void
mock_iops_class_init (MockIOPSClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = mock_iops_finalize;
}

static void
mock_iops_init (MockIOPS *self)
{
  self->entries = g_hash_table_new_full (NULL, NULL, NULL, entry_free);
  self->alive = g_hash_table_new (NULL, NULL);
}

MockIOPS *
mock_iops_new (void)
{
  return g_object_new (MOCK_TYPE_IOPS, NULL);
}

guint
mock_iops_n_armed (MockIOPS *self)
{
  GHashTableIter iter;
  Entry *entry;
  guint n = 0;

  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &entry))
    n += entry->armed;
  return n;
}

guint
mock_iops_n_registered (MockIOPS *self)
{
  return g_hash_table_size (self->entries);
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
