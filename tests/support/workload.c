/*
 * Gated child workloads for kernel tests; see workload.h. The child's position is read from
 * /proc/<pid>/syscall: the number of the call it is blocked in, or "running".
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workload.h"

struct t_gated t_gated_start(void (*fn)(void *), void *arg)
{
    struct t_gated g = {-1, -1};
    int fds[2];
    char b;

    if (pipe(fds) != 0)
        return g;
    g.pid = fork();
    if (g.pid == 0) {
        close(fds[1]);
        if (read(fds[0], &b, 1) == 1)
            fn(arg);
        _exit(0);
    }
    close(fds[0]);
    g.go = fds[1];
    /* wait (at most 2 s) until it sits in that read, so that probes attached from now on do
     * not see the read begin */
    for (int i = 0; i < 2000 && g.pid > 0; i++) {
        char proc[64], buf[64] = {0};
        snprintf(proc, sizeof(proc), "/proc/%d/syscall", (int)g.pid);
        FILE *f = fopen(proc, "r");
        bool in_read = f && fgets(buf, sizeof(buf), f) && buf[0] >= '0' && buf[0] <= '9' &&
                       atoi(buf) == SYS_read; /* "running" while not in a call */
        if (f)
            fclose(f);
        if (in_read)
            break;
        usleep(1000);
    }
    return g;
}

void t_gated_release(struct t_gated *g)
{
    if (write(g->go, "x", 1) != 1)
        kill(g->pid, SIGKILL);
    close(g->go);
    waitpid(g->pid, NULL, 0);
}

int t_forked_getppid(int n, int calls)
{
    int gate[2], rc;
    pid_t kids[64];
    char go[64];

    if (n < 0 || n > 64 || pipe(gate) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            char b;
            if (read(gate[0], &b, 1) != 1)
                _exit(1);
            for (int k = 0; k < calls; k++)
                syscall(SYS_getppid);
            _exit(0);
        }
    }
    memset(go, 'g', sizeof(go));
    rc = write(gate[1], go, (size_t)n) == n ? 0 : -1;
    close(gate[1]); /* a child the write missed reads end of file and exits */
    for (int i = 0; i < n; i++)
        if (kids[i] > 0)
            waitpid(kids[i], NULL, 0);
    close(gate[0]);
    return rc;
}

/* ---- a child that makes system calls on command ---- */

static pid_t cmd_child = -1;
static int cmd_to[2] = {-1, -1}, cmd_from[2] = {-1, -1};

static void cmd_close(void)
{
    for (int i = 0; i < 2; i++) {
        if (cmd_to[i] >= 0)
            close(cmd_to[i]);
        if (cmd_from[i] >= 0)
            close(cmd_from[i]);
        cmd_to[i] = cmd_from[i] = -1;
    }
}

pid_t t_cmd_child_start(long slow_ms)
{
    char ack = 'k';
    long n;

    if (pipe(cmd_to) || pipe(cmd_from)) {
        cmd_close();
        return -1;
    }
    if ((cmd_child = fork()) == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        while (read(cmd_to[0], &n, sizeof(n)) == sizeof(n) && n != -1) {
            if (n == T_CMD_SLOW) {
                struct timespec ts = {slow_ms / 1000, (slow_ms % 1000) * 1000000L};
                syscall(SYS_nanosleep, &ts, NULL);
            }
            for (long i = 0; i < n; i++)
                syscall(SYS_getppid);
            if (write(cmd_from[1], &ack, 1) != 1)
                _exit(1);
        }
        _exit(0);
    }
    if (cmd_child < 0)
        cmd_close();
    return cmd_child;
}

int t_cmd_child_run(long n)
{
    char ack;
    if (cmd_child <= 0 || write(cmd_to[1], &n, sizeof(n)) != sizeof(n))
        return -1;
    return read(cmd_from[0], &ack, 1) == 1 ? 0 : -1;
}

void t_cmd_child_stop(void)
{
    long n = -1;
    if (cmd_child <= 0)
        return;
    if (write(cmd_to[1], &n, sizeof(n)) != sizeof(n))
        kill(cmd_child, SIGKILL);
    waitpid(cmd_child, NULL, 0);
    cmd_child = -1;
    cmd_close();
}
