// SPDX-License-Identifier: MIT
/* got.c: one object's write() redirected, everybody else's left alone, the
 * RELRO page closed again (the shim's provider doorbell, doorbell_write.c). */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tap.h"
#include "verbs/got.h"

static int redirected;

static ssize_t counting_write(int fd, const void *buf, size_t len)
{
	redirected++;
	return syscall(SYS_write, fd, buf, len);
}

/* The lines of /proc/self/maps that map the victim, permissions included. */
static char *victim_maps(void)
{
	static char out[4096];
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	out[0] = '\0';
	if (!f)
		return out;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "libgot-victim") &&
		    strlen(out) + strlen(line) < sizeof(out))
			strcat(out, line);
	fclose(f);
	return out;
}

int main(int argc, char **argv)
{
	static const char *const victim[] = { "/libgot-victim" };
	static const char *const nothere[] = { "/libnot-loaded-here" };
	ssize_t (*vw)(int, const void *, size_t);
	char buf[8], before[4096];
	int p[2];
	void *h;

	if (argc != 2) {
		printf("Bail out! usage: test-verbs-got LIBGOT-VICTIM.so\n");
		return 1;
	}
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h || pipe(p)) {
		printf("Bail out! %s\n", dlerror());
		return 1;
	}
	vw = (ssize_t (*)(int, const void *, size_t))dlsym(h, "victim_write");
	ok(vw != NULL, "the victim is loaded");
	if (!vw)
		return tap_done();
	snprintf(before, sizeof(before), "%s", victim_maps());
	ok(strstr(before, "r--p") != NULL, "its RELRO part is read-only");

	is_int(vw(p[1], "a", 1), 1, "before: the victim writes");
	is_int(redirected, 0, "before: through glibc");

	is_int(vmig_got_redirect(nothere, 1, "write", (void *)counting_write),
	       0, "an object not loaded: nothing redirected");
	is_int(vmig_got_redirect(victim, 1, "no_such_import",
				 (void *)counting_write),
	       0, "a symbol the object does not import: nothing redirected");
	is_int(vmig_got_redirect(victim, 1, "write", (void *)counting_write),
	       1, "the victim's write slot redirected");
	is_str(victim_maps(), before, "its mappings and permissions as before");

	is_int(vw(p[1], "bc", 2), 2, "after: the victim writes");
	is_int(redirected, 1, "after: through the replacement");
	is_int(write(p[1], "d", 1), 1, "the test's own write()");
	is_int(redirected, 1, "...still glibc's");
	is_int(read(p[0], buf, sizeof(buf)), 4, "every byte arrived");
	ok(!memcmp(buf, "abcd", 4), "in order");

	is_int(vmig_got_redirect(victim, 1, "write", (void *)counting_write),
	       1, "redirecting again: the slot already holds it");
	vw(p[1], "e", 1);
	is_int(redirected, 2, "called once per write, not chained");
	dlclose(h);
	return tap_done();
}
