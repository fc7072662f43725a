/* broker.h — a real mosquitto broker for the bridge's tests and benchmark
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "bridge-test-util.h"

G_BEGIN_DECLS

typedef struct
{
  BridgeServer *server;
  guint16       port;
  char         *dir;      /* holds the generated configuration */
} TestBroker;

/* Starts /usr/sbin/mosquitto (or the first mosquitto in PATH) on
 * 127.0.0.1 and an unused port, and waits for its "running" line.
 * @verbose logs every packet (log_type all), for the tests; otherwise only
 * notices and errors, so that logging costs the benchmark nothing. Returns
 * NULL with @error set when the broker does not start. */
TestBroker *test_broker_start (gboolean   verbose,
                               GError   **error);
/* SIGKILL: every connection drops at once, with no goodbye. */
void        test_broker_kill  (TestBroker *broker);
/* Kills (if not killed yet) and frees @broker. NULL is ignored. */
void        test_broker_free  (TestBroker *broker);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestBroker, test_broker_free)

G_END_DECLS
