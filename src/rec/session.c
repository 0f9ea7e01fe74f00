/*
 * Flight-recorder sessions (rec/session.h) through the rec.bpf.c skeleton: the ring's size is
 * set before load (max_entries = ncpu * nslots), the system call table (rodata sys_tab: how
 * many arguments, which are out arguments, which one is a path) comes from ctf/syscall_tab, the
 * programs of other groups are not even loaded, and the ring is mmapped read-only. USDT probes
 * (group usdt) attach the one program rec_usdt once each, the probe's index as its cookie; the
 * number of a probe's arguments, which its CTF class declares, comes from the binary's
 * .note.stapsdt (read here: libbpf keeps its own parse to itself).
 *
 * Predicates are the agent's (agent/predicate.c compiles them, over the syscall.syscalls
 * catalog fields that raw events have); the kernel runs them with the agent's interpreter
 * (bpf/pred_eval.bpf.h). Scope paths and the predicate's "under" paths each get a bit of the
 * session's cgroup_scope map, as the agent's engine does for its own map; the scope's are the
 * low bits (rodata scope_bits), and "under" leaves are rewritten to test their path's bit.
 */
#include "rec/session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/catalog.h"
#include "agent/cgroup.h"
#include "bpf/rec.h"
#include "ctf/field.h"
#include "ctf/syscall_tab.h"
#include "rec.skel.h"

#define NPROG 16

struct sn_rec_session {
    struct rec_bpf *skel;
    void *ring;
    size_t ring_len;
    struct sn_rec_ring_view view;
    uint64_t *heads; /* stats */
    struct bpf_program *prog[NPROG];
    struct bpf_link *usdt_link[SN_REC_USDT_MAX];
    int nusdt;
    char *path[SN_SCOPE_BITS];  /* the cgroup_scope bits' paths */
    struct sn_pred_prog prog_k; /* the predicate as the kernel runs it (map rec_pred) */
    int npath;
};

/* The session's programs and the group that loads each. */
static int progs_of(struct rec_bpf *k, struct bpf_program **p, unsigned *grp)
{
    int n = 0;
#define P(name, g) (p[n] = k->progs.name, grp[n++] = (g))
    P(rec_sys_enter, SN_REC_G_SYSCALLS);
    P(rec_sys_exit, SN_REC_G_SYSCALLS);
    P(rec_sched_switch, SN_REC_G_SCHED);
    P(rec_sched_wakeup, SN_REC_G_SCHED);
    P(rec_sched_wakeup_new, SN_REC_G_SCHED);
    P(rec_proc_exec, SN_REC_G_PROC);
    P(rec_proc_fork, SN_REC_G_PROC);
    P(rec_proc_exit, SN_REC_G_PROC);
    P(rec_block_insert, SN_REC_G_BLOCK);
    P(rec_block_issue, SN_REC_G_BLOCK);
    P(rec_block_complete, SN_REC_G_BLOCK);
    P(rec_tcp_state, SN_REC_G_TCP);
    P(rec_tcp_retransmit, SN_REC_G_TCP);
    P(rec_fault_user, SN_REC_G_FAULTS);
    P(rec_fault_kernel, SN_REC_G_FAULTS);
    P(rec_usdt, SN_REC_G_USDT);
#undef P
    return n;
}

static const char *const rec_fields[] = {"container", "pid",       "ppid",
                                         "execname",  "pexecname", "syscall"};
#define NRECF (sizeof(rec_fields) / sizeof(rec_fields[0]))

int sn_rec_pred_compile(const json_t *p, struct sn_pred *out, char *why, size_t whylen)
{
    const struct sn_metric_def *m = sn_catalog_metric(SN_METRIC_SYSCALLS);
    struct sn_field_def f[NRECF];
    size_t n = 0;
    int rc;

    for (size_t i = 0; m && i < NRECF; i++) {
        const struct sn_catalog_field *cf = sn_catalog_field(m, rec_fields[i]);
        if (cf)
            f[n++] = cf->def;
    }
    rc = sn_pred_compile(p, f, n, out, why, whylen);
    if (rc == -ENOENT) { /* a field of the catalog, or none: say which recordings take */
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%s", why ? why : "");
        if (why)
            snprintf(why, whylen, "%s (a recording predicate takes " SN_REC_PRED_FIELDS ")", tmp);
        return -EINVAL;
    }
    return rc == -E2BIG ? -EINVAL : rc;
}

