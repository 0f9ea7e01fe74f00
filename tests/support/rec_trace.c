/*
 * Snapshots written as CTF and read back by babeltrace2 (support/rec_trace.h).
 */
#include "rec_trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctf/syscall_tab.h"
#include "ctf/tsdl.h"
#include "ctf/writer.h"
#include "t.h"

static char str[SN_REC_STR_MAX];

static long write_ctf(const struct sn_rec_snap *snap, const char *dir, const char *const *probes,
                      const unsigned *nargs, size_t nprobes)
{
    struct sn_syscall_tab tab;
    struct sn_ctf_classes cls;
    struct sn_ctf_env env;
    struct sn_ctf_writer *w;
    long n = 0;
    int rc;

    if ((rc = sn_syscall_tab_load(&tab, "/sys/kernel/tracing")) != 0)
        return rc;
    if ((rc = sn_ctf_classes_build(&cls, &tab)) != 0) {
        sn_syscall_tab_free(&tab);
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < nprobes; i++) {
        char prov[128];
        const char *colon = strchr(probes[i], ':');
        snprintf(prov, sizeof(prov), "%.*s", colon ? (int)(colon - probes[i]) : 0, probes[i]);
        rc = sn_ctf_classes_add_usdt(&cls, (uint32_t)i, prov, colon ? colon + 1 : "", nargs[i]);
    }
    if (rc == 0)
        rc = sn_ctf_env_host(&env, "sonde-tests", "rec");
    if (rc) {
        sn_ctf_classes_free(&cls);
        sn_syscall_tab_free(&tab);
        return rc;
    }
    struct sn_ctf_writer_opts o = {.ncpus = snap->ncpu, .classes = &cls};
    rc = sn_ctf_writer_open(&w, dir, &env, &o);
    for (unsigned cpu = 0; rc == 0 && cpu < snap->ncpu; cpu++)
        for (size_t k = 0; rc == 0 && k < snap->cpu[cpu].nrec; k++) {
            struct sn_rec_event ev;
            rc = sn_rec_slot_decode(sn_rec_snap_record(snap, cpu, k), cpu, &ev, str);
            if (rc == 0)
                rc = sn_ctf_writer_add(w, cpu, &ev);
            n++;
        }
    if (rc == 0)
        rc = sn_ctf_writer_close(w);
    else if (rc != 0 && w)
        sn_ctf_writer_abort(w);
    sn_ctf_classes_free(&cls);
    sn_syscall_tab_free(&tab);
    return rc ? rc : n;
}

long t_rec_trace_read(const struct sn_rec_snap *snap, struct t_rec_trace *t,
                      const char *const *probes, const unsigned *nargs, size_t nprobes)
{
    static char err[1 << 14];
    char out[256], cmd[2048], path[700], *line = NULL;
    size_t cap = 0, alloc = 0;
    long n;
    FILE *f;
    int rc;

    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "%s/rec_trace.XXXXXX", t_outdir());
    if (!mkdtemp(t->dir))
        return -errno;
    n = write_ctf(snap, t->dir, probes, nargs, nprobes);
    if (n < 0)
        return n;
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s/kernel > %s/events", SN_CTF_EVENTS_PY,
             t->dir, t->dir);
    rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0) {
        t_note("babeltrace2 (python3-bt2): rc %d\n%s", rc, err);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/events", t->dir);
    if (!(f = fopen(path, "r")))
        return -errno;
    while (getline(&line, &cap, f) > 0) {
        struct t_rec_ev e = {0};
        int off = 0;

        line[strcspn(line, "\n")] = 0;
        if (sscanf(line, "%lu %d %63s pid=%d tid=%d %n", &e.ts, &e.cpu, e.name, &e.pid, &e.tid,
                   &off) < 5)
            continue;
        if (t->n == alloc) {
            struct t_rec_ev *ev = realloc(t->ev, (alloc = alloc ? 2 * alloc : 1024) * sizeof(*ev));
            if (!ev)
                break;
            t->ev = ev;
        }
        e.fields = strdup(line + off);
        t->ev[t->n++] = e;
    }
    free(line);
    fclose(f);
    return n;
}

void t_rec_trace_free(struct t_rec_trace *t)
{
    char cmd[700], out[64], err[256];

    for (size_t i = 0; i < t->n; i++)
        free(t->ev[i].fields);
    free(t->ev);
    if (t->dir[0] && !getenv("SN_KEEP_TRACE")) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
        t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    }
    memset(t, 0, sizeof(*t));
}

const char *t_rec_field_str(const struct t_rec_ev *e, const char *k, char *buf, size_t len)
{
    size_t kl = strlen(k);

    for (const char *p = e->fields; p && *p;) {
        const char *end = strchr(p, ' ');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        if (l > kl && strncmp(p, k, kl) == 0 && p[kl] == '=') {
            snprintf(buf, len, "%.*s", (int)(l - kl - 1), p + kl + 1);
            return buf;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

int64_t t_rec_field(const struct t_rec_ev *e, const char *k, int *found)
{
    char b[64];
    const char *v = t_rec_field_str(e, k, b, sizeof(b));

    if (found)
        *found = v != NULL;
    return v ? strtoll(v, NULL, 10) : 0;
}
