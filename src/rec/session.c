/*
 * Flight-recorder sessions (rec/session.h) through the rec.bpf.c skeleton: the ring's size is
 * set before load (max_entries = ncpu * nslots), the system call table (rodata sys_tab: how
 * many arguments, which are out arguments, which one is a path) comes from ctf/syscall_tab, the
 * programs of other groups are not even loaded, and the ring is mmapped read-only.
 */
#include "rec/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/rec.h"
#include "ctf/field.h"
#include "ctf/syscall_tab.h"
#include "rec.skel.h"

struct sn_rec_session {
    struct rec_bpf *skel;
    void *ring;
    size_t ring_len;
    struct sn_rec_ring_view view;
    uint64_t *heads; /* stats */
    struct bpf_program *prog[5];
};

static void fill_sys_tab(struct rec_bpf *skel)
{
    struct sn_syscall_tab t;

    if (sn_syscall_tab_load(&t, "/sys/kernel/tracing") != 0)
        return; /* no table: 4 arguments, no out argument */
    for (size_t i = 0; i < t.n; i++) {
        const struct sn_syscall *sc = &t.sc[i];
        struct sn_rec_sys e = {.nargs = sc->nargs};
        int nout = 0;

        if (sc->nr < 0 || sc->nr >= SN_REC_NSYS)
            continue;
        for (int k = 0; k < sc->nargs && k < 6; k++) {
            if (sc->args[k].kind == SN_CTF_STRING && !e.str_arg)
                e.str_arg = (uint8_t)(k + 1);
            if ((sc->args[k].dir & SN_SC_OUT) && nout < 3) {
                e.out_mask |= (uint8_t)(1u << k);
                nout++;
            }
        }
        skel->rodata->sys_tab[sc->nr] = e;
    }
    sn_syscall_tab_free(&t);
}

static int valid_size(uint64_t size)
{
    return size >= SN_REC_SIZE_MIN && size <= SN_REC_SIZE_MAX && !(size & (size - 1));
}

int sn_rec_session_open(struct sn_rec_session **out, const struct sn_rec_session_opts *o)
{
    struct sn_rec_session *s;
    int ncpu = libbpf_num_possible_cpus(), rc;
    uint32_t nslots;

    *out = NULL;
    if (!o->groups || (o->groups & ~SN_REC_G_ALL) || !valid_size(o->size_per_cpu))
        return -EINVAL;
    if (ncpu <= 0)
        return ncpu < 0 ? ncpu : -EINVAL;
    if (ncpu > SN_REC_MAXCPU)
        return -E2BIG;
    nslots = (uint32_t)(o->size_per_cpu / SN_REC_SLOT_SIZE);
    if ((uint64_t)ncpu * nslots > UINT32_MAX) /* the map's max_entries */
        return -E2BIG;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->heads = calloc((size_t)ncpu, sizeof(*s->heads));
    s->skel = rec_bpf__open();
    if (!s->heads || !s->skel) {
        rc = s->skel ? -ENOMEM : -errno;
        goto fail;
    }
    s->skel->rodata->nslots = nslots;
    s->skel->rodata->cfg_tgid = o->tgid;
    s->skel->rodata->cfg_nr = o->nr;
    fill_sys_tab(s->skel);
    rc = bpf_map__set_max_entries(s->skel->maps.rec_ring, (uint32_t)ncpu * nslots);
    if (rc)
        goto fail;
    s->prog[0] = s->skel->progs.rec_sys_enter;
    s->prog[1] = s->skel->progs.rec_sys_exit;
    s->prog[2] = s->skel->progs.rec_sched_switch;
    s->prog[3] = s->skel->progs.rec_sched_wakeup;
    s->prog[4] = s->skel->progs.rec_sched_wakeup_new;
    for (int i = 0; i < 5; i++) /* only the session's groups are loaded, hence attached */
        bpf_program__set_autoload(s->prog[i],
                                  !!(o->groups & (i < 2 ? SN_REC_G_SYSCALLS : SN_REC_G_SCHED)));
    rc = rec_bpf__load(s->skel);
    if (rc)
        goto fail;
    s->ring_len = (size_t)ncpu * nslots * SN_REC_SLOT_SIZE;
    s->ring =
        mmap(NULL, s->ring_len, PROT_READ, MAP_SHARED, bpf_map__fd(s->skel->maps.rec_ring), 0);
    if (s->ring == MAP_FAILED) {
        s->ring = NULL;
        rc = -errno;
        goto fail;
    }
    s->view = (struct sn_rec_ring_view){
        .slots = s->ring, .heads = s->skel->bss->heads, .ncpu = (unsigned)ncpu, .nslots = nslots};
    rc = rec_bpf__attach(s->skel);
    if (rc)
        goto fail;
    *out = s;
    return 0;
fail:
    sn_rec_session_destroy(s);
    return rc < 0 ? rc : -EINVAL;
}

void sn_rec_session_destroy(struct sn_rec_session *s)
{
    if (!s)
        return;
    if (s->ring)
        munmap(s->ring, s->ring_len);
    rec_bpf__destroy(s->skel);
    free(s->heads);
    free(s);
}

const struct sn_rec_ring_view *sn_rec_session_view(const struct sn_rec_session *s)
{
    return &s->view;
}

int sn_rec_session_stats(struct sn_rec_session *s, struct sn_rec_session_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->ncpu = s->view.ncpu;
    for (unsigned c = 0; c < s->view.ncpu; c++)
        s->heads[c] = __atomic_load_n(&s->view.heads[c].head, __ATOMIC_ACQUIRE);
    st->head = s->heads;
    for (int i = 0; i < 5; i++) {
        struct bpf_prog_info info;
        uint32_t len = sizeof(info);
        int fd = bpf_program__fd(s->prog[i]);

        memset(&info, 0, sizeof(info));
        if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
            st->dropped += info.recursion_misses;
    }
    return 0;
}

int sn_rec_session_prog_ids(const struct sn_rec_session *s, uint32_t *ids, int max)
{
    int k = 0;

    for (int i = 0; i < 5 && k < max; i++) {
        struct bpf_prog_info info;
        uint32_t len = sizeof(info);
        int fd = bpf_program__fd(s->prog[i]);

        memset(&info, 0, sizeof(info));
        if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
            ids[k++] = info.id;
    }
    return k;
}
