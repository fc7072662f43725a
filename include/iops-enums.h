/* iops-enums.h — actions and readiness flags of the IOPS contract
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(IOPS_GLIB_INSIDE) && !defined(IOPS_GLIB_COMPILATION)
# error "Only <iops-glib.h> can be included directly."
#endif

#include <glib.h>

G_BEGIN_DECLS

/**
 * IopsEvAction:
 * @IOPS_EVACTION_WATCH: arm the event (an fd watch or a timer)
 * @IOPS_EVACTION_UNWATCH: disarm the event; no callback is made after this
 * @IOPS_EVACTION_CLEANUP: disarm the event and release every reference the
 *   IOPS holds on it
 *
 * What [method@Iops.IOPS.update_event] and [method@Iops.IOPS.update_timer]
 * do with an event. The values are those of the Couchbase Python SDK
 * (`PYCBC_EVACTION_*`).
 *
 * Since: 1.0
 */
typedef enum {
  IOPS_EVACTION_WATCH   = 1,
  IOPS_EVACTION_UNWATCH = 2,
  IOPS_EVACTION_CLEANUP = 16,
} IopsEvAction;

/**
 * IopsEventFlags:
 * @IOPS_READ_EVENT: the fd is (or should be watched for being) readable
 * @IOPS_WRITE_EVENT: the fd is (or should be watched for being) writable
 * @IOPS_RW_EVENT: both of the above
 *
 * Readiness flags of an fd watch. The values are those of libcouchbase
 * (`LCB_READ_EVENT`, `LCB_WRITE_EVENT`, `LCB_RW_EVENT`).
 *
 * Since: 1.0
 */
typedef enum /*< flags >*/ {
  IOPS_READ_EVENT  = 0x02,
  IOPS_WRITE_EVENT = 0x04,
  IOPS_RW_EVENT    = 0x06,
} IopsEventFlags;

G_END_DECLS
