/*
 * Workloads for kernel tests: a child process that waits at a gate (a read of a pipe) until
 * the test has enabled its probes with the child's pid in their predicates, then runs the
 * workload and exits; and many children at once, released together.
 */
#ifndef SN_TESTS_WORKLOAD_H
#define SN_TESTS_WORKLOAD_H

#include <sys/types.h>

struct t_gated {
    pid_t pid; /* the child, or -1 */
    int go;    /* the gate's write end */
};

/* Forks a child that runs fn(arg) once released, and returns when the child sits in the
 * gate's read (at most 2 s), so that probes attached from then on do not see that read
 * begin. pid is -1 when fork or pipe failed. */
struct t_gated t_gated_start(void (*fn)(void *), void *arg);

/* Opens the gate and waits for the child to finish (it is killed if the gate cannot be
 * opened). */
void t_gated_release(struct t_gated *g);

/* Forks n children (n <= 64) that wait at one gate, releases them together, each then making
 * calls getppid calls, and waits for them all: n processes of the test's name run at once.
 * Returns 0, or -1 when the gate could not be made or opened (the children it reached are
 * reaped). */
int t_forked_getppid(int n, int calls);

/* A child that makes system calls on command (the recorder's tests): t_cmd_child_start forks
 * it (killed if the test dies) and returns its pid, or -1; t_cmd_child_run(n) has it make n
 * getppid calls, or, with T_CMD_SLOW, one nanosleep of slow_ms (given at start), and waits
 * until it is done (0, or -1); t_cmd_child_stop ends and reaps it. One such child at a time. */
#define T_CMD_SLOW (-2L)
pid_t t_cmd_child_start(long slow_ms);
int t_cmd_child_run(long n);
void t_cmd_child_stop(void);

#endif
