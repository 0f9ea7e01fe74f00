/*
 * The in-kernel engine (src/bpf/probes.bpf.c) against the real kernel, with slots written
 * by hand: a predicate program and a numeric decomposition put this process's 2 ms nanosleeps
 * in the 2.0e6 ns bucket; a discrete decomposition by execname counts getppid calls under
 * this program's name exactly; generations keep one second's counts apart from the next.
 */
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/slots.h"
#include "core/hist.h"
#include "probes.skel.h"
#include "t.h"

static struct probes_bpf *skel;
static char comm[16];

static struct sn_pred_insn leaf_num(int op, int field, int64_t n)
{
    struct sn_pred_insn in = {.op = (uint8_t)op, .field = (uint8_t)field};
    in.n = n;
    return in;
}

static struct sn_pred_insn leaf_str(int op, int field, const char *s)
{
    struct sn_pred_insn in = {.op = (uint8_t)op, .field = (uint8_t)field, .is_str = 1};
    memcpy(in.s, s, strnlen(s, sizeof(in.s) - 1));
    return in;
}

static int set_slot(uint32_t s, const struct sn_slot *sl)
{
    return bpf_map_update_elem(bpf_map__fd(skel->maps.slots), &s, sl, BPF_ANY);
}

static int set_metric(const struct sn_metric_slots *ms)
{
    uint32_t m = SN_METRIC_SYSCALLS;
    return bpf_map_update_elem(bpf_map__fd(skel->maps.by_metric), &m, ms, BPF_ANY);
}

/* Sum of slot s's counts in generation g for ord (any key), or for key (any ord). */
static uint64_t sum(uint32_t s, uint32_t g, int ord, const char *key)
{
    int fd = bpf_map__fd(g ? skel->maps.agg1 : skel->maps.agg0), ncpu = libbpf_num_possible_cpus();
    struct sn_agg_key k, next, *prev = NULL;
    uint64_t v[512], total = 0; /* per-CPU values; 512 CPUs is plenty for a test machine */

    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        k = next;
        prev = &k;
        if (k.slot_gen != (s << 1 | g))
            continue;
        if (ord >= 0 && k.ord != ord)
            continue;
        if (key && strncmp(k.key, key, SN_KEYLEN) != 0)
            continue;
        if (ncpu > 512 || bpf_map_lookup_elem(fd, &k, v) != 0)
            continue;
        for (int i = 0; i < ncpu; i++)
            total += v[i];
    }
    return total;
}

/* Slot s's count in generation g for bucket ordinal ord, from the per-CPU array that keyless
 * numeric decompositions of slots below SN_ARRAY_SLOTS use (bpf/slots.h); ord < 0: all. */
static uint64_t sum_arr(uint32_t s, uint32_t g, int ord)
{
    int fd = bpf_map__fd(skel->maps.hist_arr), ncpu = libbpf_num_possible_cpus();
    uint64_t v[512], total = 0;

    for (uint32_t i = 0; i < SN_U64_ORDS; i++) {
        uint32_t idx = (s * 2 + g) * SN_U64_ORDS + i;
        int o = i == 0 ? SN_BUCKET_ORD_ZERO : (int)(SN_U64_ORD_FIRST + i - 1);
        if (ord >= 0 && o != ord)
            continue;
        if (ncpu > 512 || bpf_map_lookup_elem(fd, &idx, v) != 0)
            continue;
        for (int c = 0; c < ncpu; c++)
            total += v[c];
    }
    return total;
}

static void test_load_attach(void)
{
    skel = probes_bpf__open_and_load();
    T_REQUIRE(skel != NULL);
    T_REQUIRE(probes_bpf__attach(skel) == 0);
    T_OK(prctl(PR_GET_NAME, comm) == 0);
}

static void test_latency_histogram_with_predicate(void)
{
    struct sn_slot sl = {.active = 1,
                         .metric = SN_METRIC_SYSCALLS,
                         .key_field = SN_NO_FIELD,
                         .num_field = SN_SC_LATENCY,
                         .key_cap = 100};
    struct sn_metric_slots ms = {.n = 1, .slot = {0}};

    T_REQUIRE(skel != NULL);
    sl.pred.n = 3;
    sl.pred.insn[0] = leaf_str(SN_PRED_EQ, SN_SC_EXECNAME, comm);
    sl.pred.insn[1] = leaf_num(SN_PRED_EQ, SN_SC_SYSCALL, SYS_clock_nanosleep);
    sl.pred.insn[2] = (struct sn_pred_insn){.op = SN_PRED_AND};
    ms.needs = 1u << SN_SC_EXECNAME | 1u << SN_SC_SYSCALL | 1u << SN_SC_LATENCY;
    T_REQUIRE(set_slot(0, &sl) == 0);
    T_REQUIRE(set_metric(&ms) == 0);
    T_OK(t_realtime() == 0);
    uint16_t ord2ms = sn_bucket_ord(sn_bucket_make(20, 6));
    uint64_t quick = 0;
    for (int i = 0; i < 20; i++)
        quick += t_timed_sleep(2000000) < 2100000;
    uint64_t in2ms = sum_arr(0, 0, ord2ms), all = sum_arr(0, 0, -1);
    t_note("in [2.0,2.1) ms: %llu of 20; %llu seen < 2.1 ms by the process",
           (unsigned long long)in2ms, (unsigned long long)quick);
    T_EQU(all, 20);
    T_OK(in2ms >= quick); /* see test_bpf_syslat.c */
    for (uint32_t o = 1; o < ord2ms; o++)
        T_EQU(sum_arr(0, 0, (int)o), 0); /* never shorter than asked */
    T_EQU(sum(0, 0, -1, NULL), 0);       /* and nothing went to the hash */
}

static void test_discrete_by_execname(void)
{
    struct sn_slot sl = {.active = 1,
                         .metric = SN_METRIC_SYSCALLS,
                         .key_field = SN_SC_EXECNAME,
                         .num_field = SN_NO_FIELD,
                         .key_cap = 1000};
    struct sn_metric_slots ms = {.n = 2, .slot = {0, 1}};

    T_REQUIRE(skel != NULL);
    sl.pred.n = 1;
    sl.pred.insn[0] = leaf_num(SN_PRED_EQ, SN_SC_SYSCALL, SYS_getppid);
    ms.needs = 1u << SN_SC_EXECNAME | 1u << SN_SC_SYSCALL | 1u << SN_SC_LATENCY;
    T_REQUIRE(set_slot(1, &sl) == 0);
    T_REQUIRE(set_metric(&ms) == 0);
    for (int i = 0; i < 50; i++)
        syscall(SYS_getppid);
    T_EQU(sum(1, 0, -1, comm), 50);
}

static void test_generations(void)
{
    T_REQUIRE(skel != NULL);
    uint64_t before = sum(1, 0, -1, comm);
    skel->bss->gen = 1;
    for (int i = 0; i < 7; i++)
        syscall(SYS_getppid);
    T_EQU(sum(1, 0, -1, comm), before); /* generation 0 is frozen */
    T_EQU(sum(1, 1, -1, comm), 7);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_unique_comm();
    t_run("load and attach the engine's syscall probe", test_load_attach);
    t_run("predicate + latency decomposition: 2 ms sleeps in the 2.0e6 bucket",
          test_latency_histogram_with_predicate);
    t_run("decomposition by execname counts exactly", test_discrete_by_execname);
    t_run("generations keep seconds apart", test_generations);
    if (skel)
        probes_bpf__destroy(skel);
    return t_done();
}
