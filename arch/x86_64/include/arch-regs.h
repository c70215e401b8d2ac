/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KUP_ARCH_REGS_H
#define KUP_ARCH_REGS_H

#include <sys/user.h>

struct arch_regs {
	struct user_regs_struct r;
};

#define ARCH_PAGE_SIZE	4096UL
#define ARCH_TASK_SIZE	0x00007ffffffff000UL

#endif
