/* iops-backend.h — the seam between IopsGLibIOPS and the code that talks to
 * the GMainContext
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * IopsGLibIOPS owns the contract: validation, references, one-shot versus
 * persistent, start/stop. A backend only makes the context poll fds and wake
 * up for the earliest timer, and reports readiness back through
 * iops_glib_iops_deliver_io() and iops_glib_iops_fire_timers().
 */
#pragma once

#include "iops-glib-iops-private.h"

G_BEGIN_DECLS

typedef struct _IopsBackend IopsBackend;

/* One fd watch registration. The backend allocates it inside a structure of
 * its own and the core fills it in. It holds one reference on its event
 * from its first WATCH until CLEANUP or disposal. */
struct _IopsWatch
{
  IopsWatch      *prev, *next;   /* the owner's list of registrations */
  IopsGLibIOPS   *owner;
  IopsIOEvent    *event;         /* strong reference */
  IopsEventFlags  flags;         /* armed flags, 0 when disarmed */
  gboolean        persistent;
};

typedef struct
{
  const char *name;

  IopsBackend *(*create)         (IopsGLibIOPS *owner,
                                  GMainContext *context);
  /* Destroys every source; no callback is made afterwards. */
  void         (*destroy)        (IopsBackend  *self);

  IopsWatch   *(*watch_new)      (IopsBackend  *self);
  /* Makes the context poll @fd for @flags (non-zero). @fd may differ from the
   * previous one, or be the same number for a new file. */
  void         (*watch_arm)      (IopsBackend  *self,
                                  IopsWatch    *watch,
                                  int           fd,
                                  IopsEventFlags flags,
                                  int           priority);
  /* Stops reporting readiness for the watch: an UNWATCH, or a delivery
   * that found an error or hang-up. The gsource backend takes the fd out of
   * the poll set at once; the epoll one lazily, when it next wakes. */
  void         (*watch_disarm)   (IopsBackend  *self,
                                  IopsWatch    *watch);
  /* Disarms and frees; safe from inside the watch's own delivery. */
  void         (*watch_free)     (IopsBackend  *self,
                                  IopsWatch    *watch);

  /* The IOPS's priority is now @priority: every later WATCH and timer arm
   * uses it. Whatever a WATCH at @priority needs that takes an fd (an epoll
   * fd) is made here, never during the WATCH: an fd made there could take
   * the number the consumer just closed, after fileno() was read. Called
   * once right after create(), then at each change. */
  void         (*use_priority)   (IopsBackend  *self,
                                  int           priority);

  /* A timer was armed at @priority: make sure a source fires the timers of
   * that priority. Called on every arm, so cheap when nothing changes. */
  void         (*timers_armed)   (IopsBackend  *self,
                                  int           priority);
  /* No timer is armed at @priority any more: what only its timers used may
   * go. May come from inside that priority's timer dispatch. */
  void         (*timers_idle)    (IopsBackend  *self,
                                  int           priority);

  /* The IOPS is being disposed: watch_free() follows for every watch, then
   * destroy(). What destroy() drops anyway needs no undoing per watch —
   * and in a child process after fork() must not be undone, as the kernel
   * objects it shares with its parent are the parent's too. */
  void         (*disposing)      (IopsBackend  *self);
} IopsBackendClass;

struct _IopsBackend
{
  const IopsBackendClass *klass;
};

extern const IopsBackendClass iops_backend_gsource_class;
#ifdef HAVE_EPOLL
extern const IopsBackendClass iops_backend_epoll_class;
#endif

G_END_DECLS
