/*
 * ctf/packet.c and the packets ctf/writer.c cuts: the 84 bytes of header and context at their
 * offsets, compact (6 bytes) against extended (14 bytes) event headers at their boundaries, a
 * syscall_entry_read of 26 bytes, packets of at most 256 KiB and within one second, the
 * errors of the writer's arguments, and a full disk (root: a small tmpfs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctf/packet.h"
#include "ctf/writer.h"
#include "t.h"

static struct sn_syscall_tab tab;
static struct sn_ctf_classes cls;

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void test_header_offsets(void)
{
    struct sn_ctf_packet_info pi = {.cpu = 3,
                                    .ts_begin = 0x1111222233334444ULL,
                                    .ts_end = 0x1111222233335555ULL,
                                    .bytes = 1000,
                                    .seq = 77,
                                    .discarded = 5};
    for (int i = 0; i < 16; i++)
        pi.uuid[i] = (uint8_t)(i + 1);
    uint8_t b[SN_CTF_PACKET_HEADER];
    memset(b, 0xee, sizeof(b));
    sn_ctf_packet_header(b, &pi);
    T_EQU(le(b + 0, 4), 0xC1FC1FC1u);
    T_EQU(b[0], 0xC1);
    T_EQU(b[4], 1);
    T_EQU(b[19], 16);
    T_EQU(le(b + 20, 4), 0);
    T_EQU(le(b + 24, 8), 3);
    T_EQU(le(b + 32, 8), 0x1111222233334444ULL);
    T_EQU(le(b + 40, 8), 0x1111222233335555ULL);
    T_EQU(le(b + 48, 8), 8000);
    T_EQU(le(b + 56, 8), 8000);
    T_EQU(le(b + 64, 8), 77);
    T_EQU(le(b + 72, 8), 5);
    T_EQU(le(b + 80, 4), 3);
}

static void test_event_headers(void)
{
    T_OK(sn_ctf_needs_extended(true, 5, 100, 100));                   /* a packet's first */
    T_OK(!sn_ctf_needs_extended(false, 5, 100, 100));                 /* same time */
    T_OK(!sn_ctf_needs_extended(false, 5, 100ULL + UINT32_MAX, 100)); /* the largest compact */
    T_OK(sn_ctf_needs_extended(false, 5, 100ULL + (1ULL << 32), 100));
    T_OK(sn_ctf_needs_extended(false, 5, 99, 100));      /* never backwards */
    T_OK(sn_ctf_needs_extended(false, 65535, 100, 100)); /* ids past the 16 bits */
    T_OK(!sn_ctf_needs_extended(false, 65534, 100, 100));

    uint8_t b[32];
    size_t n = sn_ctf_event_header(b, false, 9, 0x123456789ULL, 10, 11);
    T_EQU(n, 14);
    T_EQU(le(b, 2), 9);
    T_EQU(le(b + 2, 4), 0x23456789u); /* the low 32 bits */
    T_EQU(le(b + 6, 4), 10);
    T_EQU(le(b + 10, 4), 11);
    n = sn_ctf_event_header(b, true, 9, 0x123456789ULL, -1, 11);
    T_EQU(n, 22);
    T_EQU(le(b, 2), 65535);
    T_EQU(le(b + 2, 4), 9);
    T_EQU(le(b + 6, 8), 0x123456789ULL);
    T_EQU(le(b + 14, 4), 0xffffffffu);
    T_EQU(le(b + 18, 4), 11);
}

