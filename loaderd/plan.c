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
                /* Word-aligned slots near the stack pointer only. */
                return l->reg == 0 && l->off >= -4096 && l->off <= 4096 && l->off % 8 == 0;
        default:
                return false;
        }
}

static bool func_is_ex(uint8_t func)
{
        return func == TLSSNIFF_FUNC_SSL_READ_EX || func == TLSSNIFF_FUNC_SSL_WRITE_EX;
}

int plan_validate(const struct msg_plan *plan, const struct elf_segments *segs, char *reason,
                  size_t reason_size)
{
        if (plan->n_probes > MSG_PLAN_PROBES_MAX) {
                snprintf(reason, reason_size, "too many probes (%u)", plan->n_probes);
                return -EINVAL;
        }
        for (uint32_t i = 0; i < plan->n_probes; i++) {
                const struct msg_probe *p = &plan->probes[i];
                bool entry = p->kind == TLSSNIFF_PROBE_ENTRY;

                if (p->kind == 0 || p->kind >= _TLSSNIFF_PROBE_KIND_MAX) {
                        snprintf(reason, reason_size, "probe %u: unknown kind %u", i, p->kind);
                        return -EINVAL;
                }
                if (p->func == 0 || p->func >= _TLSSNIFF_FUNC_MAX) {
                        snprintf(reason, reason_size, "probe %u: unknown function %u", i, p->func);
                        return -EINVAL;
                }
                if (!elf_segments_contain(segs, p->offset)) {
                        snprintf(reason, reason_size,
                                 "probe %u: offset 0x%llx outside the executable segments", i,
                                 (unsigned long long)p->offset);
                        return -EINVAL;
                }
                if (!loc_ok(&p->loc[TLSSNIFF_ARG_SSL], entry) ||
                    !loc_ok(&p->loc[TLSSNIFF_ARG_BUF], entry) ||
                    !loc_ok(&p->loc[TLSSNIFF_ARG_NUM], entry) ||
                    !loc_ok(&p->loc[TLSSNIFF_ARG_OUTLEN], entry && func_is_ex(p->func)) ||
                    !loc_ok(&p->loc[TLSSNIFF_ARG_RESULT], !entry)) {
                        snprintf(reason, reason_size, "probe %u: invalid value location", i);
                        return -EINVAL;
                }
        }
        return 0;
}
