/* Validation of probe plans; see plan.h. */
#include <errno.h>
#include <stdio.h>

#include "plan.h"
#include "regs.h"

static bool loc_ok(const struct tlssniff_loc *l, bool required)
{
        switch (l->kind) {
        case TLSSNIFF_LOC_NONE:
                return !required && l->reg == 0 && l->off == 0;
        case TLSSNIFF_LOC_REG:
                return l->reg < TLSSNIFF_REG_MAX && l->off == 0;
        case TLSSNIFF_LOC_STACK:
                /* Aligned slots near the stack pointer only (4: an int's half of a word). */
                return l->reg == 0 && l->off >= -4096 && l->off <= 4096 && l->off % 4 == 0;
        default:
                return false;
        }
}

/* The count comes through a pointer (the _ex functions, ssl_read_bytes). */
static bool func_is_ex(uint8_t func)
{
        return func == TLSSNIFF_FUNC_SSL_READ_EX || func == TLSSNIFF_FUNC_SSL_WRITE_EX ||
               func == TLSSNIFF_FUNC_SSL_READ_BYTES || func == TLSSNIFF_FUNC_SSL_WRITE_BYTES;
}

/* OpenSSL's record layer: probed on its copies, or whole (sslcopy.h). */
static bool func_is_record_layer(uint8_t func)
{
        return func == TLSSNIFF_FUNC_SSL_READ_BYTES || func == TLSSNIFF_FUNC_SSL_WRITE_BYTES;
}

static bool func_is_go(uint8_t func)
{
        return func == TLSSNIFF_FUNC_GO_READ || func == TLSSNIFF_FUNC_GO_WRITE;
}

/* The Go offsets are read by BPF with bpf_probe_read_user only; still, keep them sane. */
static bool go_ok(const struct tlssniff_go_info *g)
{
        if (g->g_kind == TLSSNIFF_GO_G_REG && (g->g_reg >= TLSSNIFF_REG_MAX || g->g_off != 0))
                return false;
        if (g->g_kind == TLSSNIFF_GO_G_FS && (g->g_reg != 0 || g->g_off >= 0 || g->g_off < -4096))
                return false;
        if (g->g_kind != TLSSNIFF_GO_G_REG && g->g_kind != TLSSNIFF_GO_G_FS)
                return false;
        return g->goid < TLSSNIFF_GO_OFFSET_MAX && g->conn < TLSSNIFF_GO_OFFSET_MAX &&
               g->conn_fd < TLSSNIFF_GO_OFFSET_MAX && g->pfd < TLSSNIFF_GO_OFFSET_MAX &&
               g->sysfd < TLSSNIFF_GO_OFFSET_MAX;
}

