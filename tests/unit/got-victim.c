// SPDX-License-Identifier: MIT
/* A shared object that imports write() through its PLT, as rxe's provider
 * does for its doorbell: the subject of test-verbs-got. */
#include <unistd.h>

ssize_t victim_write(int fd, const void *buf, size_t len);

__attribute__((visibility("default")))
ssize_t victim_write(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len);
}
