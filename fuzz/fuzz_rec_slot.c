/*
 * Fuzz target: rec/ring.h's decoder of the recorder's ring records (bpf/rec.h), then the CTF
 * encoding of what it decodes (ctf/event_class.h), as a snapshot does. The ring is written by
 * the session's BPF programs, but a torn or stale slot can hold anything the copy did not
 * catch, so any bytes must decode safely. The input is up to SN_REC_MAX_SLOTS slots, copied
 * into a buffer of exactly that many (zero-padded) so ASan catches a read past the record.
 * Properties:
 *
 *   - no crash; the result is 0 or -EINVAL;
 *   - on success: the event's type has a class (usdt: probes 0 and 1 have one), or none for a
 *     probe index without one; the payload written is at most SN_CTF_PAYLOAD_MAX bytes and the
 *     same when encoded twice.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctf/event_class.h"
#include "ctf/syscall_tab.h"
#include "fuzz_check.h"
#include "rec/ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sn_syscall_tab tab;
static struct sn_ctf_classes cls;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t a[SN_CTF_PAYLOAD_MAX], b[SN_CTF_PAYLOAD_MAX];
    static char str[SN_REC_STR_MAX];
    struct sn_rec_slot *r;
    struct sn_rec_event ev;
    int rc;

    if (!ready) {
        if (sn_syscall_tab_load(&tab, NULL) < 0 || sn_ctf_classes_build(&cls, &tab) < 0 ||
            sn_ctf_classes_add_usdt(&cls, 0, "p", "a", 2) < 0 ||
            sn_ctf_classes_add_usdt(&cls, 1, "p", "b", SN_REC_USDT_NARGS) < 0)
            abort();
        ready = 1;
    }
    if (size > SN_REC_MAX_SLOTS * sizeof(*r))
        return 0;
    r = calloc(SN_REC_MAX_SLOTS, sizeof(*r));
    if (!r)
        return 0;
    memcpy(r, data, size);
    /* the record's own slot count, at most what the buffer holds (the ring's copy guarantees
     * that much: it keeps a record only with all its slots) */
    if (r->nslots > SN_REC_MAX_SLOTS)
        r->nslots = SN_REC_MAX_SLOTS;
    rc = sn_rec_slot_decode(r, 1, &ev, str);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    if (rc == 0) {
        const struct sn_ctf_class *c = sn_ctf_class_of(&cls, &ev);
        FUZZ_CHECK(c != NULL || (ev.type == SN_REC_USDT && ev.u.usdt.probe > 1));
        if (c) {
            size_t la = sn_ctf_encode(c, &ev, a, sizeof(a)),
                   lb = sn_ctf_encode(c, &ev, b, sizeof(b));
            FUZZ_CHECK(la <= SN_CTF_PAYLOAD_MAX && la == lb && memcmp(a, b, la) == 0);
        }
    }
    free(r);
    return 0;
}