int plan_validate(const struct msg_plan *plan, const struct elf_segments *segs, char *reason,
                  size_t reason_size)
{
        if (plan->n_probes > MSG_PLAN_PROBES_MAX) {
                snprintf(reason, reason_size, "too many probes (%u)", plan->n_probes);
                return -EINVAL;
        }
        if (plan->has_go && !go_ok(&plan->go)) {
                snprintf(reason, reason_size, "invalid Go offsets");
                return -EINVAL;
        }
        for (uint32_t i = 0; i < plan->n_probes; i++) {
                const struct msg_probe *p = &plan->probes[i];
                /* Entry and copy probes read the arguments; return probes the result; forget
                 * probes the TLS object only. */
                bool entry = p->kind == TLSSNIFF_PROBE_ENTRY || p->kind == TLSSNIFF_PROBE_COPY;
                bool forget = p->kind == TLSSNIFF_PROBE_FORGET;

                if (p->kind == 0 || p->kind >= _TLSSNIFF_PROBE_KIND_MAX) {
                        snprintf(reason, reason_size, "probe %u: unknown kind %u", i, p->kind);
                        return -EINVAL;
                }
                if (p->func == 0 || p->func >= _TLSSNIFF_FUNC_MAX) {
                        snprintf(reason, reason_size, "probe %u: unknown function %u", i, p->func);
                        return -EINVAL;
                }
                if (func_is_go(p->func) != plan->has_go) {
                        snprintf(reason, reason_size, "probe %u: Go and OpenSSL probes mixed",
                                 i);
                        return -EINVAL;
                }
                /* Copy probes: Go's Read (go_copy) and OpenSSL's record layer (tls_copy). */
                if (p->kind == TLSSNIFF_PROBE_COPY && p->func != TLSSNIFF_FUNC_GO_READ &&
                    !func_is_record_layer(p->func)) {
                        snprintf(reason, reason_size, "probe %u: copy probe on %s", i,
                                 func_is_go(p->func) ? "Go's Write" : "an OpenSSL API function");
                        return -EINVAL;
                }
                if ((p->kind == TLSSNIFF_PROBE_FORGET) != (p->func == TLSSNIFF_FUNC_SSL_FREE)) {
                        snprintf(reason, reason_size, "probe %u: %s", i,
                                 p->kind == TLSSNIFF_PROBE_FORGET
                                         ? "forget probe on a function that does not end a "
                                           "TLS object"
                                         : "SSL_free probed other than to forget");
                        return -EINVAL;
                }
                if (func_is_record_layer(p->func) && p->kind != TLSSNIFF_PROBE_COPY &&
                    p->kind != TLSSNIFF_PROBE_ENTRY && p->kind != TLSSNIFF_PROBE_RETURN) {
                        snprintf(reason, reason_size, "probe %u: %s probed other than on its "
                                 "copy or at its entry and return", i,
                                 p->func == TLSSNIFF_FUNC_SSL_READ_BYTES ? "ssl_read_bytes"
                                                                        : "ssl_write_bytes");
                        return -EINVAL;
                }
                /* A uretprobe rewrites the return address, which Go's stack handling breaks. */
                if (func_is_go(p->func) && p->kind == TLSSNIFF_PROBE_RETURN) {
                        snprintf(reason, reason_size, "probe %u: uretprobe on Go code", i);
                        return -EINVAL;
                }
                if (!elf_segments_contain(segs, p->offset)) {
                        snprintf(reason, reason_size,
                                 "probe %u: offset 0x%llx outside the executable segments", i,
                                 (unsigned long long)p->offset);
                        return -EINVAL;
                }
                if (p->func == TLSSNIFF_FUNC_SSL_HANDSHAKE && p->kind != TLSSNIFF_PROBE_ENTRY &&
                    p->kind != TLSSNIFF_PROBE_RETURN) {
                        snprintf(reason, reason_size, "probe %u: handshake probed other than at "
                                 "its entry and return", i);
                        return -EINVAL;
                }
                /* A handshake's frame needs the TLS object only. */
                bool data = entry && p->func != TLSSNIFF_FUNC_SSL_HANDSHAKE;

                if (!loc_ok(&p->loc[TLSSNIFF_ARG_SSL], entry || forget) ||
                    !loc_ok(&p->loc[TLSSNIFF_ARG_BUF], data) ||
                    !loc_ok(&p->loc[TLSSNIFF_ARG_NUM], data) ||
                    /* a copy's count is the copy's: no pointer to it */
                    !loc_ok(&p->loc[TLSSNIFF_ARG_OUTLEN],
                            p->kind == TLSSNIFF_PROBE_ENTRY && func_is_ex(p->func)) ||
                    !loc_ok(&p->loc[TLSSNIFF_ARG_RESULT], !entry && !forget) ||
                    !loc_ok(&p->loc[TLSSNIFF_ARG_RTYPE], entry && func_is_record_layer(p->func)) ||
                    !loc_ok(&p->loc[TLSSNIFF_ARG_PEEK],
                            entry && p->func == TLSSNIFF_FUNC_SSL_READ_BYTES)) {
                        snprintf(reason, reason_size, "probe %u: invalid value location", i);
                        return -EINVAL;
                }
        }
        return 0;
}