__attribute__((format(printf, 3, 4))) static int say(const struct sn_rec_session_opts *o, int rc,
                                                     const char *fmt, ...)
{
    va_list ap;

    if (o->why && o->whylen) {
        va_start(ap, fmt);
        vsnprintf(o->why, o->whylen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* The bit of path in s->path (added when new), or -1 when all SN_SCOPE_BITS are taken. */
static int path_bit(struct sn_rec_session *s, const char *path)
{
    for (int b = 0; b < s->npath; b++)
        if (strcmp(s->path[b], path) == 0)
            return b;
    if (s->npath == SN_SCOPE_BITS || !(s->path[s->npath] = strdup(path)))
        return -1;
    return s->npath++;
}

/*
 * The session's predicate and scope: s->prog_k (for the map rec_pred), the rodata pred_needs
 * and scope_bits, the paths into s->path. Returns 0 or -EINVAL (o->why says why).
 */
static int setup_filters(struct sn_rec_session *s, const struct sn_rec_session_opts *o)
{
    char why[200] = "";
    struct sn_pred p;
    uint64_t scope = 0;
    uint32_t needs = 0;
    int rc;

    if (o->nscope > SN_REC_MAX_SCOPE)
        return say(o, -EINVAL, "a scope takes at most %d cgroup paths", SN_REC_MAX_SCOPE);
    for (size_t i = 0; i < o->nscope; i++) { /* each path checked as an "under" leaf */
        json_t *leaf;
        const char *path;
        int b;

        if (!o->scope[i])
            return say(o, -EINVAL, "bad scope path: %s", "null");
        leaf = json_pack("{s:[s,s]}", "under", "container", o->scope[i]);
        rc = leaf ? sn_rec_pred_compile(leaf, &p, why, sizeof(why)) : -ENOMEM;
        json_decref(leaf);
        if (rc)
            return rc == -ENOMEM ? rc : say(o, -EINVAL, "bad scope path: %s", why);
        if (p.insn[0].op == SN_PRED_TRUE) { /* under "/": every cgroup, no scope at all */
            scope = 0;
            break;
        }
        path = sn_pred_under_path(&p, &p.insn[0]);
        if (!path || (b = path_bit(s, path)) < 0)
            return say(o, -EINVAL, "bad scope path: %s", o->scope[i]);
        scope |= 1ull << b;
    }
    if (scope == 0) /* no scope, or one under "/" */
        for (int b = 0; b < s->npath; b++) {
            free(s->path[b]);
            s->path[b] = NULL;
        }
    if (scope == 0)
        s->npath = 0;
    if (o->predicate) {
        rc = sn_rec_pred_compile(o->predicate, &p, why, sizeof(why));
        if (rc)
            return say(o, -EINVAL, "%s", why);
        for (uint32_t i = 0; i < p.n; i++) {
            struct sn_pred_insn *in = &p.insn[i];
            int b;

            if (in->op == SN_PRED_TRUE || in->op == SN_PRED_AND || in->op == SN_PRED_OR)
                continue;
            if (in->op == SN_PRED_UNDER) {
                const char *path = sn_pred_under_path(&p, in);
                if (!path || (b = path_bit(s, path)) < 0)
                    return say(o, -EINVAL, "more than %d distinct cgroup paths", SN_SCOPE_BITS);
                in->field = SN_SC_SCOPE;
                in->is_str = 0;
                in->n = (int64_t)(1ull << b);
            }
            needs |= 1u << in->field;
        }
        s->prog_k.n = p.n;
        memcpy(s->prog_k.insn, p.insn, sizeof(p.insn));
    }
    s->skel->rodata->pred_needs = needs; /* 0: always true, nothing evaluated */
    s->skel->rodata->scope_bits = scope;
    return 0;
}

struct scope_add_arg {
    int fd;
    uint64_t bit;
    int n;
};

/* sn_cgroup_walk()'s callback: cgroup id gets bit */
static void scope_add(uint64_t id, void *arg)
{
    struct scope_add_arg *a = arg;
    uint64_t bits = 0;

    bpf_map_lookup_elem(a->fd, &id, &bits); /* ENOENT: 0 */
    bits |= a->bit;
    if (bpf_map_update_elem(a->fd, &id, &bits, BPF_ANY) == 0)
        a->n++;
}

int sn_rec_session_refresh_scope(struct sn_rec_session *s)
{
    struct scope_add_arg a = {.fd = bpf_map__fd(s->skel->maps.cgroup_scope)};

    for (int b = 0; b < s->npath; b++) {
        a.bit = 1ull << b;
        sn_cgroup_walk(s->path[b], scope_add, &a); /* -ENOENT: not yet */
    }
    return a.n;
}

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

/* The .note.stapsdt section of the ELF64 file fd: its bytes (malloc'd) and length; -errno. */
static int sdt_notes(int fd, char **out, size_t *len)
{
    Elf64_Ehdr eh;
    Elf64_Shdr sh, strsh;

    if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) || memcmp(eh.e_ident, ELFMAG, 4) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) ||
        eh.e_shstrndx >= eh.e_shnum)
        return -ENOEXEC;
    if (pread(fd, &strsh, sizeof(strsh), (off_t)(eh.e_shoff + eh.e_shstrndx * sizeof(sh))) !=
        (ssize_t)sizeof(strsh))
        return -ENOEXEC;
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        char name[16] = "";

        if (pread(fd, &sh, sizeof(sh), (off_t)(eh.e_shoff + i * sizeof(sh))) != (ssize_t)sizeof(sh))
            return -ENOEXEC;
        if (sh.sh_type != SHT_NOTE || sh.sh_name >= strsh.sh_size ||
            pread(fd, name, sizeof(name) - 1, (off_t)(strsh.sh_offset + sh.sh_name)) <= 0 ||
            strcmp(name, ".note.stapsdt") != 0)
            continue;
        if (sh.sh_size > (64u << 20) || !(*out = malloc(sh.sh_size ? sh.sh_size : 1)))
            return -ENOMEM;
        if (pread(fd, *out, sh.sh_size, (off_t)sh.sh_offset) != (ssize_t)sh.sh_size) {
            free(*out);
            return -EIO;
        }
        *len = sh.sh_size;
        return 0;
    }
    return -ENOENT;
}

