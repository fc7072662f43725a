/* iops-hiredis.h — hiredis's asynchronous API on an IopsIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <iops-glib.h>
#include <hiredis/async.h>

G_BEGIN_DECLS

/* libiops-glib-hiredis is built with hidden visibility; this marks its API. */
#ifndef _IOPS_HIREDIS_EXTERN
# define _IOPS_HIREDIS_EXTERN __attribute__((visibility ("default"))) extern
#endif

#define IOPS_HIREDIS_AVAILABLE_IN_ALL _IOPS_HIREDIS_EXTERN

/**
 * IOPS_HIREDIS_ERR_TIMEOUT:
 *
 * The value of `ac->err` (and `ac->c.err`) after a timeout of the bridge
 * fired; `ac->errstr` is then `"Timeout"`.
 *
 * hiredis 0.14 has no error code for timeouts; this is the value that
 * `REDIS_ERR_TIMEOUT` has in hiredis 1.0 and later (and is that macro
 * where it exists), so code written for either reads the same.
 *
 * Since: 1.0
 */
#ifdef REDIS_ERR_TIMEOUT
# define IOPS_HIREDIS_ERR_TIMEOUT REDIS_ERR_TIMEOUT
#else
# define IOPS_HIREDIS_ERR_TIMEOUT 6
#endif

IOPS_HIREDIS_AVAILABLE_IN_ALL
int       iops_hiredis_attach              (redisAsyncContext *ac,
                                            IopsIOPS          *iops);
IOPS_HIREDIS_AVAILABLE_IN_ALL
IopsIOPS *iops_hiredis_get_iops            (const redisAsyncContext *ac);
IOPS_HIREDIS_AVAILABLE_IN_ALL
int       iops_hiredis_set_connect_timeout (redisAsyncContext *ac,
                                            gint64             usecs);
IOPS_HIREDIS_AVAILABLE_IN_ALL
int       iops_hiredis_set_command_timeout (redisAsyncContext *ac,
                                            gint64             usecs);

G_END_DECLS
