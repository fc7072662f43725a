/* tsan-gmutex.c — makes GMutex visible to ThreadSanitizer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * GLib is not built with -fsanitize=thread, and on Linux GMutex is a futex
 * of its own, not a pthread mutex that TSan intercepts. Every access the
 * library guards with a GMutex (the start/stop_watching levels) would then
 * be reported as a race. Linked into TSan builds of the tests only, these
 * wrappers take the place of GLib's functions for calls from the executable
 * and libiops-glib (GLib's internal calls are bound inside libglib) and tell
 * TSan about the acquire/release they perform. Nothing is suppressed: a
 * missing lock is still reported.
 */
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <glib.h>

typedef void     (*LockFunc)    (GMutex *mutex);
typedef gboolean (*TryLockFunc) (GMutex *mutex);

static gpointer real_lock, real_trylock, real_unlock;

/* GLib locks mutexes from its own constructors, before ours would run:
 * resolve lazily. Racing threads store the same value; atomics say so. */
static gpointer
real (gpointer   *slot,
      const char *name)
{
  gpointer func = __atomic_load_n (slot, __ATOMIC_ACQUIRE);

  if (func == NULL)
    {
      func = dlsym (RTLD_NEXT, name);
      if (func == NULL)
        g_error ("tsan-gmutex: %s not found", name);
      __atomic_store_n (slot, func, __ATOMIC_RELEASE);
    }
  return func;
}

void
g_mutex_lock (GMutex *mutex)
{
  ((LockFunc) real (&real_lock, "g_mutex_lock")) (mutex);
  __tsan_acquire (mutex);
}

gboolean
g_mutex_trylock (GMutex *mutex)
{
  if (!((TryLockFunc) real (&real_trylock, "g_mutex_trylock")) (mutex))
    return FALSE;
  __tsan_acquire (mutex);
  return TRUE;
}

void
g_mutex_unlock (GMutex *mutex)
{
  __tsan_release (mutex);
  ((LockFunc) real (&real_unlock, "g_mutex_unlock")) (mutex);
}