int sn_rec_sdt_nargs(const char *n, size_t len, const char *provider, const char *probe)
{
    size_t off = 0;

    while (len - off >= sizeof(Elf64_Nhdr)) { /* notes: a header, the name, the desc */
        Elf64_Nhdr h;
        size_t name_off, desc_off, end;

        memcpy(&h, n + off, sizeof(h)); /* unaligned in a fuzzer's buffer */
        name_off = off + sizeof(h);
        desc_off = name_off + (((size_t)h.n_namesz + 3) & ~(size_t)3);
        end = desc_off + (((size_t)h.n_descsz + 3) & ~(size_t)3);
        if (desc_off > len || h.n_descsz > len - desc_off)
            break;
        /* stapsdt v3: pc, base, semaphore (8 bytes each), then provider, name, args (each NUL
         * terminated): the args are space-separated, one per argument of the probe */
        if (h.n_type == 3 && h.n_namesz == 8 && memcmp(n + name_off, "stapsdt", 8) == 0 &&
            h.n_descsz > 24) {
            const char *d = n + desc_off + 24, *e = n + desc_off + h.n_descsz;
            const char *nm = d + strnlen(d, (size_t)(e - d)) + 1;
            const char *args = nm < e ? nm + strnlen(nm, (size_t)(e - nm)) + 1 : e;

            if (args < e && memchr(args, 0, (size_t)(e - args)) && strcmp(d, provider) == 0 &&
                strcmp(nm, probe) == 0) {
                int k = 0, in = 0;
                for (const char *p = args; *p; p++) {
                    k += *p != ' ' && !in;
                    in = *p != ' ';
                }
                return k;
            }
        }
        if (end >= len)
            break;
        off = end;
    }
    return -ENOENT;
}

