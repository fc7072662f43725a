/* iops-mosquitto.h — a libmosquitto client on an IopsIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <iops-glib.h>
#include <mosquitto.h>

G_BEGIN_DECLS

/* libiops-glib-mosquitto is built with hidden visibility; this marks its API. */
#ifndef IOPS_MOSQUITTO_AVAILABLE_IN_ALL
# define IOPS_MOSQUITTO_AVAILABLE_IN_ALL __attribute__((visibility ("default"))) extern
#endif

/**
 * IopsMosquitto:
 *
 * A libmosquitto client attached to an [iface@Iops.IOPS]: the bridge
 * watches the client's socket, calls `mosquitto_loop_read()` and
 * `mosquitto_loop_write()` when it is ready and `mosquitto_loop_misc()`
 * once a second on an IOPS timer, so that the client runs on whatever
 * loop runs the IOPS.
 *
 * An opaque handle, made by iops_mosquitto_attach() and freed by
 * iops_mosquitto_detach().
 *
 * Since: 1.0
 */
typedef struct _IopsMosquitto IopsMosquitto;

IOPS_MOSQUITTO_AVAILABLE_IN_ALL
IopsMosquitto *iops_mosquitto_attach (struct mosquitto *mosq,
                                      IopsIOPS         *iops);
IOPS_MOSQUITTO_AVAILABLE_IN_ALL
void           iops_mosquitto_update (IopsMosquitto    *self);
IOPS_MOSQUITTO_AVAILABLE_IN_ALL
void           iops_mosquitto_detach (IopsMosquitto    *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (IopsMosquitto, iops_mosquitto_detach)

G_END_DECLS
