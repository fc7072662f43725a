/* iops-watches.h — the fd watch registrations of one IopsGLibIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The core of rules 1–6: what is armed, for which flags, in which mode;
 * references; the choice of ready_r, ready_w or ready_rw. How the context
 * polls the fds is the backend's (iops-backend.h).
 */
#pragma once

#include "iops-glib.h"

G_BEGIN_DECLS

typedef struct _IopsWatches IopsWatches;
typedef struct _IopsWatch   IopsWatch;
typedef struct _IopsBackend IopsBackend;

IopsWatches *iops_watches_new     (GMainContext   *context,
                                   IopsBackend    *backend);
/* Disarms and forgets every watch, appending the events' references to
 * @held for the caller to drop once it is consistent. No callback. */
void         iops_watches_free    (IopsWatches    *self,
                                   GPtrArray      *held);

/* WATCH of @fd, which @event's fileno() just gave, with @flags (non-zero);
 * @priority and @persistent are the IOPS's now (rule 13). */
void         iops_watches_watch   (IopsWatches    *self,
                                   IopsIOEvent    *event,
                                   int             fd,
                                   IopsEventFlags  flags,
                                   int             priority,
                                   gboolean        persistent);
void         iops_watches_unwatch (IopsWatches    *self,
                                   IopsIOEvent    *event);
void         iops_watches_cleanup (IopsWatches    *self,
                                   IopsIOEvent    *event);
guint        iops_watches_n_armed (IopsWatches    *self);

/* Backend → core: the fd of @watch polled @revents. If the watch is armed
 * for part of it (an error or hang-up counts for every flag), exactly one of
 * ready_r, ready_w, ready_rw is called. A one-shot delivery disarms first,
 * telling the backend with watch_suspend() — or watch_disarm() for an error
 * or hang-up, which would be reported again right away —; the callback may
 * WATCH again (watch_arm()). Returns FALSE when the watch was cleaned up
 * meanwhile (or the IOPS disposed): its backend state is gone. */
gboolean     iops_watch_deliver   (IopsWatch      *watch,
                                   GIOCondition    revents);

G_END_DECLS