static void test_payload(void)
{
    struct sn_rec_event ev = {.type = SN_REC_SYS_ENTER};
    ev.u.sys.nr = 0; /* read {fd u32, count u64} */
    ev.u.sys.args[0] = 3, ev.u.sys.args[1] = 0xdead, ev.u.sys.args[2] = 1;
    const struct sn_ctf_class *c = sn_ctf_class_of(&cls, &ev);
    uint8_t b[64];
    T_EQU(sn_ctf_encode(c, &ev, b, sizeof(b)), 12); /* + 6 + 8: 26 bytes in a packet */
    T_EQU(le(b, 4), 3);
    T_EQU(le(b + 4, 8), 1);
    /* a string, and a buffer too small: the length all the same, the bytes that fit */
    ev.u.sys.nr = 257; /* openat {dfd i32, filename, flags i32, mode u32} */
    ev.u.sys.args[0] = (uint64_t)-100, ev.u.sys.args[2] = 0x80000, ev.u.sys.args[3] = 0644;
    ev.u.sys.str[1] = "/tmp/x";
    c = sn_ctf_class_of(&cls, &ev);
    T_STR(c->name, "syscall_entry_openat");
    T_EQU(sn_ctf_encode(c, &ev, b, sizeof(b)), 4 + 7 + 4 + 4);
    T_EQU(le(b, 4), 0xffffff9cu);
    T_MEM(b + 4, "/tmp/x", 7);
    T_EQU(le(b + 11, 4), 0x80000);
    T_EQU(le(b + 15, 4), 0644);
    memset(b, 0, sizeof(b));
    T_EQU(sn_ctf_encode(c, &ev, b, 6), 19);
    T_EQU(b[6], 0);
    ev.u.sys.str[1] = NULL; /* no string read: "" */
    T_EQU(sn_ctf_encode(c, &ev, b, sizeof(b)), 4 + 1 + 4 + 4);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return s;
}

static void outdir(char *d, size_t n, const char *name)
{
    snprintf(d, n, "%s/ctf-packet-%d-%s", t_outdir(), (int)getpid(), name);
}

/* 20,000 reads 10 us apart (0.2 s), then 3 events 0.6 s apart: packets <= 256 KiB, < 1 s. */
static void test_packet_limits(void)
{
    char d[512], p[600];
    outdir(d, sizeof(d), "limits");
    struct sn_ctf_env env = {0};
    snprintf(env.boot_id, sizeof(env.boot_id), "0b5e5e5e-1111-4222-8333-444455556666");
    struct sn_ctf_writer_opts o = {.ncpus = 1, .classes = &cls};
    struct sn_ctf_writer *w;
    T_REQUIRE(sn_ctf_writer_open(&w, d, &env, &o) == 0);
    struct sn_rec_event ev = {.type = SN_REC_SYS_ENTER, .tid = 1, .pid = 1};
    ev.u.sys.nr = 110; /* getppid: no payload */
    uint32_t id = sn_ctf_class_of(&cls, &ev)->id;
    uint64_t t0 = 5000000000ULL;
    for (int i = 0; i < 20000; i++) {
        ev.ts = t0 + (uint64_t)i * 10000;
        T_EQ(sn_ctf_writer_add(w, 0, &ev), 0);
    }
    for (int i = 1; i <= 3; i++) {
        ev.ts = t0 + 200000000ULL + (uint64_t)i * 600000000ULL;
        T_EQ(sn_ctf_writer_add(w, 0, &ev), 0);
    }
    T_EQ(sn_ctf_writer_add(w, 1, &ev), -EINVAL);
    ev.type = 99;
    T_EQ(sn_ctf_writer_add(w, 0, &ev), -EINVAL);
    T_EQU(sn_ctf_writer_events(w), 0); /* staged, not written */
    T_EQ(sn_ctf_writer_close(w), 0);

    snprintf(p, sizeof(p), "%s/kernel/chan_0", d);
    size_t len = 0;
    uint8_t *f = slurp(p, &len);
    T_REQUIRE(f != NULL);
    /* walk the packets: sizes, seq numbers, first event extended, the rest compact */
    size_t off = 0, npk = 0, nev = 0;
    uint64_t prev_end = 0;
    while (off + SN_CTF_PACKET_HEADER <= len) {
        const uint8_t *h = f + off;
        uint64_t bits = le(h + 56, 8), begin = le(h + 32, 8), end = le(h + 40, 8);
        T_EQU(le(h, 4), SN_CTF_MAGIC);
        T_EQU(le(h + 48, 8), bits);
        T_OK(bits % 8 == 0 && bits / 8 <= SN_CTF_MAX_PACKET);
        T_EQU(le(h + 64, 8), npk);
        T_OK(end - begin < 1000000000ULL);
        T_OK(begin >= prev_end);
        T_EQU(le(h + 84, 2), 65535); /* extended */
        size_t bytes = (size_t)(bits / 8);
        /* entry_getppid: 14 + 8 then 6 + 8 per event, no payload */
        T_EQU((bytes - 84 - 22) % 14, 0);
        nev += 1 + (bytes - 84 - 22) / 14;
        if (bytes > 84 + 22)
            T_EQU(le(h + 84 + 22, 2), id); /* compact */
        prev_end = end;
        off += bytes;
        npk++;
    }
    T_EQU(off, len);
    T_EQU(nev, 20003);
    /* 84 + 22 + 14 x 18,716 = 262,130 bytes fill the first packet (256 KiB); the second takes
     * the remaining 1,283 (from 0.187 s) and the event at 0.8 s; the one at 1.4 s is more than
     * 1 s after that packet's first: a third, which the one at 2.0 s joins */
    T_EQU(npk, 3);
    T_EQU(le(f + 56, 8), 262130 * 8);
    free(f);
}

