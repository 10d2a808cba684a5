// SPDX-License-Identifier: MIT
/*
 * The providers' doorbell write() without glibc's cancellation bookkeeping.
 *
 * rxe and siw ring the send doorbell with write() on the uverbs fd. In a
 * process with one thread glibc makes that call straight away; once a
 * second thread exists (the shim starts one) every write() first switches
 * the thread to asynchronous cancellation and back, two atomic loops that
 * cost 45 instructions per ibv_post_send (bench/, callgrind): more than the
 * shim's own work on the data path. A doorbell never blocks, so being a
 * cancellation point buys the application nothing there (a cancel inside
 * ibv_post_send would leave the send queue half updated anyway).
 *
 * So the shim points those providers' write() (their GOT slot, nobody
 * else's: got.c) at a plain system call. Every other write() of the
 * process, the application's and libibverbs' own commands, stays glibc's.
 * VMIG_GLIBC_DOORBELL=1 leaves the providers alone (the bench compares).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOG_PREFIX "shim: "
#include "got.h"
#include "log.h"
#include "shim.h"

/* The providers that ring their doorbell with write() (doorbell.c). */
static const char *const write_ringers[] = { "/librxe-", "/libsiw-" };

static ssize_t doorbell_write(int fd, const void *buf, size_t len)
{
	return syscall(SYS_write, fd, buf, len);
}

void vmig_doorbell_skip_cancel(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static int said;
	int n;

	if (getenv("VMIG_GLIBC_DOORBELL"))
		return;
	pthread_mutex_lock(&lock);
	n = vmig_got_redirect(write_ringers, sizeof(write_ringers) /
			      sizeof(write_ringers[0]), "write",
			      (void *)doorbell_write);
	if (n < 0 && !said++)
		pr_warn("provider doorbells keep glibc's write(): %s",
			strerror(-n));
	else if (n > 0 && !said++)
		pr_debug("provider doorbells: %d write() slot(s) redirected", n);
	pthread_mutex_unlock(&lock);
}
