/* iops-curl.h — libcurl's multi_socket API on an IopsIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <curl/curl.h>
#include <iops-glib.h>

G_BEGIN_DECLS

/* libiops-glib-curl is built with hidden visibility; this marks its API. */
#ifndef IOPS_CURL_AVAILABLE_IN_ALL
# define IOPS_CURL_AVAILABLE_IN_ALL __attribute__((visibility ("default"))) extern
#endif

/**
 * IopsCurl:
 *
 * A libcurl multi handle attached to an [iface@Iops.IOPS]: every socket
 * curl asks to have watched is an [class@Iops.IOEvent] on that IOPS, and
 * curl's one timer an [class@Iops.TimerEvent].
 *
 * Made by `iops_curl_attach()`, freed by `iops_curl_detach()`. An opaque
 * structure, used from the thread that runs the IOPS.
 *
 * Since: 1.0
 */
typedef struct _IopsCurl IopsCurl;

/**
 * IopsCurlDoneFunc:
 * @bridge: the bridge that saw the transfer finish
 * @easy: the finished transfer, still in the multi handle
 * @result: how it ended: `CURLE_OK`, or the reason it failed
 * @user_data: the data given to `iops_curl_attach()`
 *
 * Called once for each transfer that finished, from the IOPS's loop and
 * never from inside a libcurl function, so it may call any of them: remove
 * @easy from the multi handle (`curl_multi_remove_handle()`), clean it up
 * or add it again, add other transfers, call `iops_curl_detach()` and then
 * `curl_multi_cleanup()`.
 *
 * Since: 1.0
 */
typedef void (*IopsCurlDoneFunc) (IopsCurl *bridge,
                                  CURL     *easy,
                                  CURLcode  result,
                                  gpointer  user_data);

IOPS_CURL_AVAILABLE_IN_ALL
IopsCurl *iops_curl_attach    (CURLM            *multi,
                               IopsIOPS         *iops,
                               IopsCurlDoneFunc  done,
                               gpointer          user_data,
                               GDestroyNotify    destroy);
IOPS_CURL_AVAILABLE_IN_ALL
void      iops_curl_detach    (IopsCurl         *bridge);
IOPS_CURL_AVAILABLE_IN_ALL
CURLM    *iops_curl_get_multi (IopsCurl         *bridge);
IOPS_CURL_AVAILABLE_IN_ALL
IopsIOPS *iops_curl_get_iops  (IopsCurl         *bridge);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (IopsCurl, iops_curl_detach)

G_END_DECLS
