/*
 * Recording predicates against the real kernel (root and BPF; CI runs it as root, so it fails
 * rather than skips when BPF cannot load). A gated child (support/workload.h) names itself
 * "snt-recpred" and makes N getppid calls; sessions opened while it waits at its gate record:
 *  - {"eq": ["execname", "snt-recpred"]} and {"eq": ["syscall", "getppid"]}: exactly N getppid
 *    entries and N exits, all the child's, nothing else at all;
 *  - {"eq": ["pid", child]}: only the child's system calls (N getppid exits among them), and of
 *    the sched group only switches and wakeups with the child on one side, none redacted;
 *  - a pid nobody has: nothing;
 *  - bad predicates (fields raw events lack, lt on a string, unknown syscall names, bad
 *    syntax) are -EINVAL with a message, before anything is loaded.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "rec/session.h"
#include "workload.h"
#include "t.h"

#define N 200 /* getppid calls */

static char str[SN_REC_STR_MAX];

static void workload(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "snt-recpred", 0, 0, 0);
    for (int i = 0; i < N; i++)
        syscall(SYS_getppid);
}

static int open_with(struct sn_rec_session **s, unsigned groups, const char *pred, char *why,
                     size_t whylen)
{
    json_t *p = pred ? json_loads(pred, 0, NULL) : NULL;
    struct sn_rec_session_opts o = {
        .groups = groups, .size_per_cpu = 1 << 20, .predicate = p, .why = why, .whylen = whylen};
    int rc = pred && !p ? -EINVAL : sn_rec_session_open(s, &o);

    json_decref(p);
    return rc;
}

struct tally {
    long sys, enter_getppid, exit_getppid, other_pid, sw, sw_other, wake, wake_other, redacted;
};

/* Runs the workload under a session with predicate fixed (NULL: pid is the child's) and tallies
 * what the ring holds. */
static int run(unsigned groups, const char *fixed, struct tally *t)
{
    struct t_gated g = t_gated_start(workload, NULL);
    struct sn_rec_session *s = NULL;
    struct sn_rec_consumer *c = NULL;
    struct sn_rec_snap snap;
    char pred[256], why[256] = "";
    int rc;

    memset(t, 0, sizeof(*t));
    if (g.pid <= 0)
        return -1;
    if (!fixed)
        snprintf(pred, sizeof(pred), "{\"eq\":[\"pid\",\"%d\"]}", (int)g.pid);
    else
        snprintf(pred, sizeof(pred), "%s", fixed);
    rc = open_with(&s, groups, pred, why, sizeof(why));
    t_note("open %s: %s %s", pred, strerror(-rc), why);
    if (rc == 0)
        rc = sn_rec_consumer_new(&c, sn_rec_session_view(s), 1);
    t_gated_release(&g);
    if (rc == 0)
        rc = sn_rec_snapshot(c, sn_rec_session_view(s), &snap);
    if (rc == 0) {
        for (unsigned cpu = 0; cpu < snap.ncpu; cpu++)
            for (size_t k = 0; k < snap.cpu[cpu].nrec; k++) {
                const struct sn_rec_slot *r = sn_rec_snap_record(&snap, cpu, k);
                struct sn_rec_event ev;
                if (sn_rec_slot_decode(r, cpu, &ev, str) != 0) {
                    rc = -EINVAL;
                    continue;
                }
                t->redacted += (r->flags & SN_REC_F_REDACTED) != 0;
                if (ev.type == SN_REC_SYS_ENTER || ev.type == SN_REC_SYS_EXIT) {
                    t->sys++;
                    t->other_pid += ev.pid != g.pid || ev.tid != g.pid;
                    if (ev.u.sys.nr == SYS_getppid) {
                        t->enter_getppid += ev.type == SN_REC_SYS_ENTER;
                        t->exit_getppid += ev.type == SN_REC_SYS_EXIT;
                    }
                } else if (ev.type == SN_REC_SCHED_SWITCH) {
                    t->sw++;
                    t->sw_other += ev.u.sw.prev_tid != g.pid && ev.u.sw.next_tid != g.pid;
                } else if (ev.type == SN_REC_SCHED_WAKEUP || ev.type == SN_REC_SCHED_WAKEUP_NEW) {
                    t->wake++;
                    t->wake_other += ev.u.wakeup.tid != g.pid && ev.pid != g.pid;
                }
            }
        t_note("sys %ld (getppid %ld/%ld), others %ld; switches %ld (%ld others), wakeups %ld "
               "(%ld others), redacted %ld",
               t->sys, t->enter_getppid, t->exit_getppid, t->other_pid, t->sw, t->sw_other, t->wake,
               t->wake_other, t->redacted);
        sn_rec_snap_free(&snap);
    }
    sn_rec_consumer_free(c);
    sn_rec_session_destroy(s);
    return rc;
}

static void test_execname_and_syscall(void)
{
    struct tally t;

    T_REQUIRE(run(SN_REC_G_SYSCALLS | SN_REC_G_SCHED,
                  "{\"and\":[{\"eq\":[\"execname\",\"snt-recpred\"]},"
                  "{\"eq\":[\"syscall\",\"getppid\"]}]}",
                  &t) == 0);
    T_EQ(t.enter_getppid, N);
    T_EQ(t.exit_getppid, N);
    T_EQ(t.sys, 2 * N); /* nothing but the child's getppid calls */
    T_EQ(t.other_pid, 0);
    T_EQ(t.sw + t.wake, 0); /* sched events have no system call: syscall is -1 */
}

