/* iops-glib-iops.h — the IOPS interface on a GMainContext
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(IOPS_GLIB_INSIDE) && !defined(IOPS_GLIB_COMPILATION)
# error "Only <iops-glib.h> can be included directly."
#endif

#include <glib-object.h>

#include "iops-version-macros.h"
#include "iops-iops.h"

G_BEGIN_DECLS

#define IOPS_TYPE_GLIB_IOPS (iops_glib_iops_get_type ())

IOPS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (IopsGLibIOPS, iops_glib_iops, IOPS, GLIB_IOPS, GObject)

IOPS_AVAILABLE_IN_ALL
IopsGLibIOPS *iops_glib_iops_new            (GMainContext *context);
IOPS_AVAILABLE_IN_ALL
GMainContext *iops_glib_iops_get_context    (IopsGLibIOPS *self);
IOPS_AVAILABLE_IN_ALL
const char   *iops_glib_iops_get_backend    (IopsGLibIOPS *self);
IOPS_AVAILABLE_IN_ALL
int           iops_glib_iops_get_priority   (IopsGLibIOPS *self);
IOPS_AVAILABLE_IN_ALL
void          iops_glib_iops_set_priority   (IopsGLibIOPS *self,
                                             int           priority);
IOPS_AVAILABLE_IN_ALL
gboolean      iops_glib_iops_get_persistent (IopsGLibIOPS *self);
IOPS_AVAILABLE_IN_ALL
void          iops_glib_iops_set_persistent (IopsGLibIOPS *self,
                                             gboolean      persistent);

G_END_DECLS
