/*
 * Struct member offsets of a Go executable from its DWARF (libdwarf): runtime.g.goid and the
 * chain from a *tls.Conn to its socket's fd. Go emits every type once, as a top-level DIE of
 * some compilation unit, so only the top level of each unit is walked. Untrusted input:
 * libdwarf checks what it reads; we check what it returns (tags, forms, ranges).
 */
#include <errno.h>
#include <libdwarf/dwarf.h>
#include <libdwarf/libdwarf.h>
#include <stdio.h>
#include <string.h>

#include "gotls.h"
#include "macro.h"

static const struct {
        const char *type;
        const char *member;
} wanted[] = {
        [GODWARF_GOID] = { "runtime.g", "goid" },
        [GODWARF_CONN] = { "crypto/tls.Conn", "conn" },
        [GODWARF_TCPCONN_CONN] = { "net.TCPConn", "conn" },
        [GODWARF_CONN_FD] = { "net.conn", "fd" },
        [GODWARF_PFD] = { "net.netFD", "pfd" },
        [GODWARF_SYSFD] = { "internal/poll.FD", "Sysfd" },
};

/* Reads the name of die into buf; false when it has none. */
static bool die_name(Dwarf_Die die, char *buf, size_t size)
{
        char *name = NULL;
        Dwarf_Error err = NULL;

        if (dwarf_diename(die, &name, &err) != DW_DLV_OK || !name)
                return false;
        snprintf(buf, size, "%s", name);
        return true;
}

/* DW_AT_data_member_location as a constant (Go never emits a location expression here). */
static int member_offset(Dwarf_Debug dbg, Dwarf_Die die, uint64_t *ret)
{
        Dwarf_Attribute attr = NULL;
        Dwarf_Error err = NULL;
        Dwarf_Unsigned v;
        Dwarf_Half form = 0;
        int r = -EBADMSG;

        if (dwarf_attr(die, DW_AT_data_member_location, &attr, &err) != DW_DLV_OK)
                return -ENOENT;
        if (dwarf_whatform(attr, &form, &err) == DW_DLV_OK &&
            (form == DW_FORM_data1 || form == DW_FORM_data2 || form == DW_FORM_data4 ||
             form == DW_FORM_data8 || form == DW_FORM_udata) &&
            dwarf_formudata(attr, &v, &err) == DW_DLV_OK && v < TLSSNIFF_GO_OFFSET_MAX) {
                *ret = v;
                r = 0;
        }
        dwarf_dealloc(dbg, attr, DW_DLA_ATTR);
        return r;
}

/* Looks for the wanted member among the children of a structure DIE. */
static int struct_member(Dwarf_Debug dbg, Dwarf_Die st, const char *member, uint64_t *ret)
{
        Dwarf_Die child = NULL, next;
        Dwarf_Error err = NULL;
        int r = -ENOENT;

        if (dwarf_child(st, &child, &err) != DW_DLV_OK)
                return -ENOENT;
        for (unsigned guard = 0; child && guard < 4096; guard++) {
                Dwarf_Half tag = 0;
                char name[128];

                if (dwarf_tag(child, &tag, &err) == DW_DLV_OK && tag == DW_TAG_member &&
                    die_name(child, name, sizeof(name)) && strcmp(name, member) == 0) {
                        r = member_offset(dbg, child, ret);
                        break;
                }
                next = NULL;
                if (dwarf_siblingof_b(dbg, child, true, &next, &err) != DW_DLV_OK)
                        next = NULL;
                dwarf_dealloc_die(child);
                child = next;
        }
        if (child)
                dwarf_dealloc_die(child);
        return r;
}

int godwarf_offsets(Elf *elf, uint64_t ret[_GODWARF_MAX])
{
        uint64_t found[_GODWARF_MAX];
        unsigned n_found = 0;
        Dwarf_Debug dbg = NULL;
        Dwarf_Error err = NULL;
        int r;

        for (size_t i = 0; i < _GODWARF_MAX; i++)
                found[i] = UINT64_MAX;
        r = dwarf_elf_init_b(elf, DW_DLC_READ, DW_GROUPNUMBER_ANY, NULL, NULL, &dbg, &err);
        if (r == DW_DLV_NO_ENTRY)
                return -ENODATA;
        if (r != DW_DLV_OK) {
                if (err)
                        dwarf_dealloc(NULL, err, DW_DLA_ERROR);
                return -EBADMSG;
        }

        /* Units are bounded by the section size; the guard only stops a looping header. */
        for (unsigned units = 0; n_found < _GODWARF_MAX && units < 1u << 20; units++) {
                Dwarf_Unsigned hdr_len, abbrev_off, type_off, next_off;
                Dwarf_Half version, addr_size, off_size, ext_size, hdr_type;
                Dwarf_Sig8 sig;
                Dwarf_Die cu = NULL, die = NULL, next;

                r = dwarf_next_cu_header_d(dbg, true, &hdr_len, &version, &abbrev_off, &addr_size,
                                           &off_size, &ext_size, &sig, &type_off, &next_off,
                                           &hdr_type, &err);
                if (r != DW_DLV_OK)
                        break; /* no more units, or a broken one: use what was found */
                if (dwarf_siblingof_b(dbg, NULL, true, &cu, &err) != DW_DLV_OK)
                        continue;
                if (dwarf_child(cu, &die, &err) != DW_DLV_OK)
                        die = NULL;
                while (die && n_found < _GODWARF_MAX) {
                        Dwarf_Half tag = 0;
                        char name[128];

                        if (dwarf_tag(die, &tag, &err) == DW_DLV_OK &&
                            tag == DW_TAG_structure_type && die_name(die, name, sizeof(name))) {
                                for (size_t w = 0; w < _GODWARF_MAX; w++) {
                                        uint64_t off;

                                        if (found[w] != UINT64_MAX ||
                                            strcmp(name, wanted[w].type) != 0)
                                                continue;
                                        if (struct_member(dbg, die, wanted[w].member, &off) == 0) {
                                                found[w] = off;
                                                n_found++;
                                        }
                                }
                        }
                        next = NULL;
                        if (dwarf_siblingof_b(dbg, die, true, &next, &err) != DW_DLV_OK)
                                next = NULL;
                        dwarf_dealloc_die(die);
                        die = next;
                }
                if (die)
                        dwarf_dealloc_die(die);
                dwarf_dealloc_die(cu);
        }
        dwarf_finish(dbg, &err);
        if (n_found < _GODWARF_MAX)
                return n_found == 0 ? -ENODATA : -ENOENT;
        memcpy(ret, found, sizeof(found));
        return 0;
}

const char *godwarf_describe(enum godwarf_offset o, const char **ret_member)
{
        if ((unsigned)o >= _GODWARF_MAX) {
                *ret_member = "?";
                return "?";
        }
        *ret_member = wanted[o].member;
        return wanted[o].type;
}
