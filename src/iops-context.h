/* iops-context.h — whose thread a GMainContext belongs to
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Rule 10: an IOPS is used from the thread that iterates its context. Only
 * checked when an event is first registered, off the re-arm path: the
 * context must not be owned by another thread. Criticals otherwise. */
static inline gboolean
iops_context_check_thread (GMainContext *context,
                           const char   *func)
{
  if (g_main_context_is_owner (context))
    return TRUE;
  if (g_main_context_acquire (context))
    {
      g_main_context_release (context);
      return TRUE;
    }
  g_critical ("%s: the GMainContext of this IopsGLibIOPS is iterated by "
              "another thread; call it from that thread", func);
  return FALSE;
}

G_END_DECLS
