/* iops-backend.h — the seam between the watches core and the code that
 * makes the GMainContext poll fds
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The core (iops-watches.c) owns the contract: what is armed, references,
 * one-shot versus persistent. A backend only polls: the core tells it every
 * change with one call below, and it reports readiness with
 * iops_watch_deliver(). Each side keeps its own state; a backend's state for
 * a watch is an opaque pointer to the core, and the core's IopsWatch is
 * opaque to the backend. Timers are not a backend's business
 * (iops-timer-queue.c), except for whether they may be precise.
 */
#pragma once

#include "iops-watches.h"

G_BEGIN_DECLS

typedef struct _IopsBackendClass IopsBackendClass;

struct _IopsBackend
{
  const IopsBackendClass *klass;
};

struct _IopsBackendClass
{
  const char *name;
  /* Timers of an IOPS on this backend wake at the exact microsecond. */
  gboolean    precise_timers;

  IopsBackend *(*create)        (GMainContext   *context);
  /* Destroys every source; no callback is made afterwards. */
  void         (*destroy)       (IopsBackend    *self);

  /* The IOPS's priority is now @priority: every later WATCH uses it.
   * Whatever a WATCH at @priority needs that takes an fd (an epoll fd) is
   * made here, never during the WATCH, where it could take the number the
   * consumer just closed, after fileno() was read (rule 2). Called right
   * after create(), then at each change. */
  void         (*use_priority)  (IopsBackend    *self,
                                 int             priority);

  /* The IOPS is being disposed: watch_free() follows for every watch, then
   * destroy(). What destroy() drops anyway needs no undoing per watch — and
   * in a child after fork() must not be undone: the kernel objects it
   * shares with its parent are the parent's too. */
  void         (*disposing)     (IopsBackend    *self);

  /* The state of a new registration, which reports through @watch. */
  gpointer     (*watch_new)     (IopsBackend    *self,
                                 IopsWatch      *watch);
  /* The registration is gone (CLEANUP, disposal), maybe from inside its
   * own delivery: nothing is reported for it any more. */
  void         (*watch_free)    (IopsBackend    *self,
                                 gpointer        poll);
  /* Poll @fd for @flags (non-zero) at @priority: a first WATCH, a re-arm,
   * or a change — @fd may be another number, or the same number for a new
   * file (rule 1). */
  void         (*watch_arm)     (IopsBackend    *self,
                                 gpointer        poll,
                                 int             fd,
                                 IopsEventFlags  flags,
                                 int             priority);
  /* Stop reporting now: an UNWATCH, or a delivery that found an error or
   * hang-up. */
  void         (*watch_disarm)  (IopsBackend    *self,
                                 gpointer        poll);
  /* A one-shot delivery, right before its callback: stop reporting, lazily
   * if that is cheaper — the callback is likely to WATCH again at once. */
  void         (*watch_suspend) (IopsBackend    *self,
                                 gpointer        poll);
};

extern const IopsBackendClass iops_backend_gsource_class;
#ifdef HAVE_EPOLL
extern const IopsBackendClass iops_backend_epoll_class;
#endif

G_END_DECLS
