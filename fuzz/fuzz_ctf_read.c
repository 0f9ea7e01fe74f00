/*
 * Fuzz target: live/ctf_read.h, the reader of Sonde's CTF packets (what `sonde trace` decodes
 * from the relay), fed one packet (the input, in a buffer of exactly its size so ASan catches a
 * read past it) with the built-in system call table's classes. Properties:
 *
 *   - no crash, no read outside the input;
 *   - the header is refused (-EINVAL) or describes content within the input;
 *   - each event read lies within the content, its offset grows, its time never goes back,
 *     its class is one of the table's; the walk ends with 0 or -EINVAL;
 *   - formatting an event gives a NUL-terminated text within the buffer;
 *   - the same bytes as metadata text: the clock offset is read or -ENOENT; the event classes
 *     parsed or -EINVAL, dense ids, and they decode the bytes as a packet too.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctf/event_class.h"
#include "ctf/syscall_tab.h"
#include "fuzz_check.h"
#include "live/ctf_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sn_syscall_tab tab;
    static struct sn_ctf_classes cls;
    static int ready;
    if (!ready) {
        if (sn_syscall_tab_load(&tab, NULL) != 0 || sn_ctf_classes_build(&cls, &tab) != 0)
            abort();
        ready = 1;
    }
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct sn_ctf_rd_packet pk;
    if (sn_ctf_rd_header(buf, size, &pk) == 0) {
        FUZZ_CHECK(pk.content <= size && pk.content >= 84);
        size_t off = 0, last = 0;
        uint64_t prev = 0;
        struct sn_ctf_rd_event ev;
        char text[512];
        int rc;
        while ((rc = sn_ctf_rd_next(&cls, buf, &pk, &off, &prev, &ev)) == 1) {
            FUZZ_CHECK(off > last && off <= pk.content);
            FUZZ_CHECK(ev.payload >= buf && ev.payload + ev.len == buf + off);
            FUZZ_CHECK(ev.cls >= cls.c && ev.cls < cls.c + cls.n);
            FUZZ_CHECK(ev.ts == prev);
            size_t n = sn_ctf_rd_format(&ev, text, sizeof(text));
            FUZZ_CHECK(n < sizeof(text) && strlen(text) == n);
            last = off;
        }
        FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    }
    /* the same bytes as metadata text */
    char *text = malloc(size + 1);
    if (text) {
        memcpy(text, data, size);
        text[size] = '\0';
        int64_t off;
        int r = sn_ctf_rd_clock_offset(text, &off);
        FUZZ_CHECK(r == 0 || r == -ENOENT);
        struct sn_ctf_rd_classes rc;
        r = sn_ctf_rd_classes_parse(text, &rc);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
        if (r == 0) { /* the classes parsed decode the same bytes */
            FUZZ_CHECK(rc.cls.n > 0);
            for (size_t i = 0; i < rc.cls.n; i++)
                FUZZ_CHECK(rc.cls.c[i].id == i && rc.cls.c[i].nfields <= SN_CTF_CLASS_FIELDS);
            struct sn_ctf_rd_packet pk2;
            if (sn_ctf_rd_header(buf, size, &pk2) == 0) {
                size_t off2 = 0;
                uint64_t prev2 = 0;
                struct sn_ctf_rd_event ev2;
                char t2[256];
                while (sn_ctf_rd_next(&rc.cls, buf, &pk2, &off2, &prev2, &ev2) == 1)
                    sn_ctf_rd_format(&ev2, t2, sizeof(t2));
            }
            sn_ctf_rd_classes_free(&rc);
        }
        free(text);
    }
    free(buf);
    return 0;
}
