// SPDX-License-Identifier: MIT
/*
 * Redirecting an imported function of chosen shared objects, through their
 * GOT: the slot each PLT entry jumps through. Only the objects named see
 * the replacement; everybody else's calls still reach the real function.
 * Full RELRO makes the GOT read-only once relocated: the page is opened for
 * the store and closed again.
 */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "got.h"

#if defined(__x86_64__)
#define JUMP_SLOT R_X86_64_JUMP_SLOT
#elif defined(__aarch64__)
#define JUMP_SLOT R_AARCH64_JUMP_SLOT
#endif

#ifdef JUMP_SLOT
struct redirect {
	const char *const *objs;
	size_t nobjs;
	const char *sym;
	void *fn;
	int done;		/* slots holding fn */
	int err;		/* the first failure, -errno */
};

struct dyn_view {
	const ElfW(Rela) *jmprel;
	size_t jmprel_size;
	const ElfW(Sym) *symtab;
	const char *strtab;
};

/* ld.so relocates these d_ptr values in place on most targets, not on all */
static uintptr_t dyn_addr(const struct dl_phdr_info *info, ElfW(Addr) p)
{
	return p < info->dlpi_addr ? info->dlpi_addr + p : p;
}

static int read_dynamic(const struct dl_phdr_info *info, const ElfW(Dyn) *d,
			struct dyn_view *v)
{
	bool rela = false;

	memset(v, 0, sizeof(*v));
	for (; d->d_tag != DT_NULL; d++) {
		switch (d->d_tag) {
		case DT_JMPREL:
			v->jmprel = (const void *)dyn_addr(info, d->d_un.d_ptr);
			break;
		case DT_PLTRELSZ:
			v->jmprel_size = d->d_un.d_val;
			break;
		case DT_PLTREL:
			rela = d->d_un.d_val == DT_RELA;
			break;
		case DT_SYMTAB:
			v->symtab = (const void *)dyn_addr(info, d->d_un.d_ptr);
			break;
		case DT_STRTAB:
			v->strtab = (const void *)dyn_addr(info, d->d_un.d_ptr);
			break;
		}
	}
	return rela && v->jmprel && v->symtab && v->strtab ? 0 : -ENOENT;
}

static int set_slot(const struct dl_phdr_info *info, void **slot, void *fn)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)slot & ~(page - 1), ro_lo = 0, ro_hi = 0;
	int i;

	if (__atomic_load_n(slot, __ATOMIC_ACQUIRE) == fn)
		return 0;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_GNU_RELRO)
			continue;
		/* ld.so protects whole pages, the last partial one not */
		ro_lo = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
		ro_hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz) &
			~(page - 1);
	}
	if (lo < ro_lo || lo >= ro_hi) {
		__atomic_store_n(slot, fn, __ATOMIC_RELEASE);
		return 0;
	}
	if (mprotect((void *)lo, page, PROT_READ | PROT_WRITE))
		return -errno;
	__atomic_store_n(slot, fn, __ATOMIC_RELEASE);
	mprotect((void *)lo, page, PROT_READ);
	return 0;
}

static void redirect_object(const struct dl_phdr_info *info,
			    struct redirect *rd)
{
	const ElfW(Dyn) *dyn = NULL;
	struct dyn_view v;
	size_t i, n;
	int k, ret;

	for (k = 0; k < info->dlpi_phnum; k++)
		if (info->dlpi_phdr[k].p_type == PT_DYNAMIC)
			dyn = (const void *)(info->dlpi_addr +
					     info->dlpi_phdr[k].p_vaddr);
	if (!dyn || read_dynamic(info, dyn, &v))
		return;
	n = v.jmprel_size / sizeof(ElfW(Rela));
	for (i = 0; i < n; i++) {
		const ElfW(Rela) *r = &v.jmprel[i];
		const ElfW(Sym) *s;

		if (ELF64_R_TYPE(r->r_info) != JUMP_SLOT)
			continue;
		s = &v.symtab[ELF64_R_SYM(r->r_info)];
		if (strcmp(v.strtab + s->st_name, rd->sym))
			continue;
		ret = set_slot(info, (void **)(info->dlpi_addr + r->r_offset),
			       rd->fn);
		if (ret && !rd->err)
			rd->err = ret;
		if (!ret)
			rd->done++;
	}
}

static int visit(struct dl_phdr_info *info, size_t size, void *data)
{
	struct redirect *rd = data;
	size_t i;

	(void)size;
	if (!info->dlpi_name)
		return 0;
	for (i = 0; i < rd->nobjs; i++)
		if (strstr(info->dlpi_name, rd->objs[i])) {
			redirect_object(info, rd);
			break;
		}
	return 0;
}

int vmig_got_redirect(const char *const *objs, size_t nobjs, const char *sym,
		      void *fn)
{
	struct redirect rd = {
		.objs = objs, .nobjs = nobjs, .sym = sym, .fn = fn,
	};

	dl_iterate_phdr(visit, &rd);
	return rd.err ? rd.err : rd.done;
}
#else
int vmig_got_redirect(const char *const *objs, size_t nobjs, const char *sym,
		      void *fn)
{
	(void)objs;
	(void)nobjs;
	(void)sym;
	(void)fn;
	return 0;
}
#endif
