/* iops-cares.h — c-ares on an IopsIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <ares.h>
#include <iops-glib.h>

G_BEGIN_DECLS

/* The bridge library is built with hidden visibility; this marks its API. */
#ifndef IOPS_CARES_AVAILABLE_IN_ALL
# define IOPS_CARES_AVAILABLE_IN_ALL __attribute__((visibility ("default"))) extern
#endif

/**
 * IOPS_CARES_ERROR:
 *
 * The error domain of the c-ares bridge. Error codes are c-ares status
 * values (`ARES_ENOMEM`, `ARES_EBADFLAGS`, …): what `ares_init_options()`
 * returned; the message is `ares_strerror()`'s text for it.
 *
 * Since: 1.0
 */
#define IOPS_CARES_ERROR (iops_cares_error_quark ())

/**
 * IopsCares:
 *
 * A c-ares channel that runs on an `IopsIOPS`: its sockets are
 * watched with `iops_iops_update_event()` and its query timeouts run
 * on one timer of `iops_iops_update_timer()`.
 *
 * Made by `iops_cares_attach()`, which creates the channel, and ended by
 * `iops_cares_detach()`, which destroys it. An opaque structure that
 * belongs to the thread iterating the IOPS.
 *
 * Since: 1.0
 */
typedef struct _IopsCares IopsCares;

IOPS_CARES_AVAILABLE_IN_ALL
GQuark        iops_cares_error_quark  (void);

IOPS_CARES_AVAILABLE_IN_ALL
IopsCares    *iops_cares_attach       (IopsIOPS                  *iops,
                                       const struct ares_options *options,
                                       int                        optmask,
                                       GError                   **error);
IOPS_CARES_AVAILABLE_IN_ALL
ares_channel  iops_cares_get_channel  (IopsCares                 *self);
IOPS_CARES_AVAILABLE_IN_ALL
void          iops_cares_detach       (IopsCares                 *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (IopsCares, iops_cares_detach)

G_END_DECLS
