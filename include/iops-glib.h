/* iops-glib.h — the one header users include
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#define IOPS_GLIB_INSIDE

#include "iops-version-macros.h"
#include "iops-enums.h"
#include "iops-enum-types.h"
#include "iops-io-event.h"
#include "iops-timer-event.h"
#include "iops-iops.h"
#include "iops-glib-iops.h"

#undef IOPS_GLIB_INSIDE
