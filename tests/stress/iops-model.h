/* iops-model.h — an executable model of DESIGN.md's rules, driven by a
 * stream of bytes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The same interpreter serves the random model test (bytes from a seeded
 * generator) and the fuzzer (bytes from the fuzzer's input): each byte
 * string is a sequence of operations on one IopsGLibIOPS, its events and a
 * few socketpairs, issued from the top level and from inside callbacks, and
 * every delivery and every loop iteration is checked against the model.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _Model Model;

/* Bytes from a seeded generator, without end: the run stops after
 * model_run()'s @max_ops operations. */
Model      *model_new_random (guint64       seed);
/* Bytes of @data (not copied; must outlive the model): the run stops when
 * they are used up. */
Model      *model_new_bytes  (const guint8 *data,
                              gsize         len);

/* Runs operations until @max_ops (0: no limit) or the end of the bytes,
 * lets the loop settle, and tears everything down with its checks.
 * Returns FALSE on the first violation, which it prints to stderr at once
 * (the library may crash right after); model_get_error() tells it too. */
gboolean    model_run        (Model        *model,
                              guint64       max_ops);

/* Turns off an operation, by its name in the trace (CROWD, IO_DROP_THREAD,
 * ...), to tell which one finds a bug: its opcode bytes become no-ops.
 * FILENO: a fileno() override never re-enters; FILENO_CLEANUP,
 * FILENO_WATCH, FILENO_UNWATCH, FILENO_UNREF: it never does that one.
 * Call before model_run(). Returns FALSE for an unknown name. */
gboolean    model_disable    (Model        *m,
                              const char   *name);

/* A report of the violation with the latest operations, or NULL. */
const char *model_get_error  (Model        *model);
/* One line of counters: operations, iterations, deliveries. */
char       *model_get_stats  (Model        *model);
guint64     model_get_n_ops  (Model        *model);

void        model_free       (Model        *model);

G_END_DECLS
