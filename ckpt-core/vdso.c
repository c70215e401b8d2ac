// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The vDSO symbol table.  The dump records where each vDSO entry point is;
 * a restore on a kernel whose vDSO differs keeps the old vDSO image at its
 * old address and routes each old entry point to the new vDSO (restore.c).
 * The bytes parsed here come from an image: every offset is checked.
 */
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool in_bounds(size_t len, uint64_t off, uint64_t size)
{
	return off <= len && size <= len - off;
}

void vdso_symtab_free(VdsoSymtab *t)
{
	for (size_t i = 0; i < t->n_syms; i++) {
		free(t->syms[i]->name);
		free(t->syms[i]);
	}
	free(t->syms);
	free(t->vvar_start);
	free(t->vvar_size);
	vdso_symtab__init(t);
}

int vdso_parse_symtab(const void *img, size_t len, VdsoSymtab *out)
{
	const uint8_t *p = img;
	Elf64_Ehdr eh;

	/* the bytes may be unaligned (an image): copy every header out */
	vdso_symtab__init(out);
	if (len < sizeof(eh))
		goto bad_elf;
	memcpy(&eh, p, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_shentsize != sizeof(Elf64_Shdr) ||
	    !in_bounds(len, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr)))
		goto bad_elf;
	for (int i = 0; i < eh.e_shnum; i++) {
		Elf64_Shdr sym, str;
		size_t nsyms;

		memcpy(&sym, p + eh.e_shoff + i * sizeof(sym), sizeof(sym));
		if (sym.sh_type != SHT_DYNSYM)
			continue;
		if (sym.sh_link >= eh.e_shnum || sym.sh_entsize != sizeof(Elf64_Sym) ||
		    !in_bounds(len, sym.sh_offset, sym.sh_size))
			goto bad;
		memcpy(&str, p + eh.e_shoff + sym.sh_link * sizeof(str), sizeof(str));
		if (!in_bounds(len, str.sh_offset, str.sh_size))
			goto bad;
		nsyms = sym.sh_size / sizeof(Elf64_Sym);
		out->syms = calloc(nsyms ? nsyms : 1, sizeof(*out->syms));
		if (!out->syms)
			return -ENOMEM;
		for (size_t j = 0; j < nsyms; j++) {
			const char *name;
			Elf64_Sym s;
			VdsoSym *vs;

			memcpy(&s, p + sym.sh_offset + j * sizeof(s), sizeof(s));
			if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || !s.st_value || s.st_shndx == SHN_UNDEF)
				continue;
			if (s.st_name >= str.sh_size || s.st_value >= len)
				goto bad;
			name = (const char *)p + str.sh_offset + s.st_name;
			if (!memchr(name, 0, str.sh_size - s.st_name))
				goto bad;
			vs = malloc(sizeof(*vs));
			if (!vs)
				return -ENOMEM;
			vdso_sym__init(vs);
			vs->name = strdup(name);
			vs->offset = s.st_value;
			out->syms[out->n_syms++] = vs;
		}
		return 0;
	}
bad:
	log_err("vDSO image: malformed dynamic symbol table");
	vdso_symtab_free(out);
	return -EINVAL;
bad_elf:
	log_err("vDSO image: not a valid 64-bit ELF image");
	return -EINVAL;
}
