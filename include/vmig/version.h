/* SPDX-License-Identifier: MIT */
#ifndef VMIG_VERSION_H
#define VMIG_VERSION_H

#define VMIG_VERSION_STRING "0.1.0"

#endif