int sn_rec_usdt_nargs(const char *path, const char *provider, const char *probe)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
    size_t len = 0;
    char *n = NULL;

    if (fd < 0)
        return -errno;
    rc = sdt_notes(fd, &n, &len);
    close(fd);
    if (rc)
        return rc;
    rc = sn_rec_sdt_nargs(n, len, provider, probe);
    free(n);
    return rc;
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
    if (!o->groups || (o->groups & ~SN_REC_G_ALL))
        return say(o, -EINVAL, "%s", "no event group, or an unknown one");
    if (!(o->groups & SN_REC_G_USDT) != !o->nusdt || o->nusdt > SN_REC_USDT_MAX)
        return say(o, -EINVAL, "the usdt group takes 1 to %d probes (PATH:PROVIDER:PROBE)",
                   SN_REC_USDT_MAX);
    for (size_t i = 0; i < o->nusdt; i++)
        if (!o->usdt[i].path || !o->usdt[i].provider || !o->usdt[i].probe || !o->usdt[i].path[0] ||
            !o->usdt[i].provider[0] || !o->usdt[i].probe[0])
            return say(o, -EINVAL, "usdt probe %zu: a path, a provider and a probe name", i);
    if (!valid_size(o->size_per_cpu))
        return say(o, -EINVAL, "%s", "the size per CPU is a power of 2 from 64 KiB to 1 GiB");
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
    rc = setup_filters(s, o);
    if (rc)
        goto fail;
    fill_sys_tab(s->skel);
    rc = bpf_map__set_max_entries(s->skel->maps.rec_ring, (uint32_t)ncpu * nslots);
    if (rc)
        goto fail;
    {
        unsigned grp[NPROG];
        int n = progs_of(s->skel, s->prog, grp);

        for (int i = 0; i < n; i++) /* only the session's groups are loaded, hence attached */
            bpf_program__set_autoload(s->prog[i], !!(o->groups & grp[i]));
        bpf_program__set_autoattach(s->skel->progs.rec_usdt, false); /* below, per probe */
    }
    rc = rec_bpf__load(s->skel);
    if (rc)
        goto fail;
    rc = bpf_map_update_elem(bpf_map__fd(s->skel->maps.rec_pred), &(uint32_t){0}, &s->prog_k, 0);
    if (rc)
        goto fail;
    sn_rec_session_refresh_scope(s);
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
    for (size_t i = 0; i < o->nusdt; i++) {
        LIBBPF_OPTS(bpf_usdt_opts, uo, .usdt_cookie = i);
        const struct sn_rec_usdt *u = &o->usdt[i];

        s->usdt_link[i] = bpf_program__attach_usdt(s->skel->progs.rec_usdt, -1, u->path,
                                                   u->provider, u->probe, &uo);
        if (!s->usdt_link[i]) {
            rc = -errno;
            say(o, rc, "usdt probe %.200s:%.64s:%.64s: %s", u->path, u->provider, u->probe,
                rc == -ENOENT ? "not found" : strerror(-rc));
            goto fail;
        }
        s->nusdt++;
    }
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
    for (int i = 0; i < s->nusdt; i++)
        bpf_link__destroy(s->usdt_link[i]);
    if (s->ring)
        munmap(s->ring, s->ring_len);
    rec_bpf__destroy(s->skel);
    for (int b = 0; b < s->npath; b++)
        free(s->path[b]);
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
    for (int i = 0; i < NPROG && s->prog[i]; i++) {
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

    for (int i = 0; i < NPROG && s->prog[i] && k < max; i++) {
        struct bpf_prog_info info;
        uint32_t len = sizeof(info);
        int fd = bpf_program__fd(s->prog[i]);

        memset(&info, 0, sizeof(info));
        if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
            ids[k++] = info.id;
    }
    return k;
}
