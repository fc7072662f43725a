/* fuzz-ops.c — libFuzzer entry point: the fuzzer's bytes are an operation
 * sequence for the model of iops-model.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "iops-model.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  static gboolean initialized;
  Model *model;

  if (!initialized)
    {
      /* A critical (a rejected call) is a finding too. */
      g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
      initialized = TRUE;
    }

  model = model_new_bytes (data, size);
  if (!model_run (model, 0))
    {
      fprintf (stderr, "%s", model_get_error (model));
      abort ();
    }
  model_free (model);
  return 0;
}
