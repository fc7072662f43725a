/* iops-version-macros.h — symbol export macro
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(IOPS_GLIB_INSIDE) && !defined(IOPS_GLIB_COMPILATION)
# error "Only <iops-glib.h> can be included directly."
#endif

#include <glib.h>

/* The library is built with hidden visibility; this marks the public API. */
#ifndef _IOPS_EXTERN
# define _IOPS_EXTERN __attribute__((visibility ("default"))) extern
#endif

#define IOPS_AVAILABLE_IN_ALL _IOPS_EXTERN