static void test_open_errors(void)
{
    char d[512];
    outdir(d, sizeof(d), "errors");
    struct sn_ctf_env env = {0};
    struct sn_ctf_writer_opts o = {.ncpus = 1, .classes = &cls};
    struct sn_ctf_writer *w = (void *)1;
    struct sn_ctf_writer_opts bad = o;
    bad.ncpus = 0;
    T_EQ(sn_ctf_writer_open(&w, d, &env, &bad), -EINVAL);
    T_OK(w == NULL);
    bad.ncpus = SN_CTF_MAX_CPUS + 1;
    T_EQ(sn_ctf_writer_open(&w, d, &env, &bad), -EINVAL);
    T_REQUIRE(sn_ctf_writer_open(&w, d, &env, &o) == 0);
    struct sn_ctf_writer *w2;
    T_EQ(sn_ctf_writer_open(&w2, d, &env, &o), -EEXIST); /* never two traces in one kernel/ */
    sn_ctf_writer_abort(w);
    char k[600];
    snprintf(k, sizeof(k), "%s/kernel", d);
    T_EQ(access(k, F_OK), -1); /* abort removed it */
    T_EQ(sn_ctf_writer_open(&w, "/proc/nonexistent/x", &env, &o), -ENOENT);
    sn_ctf_writer_abort(NULL);
}

/* A full disk: the writer says -ENOSPC and leaves nothing behind (no partial trace, no
 * temporaries); with room again, the same directory takes a whole trace. */
static void test_full_disk(void)
{
    if (geteuid() != 0) { /* CI runs as root; elsewhere this case cannot mount */
        t_skip("needs root to mount a tmpfs");
        return;
    }
    char d[512], t[600];
    outdir(d, sizeof(d), "tmpfs");
    mkdir(d, 0700);
    T_REQUIRE(mount("tmpfs", d, "tmpfs", 0, "size=1m,mode=0700") == 0);
    T_EQ(t_fill_disk(d), 0);
    snprintf(t, sizeof(t), "%s/trace", d);
    struct sn_ctf_env env = {0};
    struct sn_ctf_writer_opts o = {.ncpus = 2, .classes = &cls};
    for (int round = 0; round < 2; round++) {
        struct sn_ctf_writer *w;
        T_REQUIRE(sn_ctf_writer_open(&w, t, &env, &o) == 0);
        struct sn_rec_event ev = {.type = SN_REC_SYS_ENTER, .tid = 1, .pid = 1};
        for (int i = 0; i < 20000; i++) { /* 280 KB */
            ev.ts = 1000000 + (uint64_t)i;
            T_EQ(sn_ctf_writer_add(w, (unsigned)i & 1, &ev), 0);
        }
        int rc = sn_ctf_writer_close(w);
        char k[700];
        snprintf(k, sizeof(k), "%s/kernel", t);
        if (round == 0) {
            T_EQ(rc, -ENOSPC);
            T_EQ(access(k, F_OK), -1); /* nothing left */
            T_EQ(t_unfill_disk(d), 0);
        } else {
            T_EQ(rc, 0);
            snprintf(k, sizeof(k), "%s/kernel/metadata", t);
            T_EQ(access(k, F_OK), 0);
        }
    }
    T_EQ(umount(d), 0);
    rmdir(d);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (sn_syscall_tab_load(&tab, NULL) < 0 || sn_ctf_classes_build(&cls, &tab) < 0)
        return 1;
    t_run("header_offsets", test_header_offsets);
    t_run("event_headers", test_event_headers);
    t_run("payload", test_payload);
    t_run("packet_limits", test_packet_limits);
    t_run("open_errors", test_open_errors);
    t_run("full_disk", test_full_disk);
    sn_ctf_classes_free(&cls);
    sn_syscall_tab_free(&tab);
    return t_done();
}