static void test_pid(void)
{
    struct tally t;

    T_REQUIRE(run(SN_REC_G_SYSCALLS | SN_REC_G_SCHED, NULL, &t) == 0);
    T_EQ(t.exit_getppid, N);
    T_EQ(t.enter_getppid, N);
    T_OK(t.sys > 2 * N); /* the gate's read, exit_group... */
    T_EQ(t.other_pid, 0);
    T_OK(t.sw >= 1); /* it left the CPU when it exited, at least */
    T_EQ(t.sw_other, 0);
    T_EQ(t.wake_other, 0);
    T_EQ(t.redacted, 0); /* a predicate redacts nothing: only a tenant's scope does */

    /* and a pid nobody has: nothing at all */
    T_REQUIRE(run(SN_REC_G_SYSCALLS | SN_REC_G_SCHED, "{\"eq\":[\"pid\",\"2147483647\"]}", &t) ==
              0);
    T_EQ(t.sys + t.sw + t.wake, 0);
}

/* The xlated length and number of functions of a session's sys_exit program (the second). */
static void prog_shape(unsigned groups, const char *pred, uint32_t *len, uint32_t *nfunc)
{
    struct sn_rec_session *s = NULL;
    uint32_t ids[SN_REC_MAX_PROGS];
    char why[256] = "";

    *len = *nfunc = 0;
    if (open_with(&s, groups, pred, why, sizeof(why)) != 0)
        return;
    if (sn_rec_session_prog_ids(s, ids, SN_REC_MAX_PROGS) == 2) {
        struct bpf_prog_info info;
        uint32_t il = sizeof(info);
        int fd = bpf_prog_get_fd_by_id(ids[1]);
        memset(&info, 0, sizeof(info));
        if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &il) == 0) {
            *len = info.xlated_prog_len;
            *nfunc = info.nr_func_info;
        }
        if (fd >= 0)
            close(fd);
    }
    sn_rec_session_destroy(s);
}

/* No predicate: nothing of it is in the program the kernel runs (the verifier drops the code
 * that the rodata's pred_needs == 0 makes dead, pred_eval() included). */
static void test_no_predicate_no_code(void)
{
    uint32_t len0, nf0, len1, nf1, len2, nf2;

    prog_shape(SN_REC_G_SYSCALLS, NULL, &len0, &nf0);
    prog_shape(SN_REC_G_SYSCALLS, "{}", &len1, &nf1);
    prog_shape(SN_REC_G_SYSCALLS, "{\"eq\":[\"pid\",\"1\"]}", &len2, &nf2);
    t_note("sys_exit xlated: no predicate %u bytes, %u functions; {} %u, %u; pid %u, %u", len0, nf0,
           len1, nf1, len2, nf2);
    T_OK(len0 > 0);
    T_EQ(nf0, 1);
    T_EQ(len1, len0);
    T_EQ(nf1, 1);
    T_OK(nf2 > 1); /* pred_eval() and its bpf_loop() callback */
    T_OK(len2 > len0);
}

static void test_bad_predicates(void)
{
    static const struct {
        const char *pred, *says;
    } bad[] = {
        {"{\"gt\":[\"latency\",1000]}", "a recording predicate takes " SN_REC_PRED_FIELDS},
        {"{\"eq\":[\"errno\",\"ENOENT\"]}", "a recording predicate takes"},
        {"{\"eq\":[\"hostname\",\"x\"]}", "a recording predicate takes"},
        {"{\"lt\":[\"execname\",\"a\"]}", "execname"},
        {"{\"eq\":[\"syscall\",\"no_such_call\"]}", "no_such_call"},
        {"{\"eq\":[\"pid\",12]}", "pid"}, /* a discrete field takes a string */
        {"{\"and\":[{\"eq\":[\"pid\",\"1\"]}]}", "and"},
        {"{\"nope\":[\"pid\",\"1\"]}", "nope"},
    };
    struct sn_rec_session *s = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char why[512] = "";
        T_EQ(open_with(&s, SN_REC_G_SYSCALLS, bad[i].pred, why, sizeof(why)), -EINVAL);
        T_OK(s == NULL);
        t_note("%s: %s", bad[i].pred, why);
        T_OK(strstr(why, bad[i].says) != NULL);
    }
    /* the same compiler without a session (what the API checks requests with) */
    struct sn_pred p;
    char why[512] = "";
    json_t *j = json_loads("{\"gt\":[\"cputime\",5]}", 0, NULL);
    T_EQ(sn_rec_pred_compile(j, &p, why, sizeof(why)), -EINVAL);
    json_decref(j);
    T_OK(strstr(why, "cputime") != NULL);
    j = json_loads("{\"under\":[\"container\",\"/a.slice\"]}", 0, NULL);
    T_EQ(sn_rec_pred_compile(j, &p, why, sizeof(why)), 0);
    json_decref(j);
    T_EQ(p.insn[0].op, SN_PRED_UNDER);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("execname and syscall: exactly the child's N getppid calls", test_execname_and_syscall);
    t_run("pid: only the child's events, sched ones with it on a side", test_pid);
    t_run("no predicate: no predicate code loaded", test_no_predicate_no_code);
    t_run("bad predicates: -EINVAL with a message", test_bad_predicates);
    return t_done();
}
